"""Live recording: a live HLS stream of the media site (segments published one per second while it is
read, then ENDLIST) recorded by real jobs, each proven on the delivered file and the site's access log."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TERMINAL, create_key, fetch, ffprobe_json, leftover_work_dirs, submit, wait_terminal
from tests.media_site import MediaSite
from tests.test_limits import assert_over_limit, limited_gateway
from twister.config import Settings

pytestmark = pytest.mark.usefixtures("worker")

TOLERANCE = 0.3  # seconds: a recording starts and stops on whole frames of one-second segments


def fetched_segments(media: MediaSite, url: str) -> list[int]:
    """The segments of the live stream at ``url`` the site served, in order."""
    stream = url.rsplit("/", 2)[1]
    found = (re.search(rf"/live/{stream}/seg(\d+)\.ts$", path) for _, path, status in media.requests if status == 200)
    return sorted({int(match.group(1)) for match in found if match})


def delivered_duration(settings: Settings, job: dict[str, Any], tmp_path: Path) -> float:
    assert job["status"] == "Completed", job["error"]
    probed = ffprobe_json(settings, fetch(job["s3_url"], tmp_path / f"{job['id']}.mp4"))
    assert {s["codec_type"] for s in probed["streams"]} == {"video", "audio"}
    return float(probed["format"]["duration"])


def wait_until_published(media: MediaSite, url: str, segments: int) -> None:
    while media.live_published(url) < segments:
        time.sleep(0.1)


def follow(api: httpx.Client, job_id: str, timeout: float = 60) -> tuple[dict[str, Any], list[Any]]:
    """Polls the job to its end; returns the final document and every ``progress`` seen on the way."""
    deadline = time.monotonic() + timeout
    seen: list[Any] = []
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            return job, seen
        if "progress" in job:
            seen.append(job["progress"])
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end in {timeout}s")


@pytest.fixture(scope="module")
def short_steps(settings: Settings) -> Iterator[TestClient]:
    """A gateway whose steps may last 3 s: a recording gets the time it was asked for on top."""
    yield from limited_gateway(settings, create_key(settings, "short-steps"), download_timeout=3.0)


def test_recording_stops_at_max_duration(
    short_steps: TestClient, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    url = media.live_url(media.library.live_segments)
    job = wait_terminal(short_steps, submit(short_steps, url=url, max_duration=8), timeout=60)
    assert abs(delivered_duration(settings, job, tmp_path) - 8) <= TOLERANCE
    assert job["extract_duration_ms"] + job["download_duration_ms"] > 3000  # longer than a step may take
    assert job["max_duration"] == 8 and "live_recording" not in job  # auto: recorded because it is live
    assert media.library.live_segments - 1 not in fetched_segments(media, url)  # the stream went on without it
    assert leftover_work_dirs(settings, job["id"]) == []


def test_stream_that_ends_is_recorded_to_its_end_with_progress_in_seconds(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    segments = 8
    url = media.live_url(segments)
    job, progress = follow(api, submit(api, url=url, download_thumbnail=True))
    fetched = fetched_segments(media, url)
    assert fetched == list(range(fetched[0], segments)), fetched  # from the live edge to the last one
    assert abs(delivered_duration(settings, job, tmp_path) - (segments - fetched[0])) <= TOLERANCE
    recording = [p for p in progress if "recorded_seconds" in p]
    recorded = [p["recorded_seconds"] for p in recording]
    assert len(set(recorded)) >= 3 and recorded == sorted(recorded), progress  # it grew while it was recorded
    assert 0 < recorded[-1] <= segments and recording[-1]["downloaded_bytes"] > 0
    thumbnail = ffprobe_json(settings, fetch(job["thumbnail_url"], tmp_path / "thumbnail.jpg"))  # a frame of it
    assert [s["codec_name"] for s in thumbnail["streams"]] == ["mjpeg"]


def test_live_from_start_gets_the_segments_published_before_the_job(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    segments, before = 10, 6
    from_start, from_now = media.live_url(segments), media.live_url(segments)
    wait_until_published(media, from_now, before)
    jobs = {url: submit(api, url=url, live_from_start=url == from_start) for url in (from_start, from_now)}
    durations = {url: delivered_duration(settings, wait_terminal(api, job), tmp_path) for url, job in jobs.items()}

    assert fetched_segments(media, from_start) == list(range(segments))
    assert abs(durations[from_start] - segments) <= TOLERANCE
    # without it, the recording starts at the live edge: what was published before is mostly not fetched
    assert fetched_segments(media, from_now)[0] >= before - 3
    assert durations[from_now] <= segments - (before - 3) + TOLERANCE


def test_wait_for_video_waits_for_a_stream_that_starts_late(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    waiting, impatient = media.live_url(4, late=3), media.live_url(4, late=60)
    waiting_job = submit(api, url=waiting, wait_for_video=True)
    impatient_job = wait_terminal(api, submit(api, url=impatient))
    assert impatient_job["status"] == "Warning" and impatient_job["error_type"] == "warning"
    assert "404" in impatient_job["error"], impatient_job["error"]

    job = wait_terminal(api, waiting_job, timeout=60)
    assert job["wait_for_video"] is True
    assert abs(delivered_duration(settings, job, tmp_path) - 4) <= TOLERANCE
    assert fetched_segments(media, waiting) == [0, 1, 2, 3]


def test_wait_for_video_gives_up_at_the_servers_limit(settings: Settings, media: MediaSite) -> None:
    for client in limited_gateway(settings, create_key(settings, "impatient"), max_wait_for_video_seconds=2):
        started = time.monotonic()
        job = wait_terminal(client, submit(client, url=media.live_url(4, late=60), wait_for_video=True))
        assert job["status"] == "Warning" and "did not appear within 2 s" in job["error"], job["error"]
        assert time.monotonic() - started < 20


def test_recording_stops_at_the_duration_limit(
    settings: Settings, gateway: str, media: MediaSite, tmp_path: Path
) -> None:
    """A live recording asked for no max_duration stops at its key's duration cap and is delivered;
    asked for more, it is refused as the resolution cap refuses (403)."""
    key = create_key(settings, "short-recordings", "--max-duration", "3")
    with httpx.Client(base_url=gateway, headers={"x-api-key": key}, timeout=30) as client:
        url = media.live_url(media.library.live_segments)
        job = wait_terminal(client, submit(client, url=url), timeout=60)
        assert abs(delivered_duration(settings, job, tmp_path) - 3) <= TOLERANCE
        refused = client.post("/jobs", json={"url": url, "max_duration": 4})
    assert refused.status_code == 403 and refused.json()["limit"] == 3, refused.text
    assert "max_duration" in refused.json()["message"]


def test_recording_over_the_size_limit_ends_warning(settings: Settings, media: MediaSite) -> None:
    """The stream goes on for 12 s; the recording passes the limit after about two and stops there."""
    for client in limited_gateway(settings, create_key(settings, "small-recordings"), max_file_size_bytes=150_000):
        url = media.live_url(media.library.live_segments)
        assert_over_limit(settings, client, submit(client, url=url), "File too large")
        assert len(fetched_segments(media, url)) < media.library.live_segments / 2


def test_cancel_stops_a_recording(api: httpx.Client, media: MediaSite, settings: Settings) -> None:
    url = media.live_url(media.library.live_segments)
    job_id = submit(api, url=url)
    wait_until_recording(api, job_id)
    assert api.delete(f"/jobs/{job_id}").status_code == 200
    job = wait_terminal(api, job_id, timeout=15)
    assert (job["status"], job["step"]) == ("Failed", "Cancelled")
    time.sleep(2)  # the cancel reaches the recorder with its next heartbeat
    fetched = fetched_segments(media, url)
    time.sleep(2)  # the stream publishes two more segments meanwhile
    assert fetched_segments(media, url) == fetched  # the recorder stopped reading the stream
    assert media.library.live_segments - 1 not in fetched
    assert leftover_work_dirs(settings, job_id) == []


def wait_until_recording(api: httpx.Client, job_id: str) -> None:
    deadline = time.monotonic() + 30
    while not api.get(f"/jobs/{job_id}").json().get("progress", {}).get("recorded_seconds"):
        assert time.monotonic() < deadline, "the recording did not start"
        time.sleep(0.2)


def test_non_live_source_with_live_recording_is_downloaded_whole(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    """live_recording: true on a video that is not live (e.g. a stream that has ended) gets the video;
    max_duration bounds live recordings only."""
    job = wait_terminal(api, submit(api, url=media.progressive_url, live_recording=True, max_duration=2))
    assert abs(delivered_duration(settings, job, tmp_path) - media.library.duration) <= 0.2
    assert job["live_recording"] is True


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"live_recording": False}, "live_recording is false"),
        ({"clip_start": 1, "clip_end": 3}, "cannot be clipped"),
    ],
)
def test_live_source_that_may_not_be_recorded_ends_warning(
    api: httpx.Client, media: MediaSite, options: dict[str, Any], reason: str
) -> None:
    url = media.live_url(media.library.live_segments)
    job = wait_terminal(api, submit(api, url=url, **options), timeout=30)
    assert job["status"] == "Warning" and job["error_type"] == "warning" and reason in job["error"], job
    assert fetched_segments(media, url) == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"max_duration": -5}, 400, "max_duration"),
        ({"max_duration": 0}, 400, "max_duration"),
        ({"max_duration": 43_201}, 400, "max_duration"),  # over the server's duration limit
        ({"max_duration": "60"}, 422, "max_duration"),
        ({"max_duration": 1.5}, 422, "max_duration"),
        ({"max_duration": True}, 422, "max_duration"),
        ({"live_recording": "yes"}, 422, "live_recording"),
        ({"live_from_start": 1}, 422, "live_from_start"),
        ({"wait_for_video": "true"}, 422, "wait_for_video"),
        ({"live_recording": False, "max_duration": 60}, 400, "max_duration"),
        ({"live_recording": False, "live_from_start": True}, 400, "live_from_start"),
        ({"live_recording": True, "clip_start": 5}, 400, "clip_start"),
        ({"live_recording": True, "clip_end": 5}, 400, "clip_end"),
    ],
)
def test_bad_live_options_are_refused(
    api: httpx.Client, media: MediaSite, body: dict[str, Any], status: int, field: str
) -> None:
    response = api.post("/jobs", json={"url": media.progressive_url, **body})
    assert response.status_code == status and field in response.json()["error"], response.text
