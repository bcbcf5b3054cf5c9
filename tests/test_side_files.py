"""download_subtitles / subtitle_langs / download_thumbnail: a WebVTT in the asked language and a JPEG,
stored beside the video under its name; missing subtitles are no error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import fetch, ffprobe_json, submit, wait_terminal
from tests.media_site import MediaSite
from twister.config import Settings
from twister.storage import s3_client


@pytest.mark.usefixtures("worker")
def test_subtitles_in_the_asked_language_and_the_sources_thumbnail(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    asked = {"download_subtitles": True, "subtitle_langs": ["de", "en"], "download_thumbnail": True}
    job_id = submit(api, url=media.captioned_url, filename="talk", folder="side", **asked)
    job = wait_terminal(api, job_id, timeout=120)
    assert job["status"] == "Completed", job["error"]
    assert job["subtitle_langs"] == ["de", "en"]

    vtt = fetch(job["subtitle_url"], tmp_path / "talk.vtt").read_text()
    assert vtt.startswith("WEBVTT") and "Hallo" in vtt and "-->" in vtt  # German, converted from SRT
    thumbnail = ffprobe_json(settings, fetch(job["thumbnail_url"], tmp_path / "talk.jpg"))
    assert thumbnail["streams"][0]["codec_name"] == "mjpeg"
    stored = s3_client(settings).list_objects_v2(Bucket=settings.s3_bucket, Prefix="side/")
    assert sorted(item["Key"] for item in stored["Contents"]) == ["side/talk.de.vtt", "side/talk.jpg", "side/talk.mp4"]


@pytest.mark.usefixtures("worker")
def test_no_subtitles_is_no_error_and_a_frame_makes_the_thumbnail(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    job_id = submit(api, url=media.progressive_url, download_subtitles=True, download_thumbnail=True)
    job = wait_terminal(api, job_id, timeout=120)
    assert job["status"] == "Completed", job["error"]
    assert job["subtitle_url"] is None
    thumbnail = ffprobe_json(settings, fetch(job["thumbnail_url"], tmp_path / "frame.jpg"))
    assert (thumbnail["streams"][0]["codec_name"], thumbnail["streams"][0]["width"]) == ("mjpeg", 640)
