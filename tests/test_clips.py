"""clip_start / clip_end: the three syntaxes, an exact delivered duration, and only the clip's part of a
segmented source fetched."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import fetch, ffprobe_json, submit, wait_terminal
from tests.media_site import FFMPEG, MediaSite
from twister.config import Settings
from twister.media.clips import parse_timestamp

SEGMENTS = 20  # one second each


@pytest.fixture(scope="module")
def long_hls(media: MediaSite) -> str:
    """A 20-segment HLS stream (video and audio), written into the media site's folder."""
    folder = media.library.root / "long"
    folder.mkdir(exist_ok=True)
    subprocess.run(
        [
            FFMPEG, "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={SEGMENTS}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={SEGMENTS}",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac",
            "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
            "-hls_segment_filename", str(folder / "seg%03d.ts"), str(folder / "index.m3u8"),
        ],
        check=True,
    )  # fmt: skip
    return media.url("long/index.m3u8")


@pytest.mark.parametrize(
    ("text", "seconds"), [("01:02:03", 3723.0), ("02:03.5", 123.5), ("7", 7.0), ("7.25", 7.25), (12, 12.0)]
)
def test_timestamp_syntaxes(text: str | int, seconds: float) -> None:
    assert parse_timestamp(text) == seconds


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"clip_start": "00:10", "clip_end": "00:05"}, "clip_end"),
        ({"clip_start": 3, "clip_end": 3}, "clip_end"),
        ({"clip_start": "1:75"}, "clip_start"),
        ({"clip_end": "soon"}, "clip_end"),
        ({"clip_start": -1}, "clip_start"),
        ({"clip_start": []}, "clip_start"),  # found by schemathesis: was a 500
    ],
)
def test_bad_clips_are_400(api: httpx.Client, media: MediaSite, body: dict[str, object], message: str) -> None:
    response = api.post("/jobs", json={"url": media.hls_url, **body})
    assert response.status_code == 400 and message in response.json()["error"], response.text


def fetched_segments(media: MediaSite) -> set[int]:
    return {int(m.group(1)) for _, path, _ in media.requests if (m := re.search(r"/long/seg(\d+)\.ts", path))}


@pytest.mark.usefixtures("worker")
def test_clip_is_exact_and_only_its_segments_are_fetched(
    api: httpx.Client, media: MediaSite, settings: Settings, long_hls: str, tmp_path: Path
) -> None:
    job = wait_terminal(api, submit(api, url=long_hls, clip_start="00:12.5", clip_end="15.7"), timeout=120)
    assert job["status"] == "Completed", job["error"]
    assert (job["clip_start"], job["clip_end"]) == (12.5, 15.7)
    probed = ffprobe_json(settings, fetch(job["s3_url"], tmp_path / "clip.mp4"))
    assert abs(float(probed["format"]["duration"]) - 3.2) <= 0.1
    assert {s["codec_type"] for s in probed["streams"]} == {"video", "audio"}
    # the clip's segments (12-15) with ffmpeg's read-ahead of two, and the first two, which ffmpeg
    # reads to learn the format: the other ten segments are never fetched
    fetched = fetched_segments(media)
    assert set(range(12, 16)) <= fetched <= {0, 1, *range(11, 18)}, sorted(fetched)


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("source", ["dash_url", "progressive_url"])
def test_clip_of_dash_and_plain_files_is_exact(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path, source: str
) -> None:
    """DASH comes whole (this ffmpeg reads no DASH) and the mux step cuts it; a plain file is read by ranges."""
    job = wait_terminal(api, submit(api, url=getattr(media, source), clip_start=0.5, clip_end="00:02"), timeout=120)
    assert job["status"] == "Completed", job["error"]
    delivered = fetch(job["s3_url"], tmp_path / "clip.mp4")
    assert abs(float(ffprobe_json(settings, delivered)["format"]["duration"]) - 1.5) <= 0.1
