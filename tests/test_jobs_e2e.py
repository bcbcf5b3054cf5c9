"""End to end over HTTP: a job goes through the real gateway, Temporal, worker, ffmpeg and S3."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    TERMINAL,
    fetch,
    ffprobe_json,
    leftover_work_dirs,
    moov_before_mdat,
    submit,
    wait_for,
    wait_terminal,
)
from tests.media_site import MediaSite
from twister.config import Settings
from twister.db import now_ms
from twister.gateway.status import FINISHED_FIELDS
from twister.models import JobOutcome

BASE_FIELDS = {"id", "url", "status", "s3_url", "subtitle_url", "error", "step", "created_at"}
ECHOED_TYPES: dict[str, tuple[type, ...]] = {"format": (str,), "audio_only": (bool,), "max_resolution": (str,)}
STEP_DURATIONS = ("extract_duration_ms", "download_duration_ms", "mux_duration_ms", "upload_duration_ms")


def finished_types() -> dict[str, tuple[type, ...]]:
    """The JSON types of the finished fields, from the outcome model (enums travel as strings)."""
    hints = typing.get_type_hints(JobOutcome)
    types: dict[str, tuple[type, ...]] = {}
    for name in FINISHED_FIELDS:
        kinds = [t for t in typing.get_args(hints[name]) or (hints[name],) if t is not type(None)]
        json_kinds = {int: (int,), float: (int, float)}
        types[name] = tuple(k for kind in kinds for k in json_kinds.get(kind, (str,)))
    return types


@pytest.mark.usefixtures("worker")
def test_dash_job_completes_with_contract_document(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    job_id = submit(api, url=media.dash_url, max_resolution="480")
    active = api.get(f"/jobs/{job_id}").json()
    assert BASE_FIELDS <= set(active) <= BASE_FIELDS | {"progress"}
    assert active["status"] in ("Pending", "Processing") and active["s3_url"] is None

    first_seen_started: list[int] = []

    def finished(job: dict[str, Any]) -> bool:
        if job["step"] != "Queued" and not first_seen_started:
            first_seen_started.append(now_ms())
        return job["status"] in TERMINAL

    job = wait_for(api, job_id, finished)

    assert job["status"] == "Completed", job["error"]
    assert job["step"] == "Finished" and job["error"] is None and job["id"] == job_id
    absent = {"webhook_status", "error_type"}  # no webhook asked, no error
    for field, expected in {**finished_types(), **ECHOED_TYPES}.items():
        assert (field in absent) == (field not in job), field
        assert field in absent or isinstance(job[field], expected), (field, job.get(field))
    assert job["download_retries"] == 0 and job["upload_retries"] == 0
    assert job["requested_quality"] == "480" and job["actual_quality"] == "360p" and job["max_resolution"] == "480"
    assert job["native_video_codec"] == "h264" and job["native_audio_codec"] == "aac"
    # the timings make sense together, not only as types
    total = job["total_duration_ms"]
    assert total == job["finished_at"] - job["created_at"]
    assert all(0 < job[step] <= total for step in STEP_DURATIONS), {s: job[s] for s in STEP_DURATIONS}
    assert job["queue_wait_ms"] + sum(job[step] for step in STEP_DURATIONS) <= total
    assert 0 <= job["queue_wait_ms"] <= first_seen_started[0] - job["created_at"]
    upload_mbps = job["file_size"] / 1e6 / (job["upload_duration_ms"] / 1000)
    assert job["upload_speed_mbps"] == pytest.approx(upload_mbps, rel=0.1)
    download_mbps = job["file_size"] / 1e6 / (job["download_duration_ms"] / 1000)  # stream copy: same bytes
    assert job["download_speed_mbps"] == pytest.approx(download_mbps, rel=0.2)

    output = fetch(job["s3_url"], tmp_path / "out.mp4")
    assert output.stat().st_size == job["file_size"]
    probe = ffprobe_json(settings, output)
    codecs = {s["codec_type"]: s for s in probe["streams"]}
    assert codecs["video"]["codec_name"] == "h264" and codecs["audio"]["codec_name"] == "aac"
    assert (codecs["video"]["width"], codecs["video"]["height"]) == (640, 360)
    assert abs(float(probe["format"]["duration"]) - media.library.duration) <= 0.2


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("source", ["hls_url", "page_url"])
def test_hls_playlist_and_html_page_sources(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path, source: str
) -> None:
    job = wait_terminal(api, submit(api, url=getattr(media, source), max_resolution="720"))
    assert job["status"] == "Completed", job["error"]
    output = fetch(job["s3_url"], tmp_path / "out.mp4")
    probe = ffprobe_json(settings, output)
    assert sorted(s["codec_name"] for s in probe["streams"]) == ["aac", "h264"]
    assert abs(float(probe["format"]["duration"]) - media.library.duration) <= 0.2
    assert moov_before_mdat(output)


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize(
    ("body", "extension", "codecs"),
    [({"format": "mkv"}, "mkv", ["aac", "h264"]), ({"audio_only": True}, "m4a", ["aac"])],
)
def test_hls_streams_kept_as_mpeg_ts_become_any_container(
    api: httpx.Client,
    media: MediaSite,
    settings: Settings,
    tmp_path: Path,
    body: dict[str, Any],
    extension: str,
    codecs: list[str],
) -> None:
    """HLS segments are downloaded as MPEG-TS and remuxed once, by the mux step, into what was asked."""
    job = wait_terminal(api, submit(api, url=media.hls_url, max_resolution="720", **body))
    assert job["status"] == "Completed", job["error"]
    assert job["format"] == extension
    probe = ffprobe_json(settings, fetch(job["s3_url"], tmp_path / f"out.{extension}"))
    assert sorted(s["codec_name"] for s in probe["streams"]) == codecs
    assert "mpegts" not in probe["format"]["format_name"]
    assert abs(float(probe["format"]["duration"]) - media.library.duration) <= 0.2


@pytest.mark.usefixtures("worker")
def test_vertical_video_to_mkv_caps_shorter_side(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    job = wait_terminal(api, submit(api, url=media.vertical_url, format="mkv", max_resolution="360"))
    assert job["status"] == "Completed", job["error"]
    assert job["actual_quality"] == "360p" and job["format"] == "mkv"
    probe = ffprobe_json(settings, fetch(job["s3_url"], tmp_path / "out.mkv"))
    assert probe["format"]["format_name"].startswith("matroska")
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (360, 640)


@pytest.mark.usefixtures("worker")
def test_webm_source_to_mp4_reencodes_only_the_audio(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    job = wait_terminal(api, submit(api, url=media.webm_url))
    assert job["status"] == "Completed", job["error"]
    assert (job["native_video_codec"], job["native_audio_codec"]) == ("vp9", "opus")
    output = fetch(job["s3_url"], tmp_path / "out.mp4")
    assert sorted(s["codec_name"] for s in ffprobe_json(settings, output)["streams"]) == ["aac", "vp9"]
    assert moov_before_mdat(output)


@pytest.mark.usefixtures("worker")
def test_audio_only_job_gives_m4a(api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path) -> None:
    job = wait_terminal(api, submit(api, url=media.dash_url, audio_only=True))
    assert job["status"] == "Completed", job["error"]
    assert job["format"] == "m4a" and job["actual_quality"] == "audio"
    probe = ffprobe_json(settings, fetch(job["s3_url"], tmp_path / "out.m4a"))
    assert [s["codec_type"] for s in probe["streams"]] == ["audio"]


@pytest.mark.usefixtures("worker")
def test_missing_source_ends_as_warning_without_retry(api: httpx.Client, media: MediaSite, settings: Settings) -> None:
    job = wait_terminal(api, submit(api, url=media.missing_url))
    assert job["status"] == "Warning", job
    assert job["error_type"] == "warning" and job["download_retries"] == 0
    assert "404" in job["error"] and "yt-dlp" not in job["error"].lower()
    assert job["s3_url"] is None
    assert leftover_work_dirs(settings, job["id"]) == []


@pytest.mark.usefixtures("worker")
def test_refused_connection_fails_after_configured_retries(
    api: httpx.Client, media: MediaSite, settings: Settings
) -> None:
    job = wait_terminal(api, submit(api, url=media.refused_url))
    assert job["status"] == "Failed", job
    assert job["error_type"] == "error"
    assert job["download_retries"] == settings.download_max_retries
    assert "refused" in job["error"].lower()
    assert leftover_work_dirs(settings, job["id"]) == []


@pytest.mark.usefixtures("worker")
def test_server_error_is_retried_then_succeeds(api: httpx.Client, media: MediaSite) -> None:
    job = wait_terminal(api, submit(api, url=media.flaky_url(1, "progressive.mp4")))
    assert job["status"] == "Completed", job["error"]
    assert job["download_retries"] == 1
