"""Playlists and bulk submissions become batches: one job per video, seen and steered together."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.conftest import TERMINAL, create_key, wait_terminal
from tests.media_site import MediaSite
from tests.webhook_receiver import webhook_receiver
from twister.config import Settings


def wait_batch(api: httpx.Client, batch_id: str, statuses: set[str], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/batch/{batch_id}")
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        if batch["status"] in statuses:
            return batch
        assert time.monotonic() < deadline, f"batch stayed {batch['status']}: {batch}"
        time.sleep(0.5)


@pytest.mark.usefixtures("worker")
def test_playlist_url_makes_a_batch_that_completes_and_reports(api: httpx.Client, media: MediaSite) -> None:
    with webhook_receiver([200]) as receiver:
        response = api.post("/jobs", json={"url": media.show_url(), "webhook_url": receiver.url})
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["total_videos"] == MediaSite.SHOW_EPISODES and created["paused"] is False
        assert [video["title"] for video in created["video_jobs"]] == ["Episode 1", "Episode 2", "Episode 3"]
        assert created["video_jobs"][1]["url"] == media.hls_url

        batch = wait_batch(api, created["batch_id"], {"completed", "finished"})
        assert batch["status"] == "completed", batch
        assert (batch["total_episodes"], batch["completed_episodes"], batch["failed_episodes"]) == (3, 3, 0)
        assert batch["show_url"] == media.show_url()
        for video in created["video_jobs"]:
            job = wait_terminal(api, video["job_id"])
            assert job["status"] == "Completed" and job["batch_id"] == created["batch_id"]
            assert httpx.get(job["s3_url"], timeout=30).status_code == 200

        deadline = time.monotonic() + 30
        while not any(b"batch_completed" in d.body for d in receiver.deliveries):
            assert time.monotonic() < deadline, [d.body for d in receiver.deliveries]
            time.sleep(0.3)
    events = [json.loads(d.body) for d in receiver.deliveries]
    batch_events = [event for event in events if event["type"] == "batch_completed"]
    assert len(batch_events) == 1, events
    event = batch_events[0]
    assert (event["batch_id"], event["status"], event["completed_episodes"]) == (created["batch_id"], "completed", 3)
    assert sorted(event["job_id"] for event in events if event["type"] == "job_completed") == sorted(
        video["job_id"] for video in created["video_jobs"]
    )
    # signed like every webhook
    delivery = next(d for d in receiver.deliveries if b"batch_completed" in d.body)
    assert delivery.headers["x-tornado-signature"].startswith("t=")


def wait_deliveries(receiver: Any, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(receiver.deliveries) < count:
        assert time.monotonic() < deadline, [d.body for d in receiver.deliveries]
        time.sleep(0.2)
    return [json.loads(d.body) for d in receiver.deliveries]


@pytest.mark.usefixtures("worker")
def test_a_paused_batchs_job_cancelled_before_the_start_still_calls_its_webhook(
    api: httpx.Client, media: MediaSite
) -> None:
    with webhook_receiver([200]) as receiver:
        created = api.post("/jobs", json={"url": media.show_url(), "paused": True, "webhook_url": receiver.url}).json()
        batch_id, jobs = created["batch_id"], [video["job_id"] for video in created["video_jobs"]]
        assert api.delete(f"/jobs/{jobs[0]}").status_code == 200
        cancelled = api.get(f"/jobs/{jobs[0]}").json()
        assert (cancelled["status"], cancelled["step"]) == ("Failed", "Cancelled")
        [event] = wait_deliveries(receiver, 1)
        assert (event["type"], event["job_id"], event["error"]) == ("job_failed", jobs[0], "Job cancelled by user")
        assert api.get(f"/batch/{batch_id}").json()["status"] == "paused"

        started = api.post(f"/batch/{batch_id}/start").json()
        assert started["started_jobs"] == 2
        batch = wait_batch(api, batch_id, {"completed", "finished"})
        assert (batch["status"], batch["completed_episodes"], batch["failed_episodes"]) == ("finished", 2, 1)
        events = wait_deliveries(receiver, 4)
    assert sorted(event["type"] for event in events) == [
        "batch_completed",
        "job_completed",
        "job_completed",
        "job_failed",
    ]
    assert api.get(f"/jobs/{jobs[0]}").json()["step"] == "Cancelled"


@pytest.mark.usefixtures("worker")
def test_paused_playlist_waits_can_be_renamed_then_starts(api: httpx.Client, media: MediaSite) -> None:
    created = api.post("/jobs", json={"url": media.show_url(), "paused": True, "folder": "shows"}).json()
    assert created["paused"] is True
    batch_id, jobs = created["batch_id"], [video["job_id"] for video in created["video_jobs"]]
    time.sleep(2)
    batch = api.get(f"/batch/{batch_id}").json()
    assert batch["status"] == "paused" and batch["folder"] == "shows"
    assert {api.get(f"/jobs/{job}").json()["status"] for job in jobs} == {"Pending"}

    renamed = api.patch(
        f"/batch/{batch_id}/jobs",
        json={
            "renames": [
                {"job_id": jobs[0], "filename": "pilot"},
                {"job_id": jobs[1], "filename": "../escape"},
                {"job_id": "not-a-job", "filename": "x"},
            ]
        },
    )
    assert renamed.status_code == 200, renamed.text
    result = renamed.json()
    assert result["updated"] == 1
    assert [error["job_id"] for error in result["errors"]] == [jobs[1], "not-a-job"]
    assert "filename" in result["errors"][0]["error"]

    started = api.post(f"/batch/{batch_id}/start")
    assert started.status_code == 200 and started.json() == {
        "batch_id": batch_id,
        "started_jobs": 3,
        "status": "processing",
    }
    assert api.post(f"/batch/{batch_id}/start").status_code == 400
    late = api.patch(f"/batch/{batch_id}/jobs", json={"renames": [{"job_id": jobs[2], "filename": "late"}]})
    assert late.status_code == 400 and "paused" in late.json()["error"]

    assert wait_batch(api, batch_id, {"completed", "finished"})["status"] == "completed"
    first = wait_terminal(api, jobs[0])
    assert first["s3_url"].split("?")[0].endswith("/shows/pilot.mp4"), first["s3_url"]


@pytest.mark.usefixtures("worker")
def test_batch_with_a_lost_episode_is_finished_with_one_failure(api: httpx.Client, media: MediaSite) -> None:
    created = api.post("/jobs", json={"url": media.show_url(missing=True)}).json()
    assert created["total_videos"] == MediaSite.SHOW_EPISODES + 1
    batch = wait_batch(api, created["batch_id"], {"completed", "finished"})
    assert (batch["status"], batch["completed_episodes"], batch["failed_episodes"]) == ("finished", 3, 1)
    lost = next(job for job in batch["episode_jobs"] if job["title"] == "Lost episode")
    assert lost["status"] == "Warning" and lost["error"]


@pytest.mark.usefixtures("worker")
def test_bulk_makes_a_batch_of_its_urls(api: httpx.Client, media: MediaSite) -> None:
    response = api.post(
        "/jobs/bulk",
        json={
            "jobs": [
                {"url": media.progressive_url, "filename": "one"},
                {"url": media.hls_url},
                {"url": media.webm_url},
            ],
            "format": "mkv",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["total_jobs"] == 3 and len(created["job_ids"]) == 3
    batch = wait_batch(api, created["batch_id"], {"completed", "finished"})
    assert batch["status"] == "completed" and batch["total_episodes"] == 3
    jobs = [wait_terminal(api, job_id) for job_id in created["job_ids"]]
    assert [job["format"] for job in jobs] == ["mkv"] * 3
    assert jobs[0]["s3_url"].split("?")[0].endswith("/one.mkv")
    assert all(job["status"] in TERMINAL for job in jobs)


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"jobs": []}, 400, "jobs"),
        ({}, 400, "jobs"),
        ({"jobs": [{"url": "http://127.0.0.1:9/v.mp4"}] * 101}, 400, "100"),
        ({"jobs": [{"url": "http://127.0.0.1:9/v.mp4"}], "storage": {"provider": "s3"}}, 400, "storage"),
        ({"jobs": [{"url": "http://127.0.0.1:9/v.mp4"}], "paused": True}, 400, "paused"),
        ({"jobs": [{"url": "http://127.0.0.1:9/v.mp4"}, {"url": "ftp://x"}]}, 400, "jobs[1].url"),
        ({"jobs": [{"url": "http://127.0.0.1:9/v.mp4", "format": "mkv"}]}, 400, "jobs[0].format"),
        ({"jobs": ["http://127.0.0.1:9/v.mp4"]}, 422, "jobs[0]"),
        ({"jobs": [{"url": "http://127.0.0.1:9/v.mp4"}], "format": "avi"}, 400, "format"),
    ],
)
def test_bulk_refuses_bad_bodies_naming_the_field(
    api: httpx.Client, body: dict[str, Any], status: int, names: str
) -> None:
    response = api.post("/jobs/bulk", json=body)
    assert response.status_code == status, response.text
    assert names in response.json()["error"]


def test_another_keys_batch_is_not_found(api: httpx.Client, settings: Settings, gateway: str, media: MediaSite) -> None:
    created = api.post("/jobs", json={"url": media.show_url(), "paused": True}).json()
    other = httpx.Client(base_url=gateway, headers={"x-api-key": create_key(settings, "batch-stranger")}, timeout=30)
    with other:
        assert other.get(f"/batch/{created['batch_id']}").status_code == 404
        assert other.post(f"/batch/{created['batch_id']}/start").status_code == 404
        assert other.get("/batch/not-a-uuid").status_code == 404
        job_id = created["video_jobs"][0]["job_id"]
        assert other.get(f"/jobs/{job_id}").status_code == 404
    # the owner cancels the paused batch's jobs (they have no workflow yet)
    for video in created["video_jobs"]:
        assert api.delete(f"/jobs/{video['job_id']}").status_code == 200
    assert api.get(f"/jobs/{job_id}").json()["step"] == "Cancelled"
