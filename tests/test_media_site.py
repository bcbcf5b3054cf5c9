"""Guards the local media site: what yt-dlp's generic extractor sees there, and how it fails."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yt_dlp
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError

from tests.media_site import FFMPEG, MediaLibrary, MediaSite, generate_media, probe


class _QuietLogger:
    def debug(self, msg: str) -> None: ...
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    return generate_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def site(lib: MediaLibrary) -> Any:
    with MediaSite(lib) as running:
        yield running


def _ydl(**params: Any) -> yt_dlp.YoutubeDL:
    defaults = {"logger": _QuietLogger(), "noprogress": True, "ffmpeg_location": FFMPEG}
    return yt_dlp.YoutubeDL({**defaults, **params})


def _split(formats: list[dict[str, Any]]) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    videos = {f["height"]: f for f in formats if f.get("vcodec") not in (None, "none")}
    audios = [f for f in formats if f.get("vcodec") == "none" and f.get("acodec") not in (None, "none")]
    return videos, audios


def test_generated_files(lib: MediaLibrary) -> None:
    assert lib.generation_seconds < 20
    for rel, size in ((lib.progressive, lib.progressive_size), (lib.vertical, lib.vertical_size)):
        info = probe(lib.path(rel))
        assert abs(info["duration"] - lib.duration) < 0.1
        kinds = {s["type"]: s for s in info["streams"]}
        assert (kinds["video"]["codec"], kinds["video"]["width"], kinds["video"]["height"]) == ("h264", *size)
        assert kinds["audio"]["codec"] == "aac"
    if lib.webm:
        assert {s["codec"] for s in probe(lib.path(lib.webm))["streams"]} == {"vp9", "opus"}


@pytest.mark.parametrize("kind", ["dash", "hls"])
def test_adaptive_formats(site: MediaSite, lib: MediaLibrary, kind: str) -> None:
    with _ydl() as ydl:
        info = ydl.extract_info(site.dash_url if kind == "dash" else site.hls_url, download=False)
    videos, audios = _split(info["formats"])
    assert sorted((f["width"], f["height"]) for f in videos.values()) == sorted(lib.renditions)
    assert all(f["vcodec"].startswith("avc1.") and f["acodec"] == "none" for f in videos.values())
    assert audios
    assert all(f["acodec"] == "mp4a.40.2" for f in audios)
    protocol = "http_dash_segments" if kind == "dash" else "m3u8_native"
    assert {f["protocol"] for f in info["formats"]} == {protocol}


@pytest.mark.parametrize("slow", [False, True])
def test_two_format_download(site: MediaSite, tmp_path: Path, slow: bool) -> None:
    def pick(ctx: dict[str, Any]) -> Any:
        videos, audios = _split(ctx["formats"])
        yield videos[360]
        yield audios[0]

    url = site.slow_dash_url if slow else site.hls_url
    started = time.monotonic()
    with _ydl(format=pick, outtmpl=str(tmp_path / "%(id)s.f%(format_id)s.%(ext)s")) as ydl:
        info = ydl.extract_info(url, download=True)
    downloads = info["requested_downloads"]
    assert len(downloads) == 2
    kinds = [[s["type"] for s in probe(d["filepath"])["streams"]] for d in downloads]
    assert kinds == [["video"], ["audio"]]
    assert probe(downloads[0]["filepath"])["streams"][0]["height"] == 360
    if slow:  # ~345 kB at 150 kB/s
        assert time.monotonic() - started > 1.5


@pytest.mark.parametrize(
    ("which", "status"),
    [("missing_url", 404), ("status500", 500), ("status429", 429), ("refused_url", None)],
)
def test_failures(site: MediaSite, which: str, status: int | None) -> None:
    url = site.status_url(status) if which.startswith("status") and status else getattr(site, which)
    with _ydl() as ydl, pytest.raises(DownloadError) as caught:
        ydl.extract_info(url, download=False)
    inner = caught.value.exc_info[1]
    if status is None:
        assert isinstance(inner, TransportError)
        assert "Connection refused" in str(caught.value)
    else:
        assert isinstance(inner, HTTPError)
        assert inner.status == status
        assert f"HTTP Error {status}" in str(caught.value)


def _get(url: str, **headers: str) -> Any:
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10)


def test_http_details(site: MediaSite, lib: MediaLibrary) -> None:
    data = lib.path(lib.progressive).read_bytes()
    with _get(site.progressive_url, Range="bytes=10-19") as r:
        assert (r.status, r.headers["Content-Range"], r.read()) == (
            206,
            f"bytes 10-19/{len(data)}",
            data[10:20],
        )
    with _get(site.progressive_url, Range="bytes=-5") as r:
        assert (r.status, r.read()) == (206, data[-5:])
    with pytest.raises(urllib.error.HTTPError) as caught:
        _get(site.progressive_url, Range=f"bytes={len(data)}-")
    assert caught.value.code == 416
    types = {
        site.dash_url: "application/dash+xml",
        site.hls_url: "application/vnd.apple.mpegurl",
        site.url("clip/init-stream0.m4s"): "video/iso.segment",
        site.url("hls/360p/seg000.ts"): "video/mp2t",
        site.vertical_url: "video/mp4",
    }
    for url, ctype in types.items():
        with _get(url) as r:
            assert r.headers["Content-Type"] == ctype
    flaky = site.flaky_url(1, lib.progressive)
    with pytest.raises(urllib.error.HTTPError, match="503"):
        _get(flaky)
    with _get(flaky) as r:
        assert r.status == 200


def test_resume_uses_range(site: MediaSite, lib: MediaLibrary, tmp_path: Path) -> None:
    data = lib.path(lib.progressive).read_bytes()
    (tmp_path / "progressive.mp4.part").write_bytes(data[:100_000])
    with _ydl(outtmpl=str(tmp_path / "%(id)s.%(ext)s")) as ydl:
        info = ydl.extract_info(site.progressive_url, download=True)
    assert Path(info["requested_downloads"][0]["filepath"]).read_bytes() == data
    assert ("GET", "/progressive.mp4", 206) in site.requests


def test_stop_is_prompt_mid_transfer(lib: MediaLibrary) -> None:
    with MediaSite(lib, slow_rate=20_000) as slow_site:
        response = urllib.request.urlopen(slow_site.slow_url(lib.progressive))
        response.read(1000)
        started = time.monotonic()
    assert time.monotonic() - started < 1
    with pytest.raises(urllib.error.URLError, match="refused"):
        _get(slow_site.slow_url(lib.progressive))
    response.close()
