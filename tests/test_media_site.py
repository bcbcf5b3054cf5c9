"""The local media site, only as far as the job tests stand on it: the clips are what they claim,
and yt-dlp's generic extractor sees separate video renditions and audio in DASH and HLS."""

from __future__ import annotations

from typing import Any

import pytest
import yt_dlp

from tests.media_site import FFMPEG, MediaSite, probe


class _QuietLogger:
    def debug(self, msg: str) -> None: ...
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...


def test_generated_files(media: MediaSite) -> None:
    lib = media.library
    for rel, size in ((lib.progressive, lib.progressive_size), (lib.vertical, lib.vertical_size)):
        info = probe(lib.path(rel))
        assert abs(info["duration"] - lib.duration) < 0.1
        kinds = {s["type"]: s for s in info["streams"]}
        assert (kinds["video"]["codec"], kinds["video"]["width"], kinds["video"]["height"]) == ("h264", *size)
        assert kinds["audio"]["codec"] == "aac"
    assert {s["codec"] for s in probe(lib.path(lib.webm))["streams"]} == {"vp9", "opus"}


@pytest.mark.parametrize("kind", ["dash", "hls"])
def test_adaptive_formats(media: MediaSite, kind: str) -> None:
    params: dict[str, Any] = {"logger": _QuietLogger(), "noprogress": True, "ffmpeg_location": FFMPEG}
    with yt_dlp.YoutubeDL(params) as ydl:
        info = ydl.extract_info(media.dash_url if kind == "dash" else media.hls_url, download=False)
    formats = info["formats"]
    videos = [f for f in formats if f.get("vcodec") not in (None, "none")]
    audios = [f for f in formats if f.get("vcodec") == "none" and f.get("acodec") not in (None, "none")]
    assert sorted((f["width"], f["height"]) for f in videos) == sorted(media.library.renditions)
    assert all(f["vcodec"].startswith("avc1.") and f["acodec"] == "none" for f in videos)
    assert audios and all(f["acodec"] == "mp4a.40.2" for f in audios)
