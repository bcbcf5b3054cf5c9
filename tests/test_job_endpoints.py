"""The job endpoints beyond create and status: list, cancel, retry, delete the file, and metadata."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from tests.conftest import create_key, leftover_work_dirs, no_object_for, submit, wait_for, wait_terminal
from tests.media_site import MediaSite
from tests.webhook_receiver import webhook_receiver
from twister.config import Settings
from twister.gateway.app import create_app
from twister.storage import s3_client

CANCEL_WITHIN_S = 5


@pytest.fixture(scope="module")
def own_key_api(settings: Settings, gateway: str, worker: object) -> Iterator[httpx.Client]:
    """A key of its own, so its job list holds only this module's jobs."""
    with httpx.Client(base_url=gateway, headers={"x-api-key": create_key(settings, "lister")}, timeout=30) as client:
        yield client


def test_list_pages_newest_first_and_filters_by_status(
    own_key_api: httpx.Client, api: httpx.Client, media: MediaSite
) -> None:
    api_ = own_key_api
    jobs = [submit(api_, url=media.progressive_url), submit(api_, url=media.missing_url)]
    jobs.append(submit(api_, url=media.progressive_url))
    for job_id in jobs:
        wait_terminal(api_, job_id)

    first = api_.get("/jobs", params={"limit": 2}).json()
    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    assert [job["id"] for job in first["jobs"]] == [jobs[2], jobs[1]]
    assert set(first["jobs"][0]) >= {"id", "url", "status", "step", "created_at", "finished_at", "s3_key"}
    assert all(value is not None for job in first["jobs"] for value in job.values())
    rest = api_.get("/jobs", params={"limit": 2, "offset": 2}).json()
    assert [job["id"] for job in rest["jobs"]] == [jobs[0]] and rest["total"] == 3
    assert api_.get("/jobs", params={"offset": 3}).json()["jobs"] == []

    warned = api_.get("/jobs", params={"status": "warning"}).json()
    assert [job["id"] for job in warned["jobs"]] == [jobs[1]] and warned["total"] == 1
    assert api_.get("/jobs", params={"status": "Completed"}).json()["total"] == 2
    assert jobs[0] not in {job["id"] for job in api.get("/jobs", params={"limit": 100}).json()["jobs"]}


@pytest.mark.parametrize(
    ("params", "status", "names"),
    [({"limit": 101}, 400, "limit"), ({"limit": 0}, 400, "limit"), ({"limit": "ten"}, 422, "limit"),
     ({"offset": -1}, 400, "offset"), ({"status": "done"}, 400, "status")],
)  # fmt: skip
def test_list_refuses_bad_parameters(api: httpx.Client, params: dict[str, str | int], status: int, names: str) -> None:
    response = api.get("/jobs", params=params)
    assert response.status_code == status and names in response.json()["error"], response.text


def test_cancel_a_pending_job_with_no_worker(settings: Settings, api_key: str, media: MediaSite) -> None:
    """No worker polls this gateway's task queue: the job is Pending, and still cancelled at once."""
    app = create_app(settings.model_copy(update={"temporal_task_queue": "no-worker-polls-this"}))
    with TestClient(app, headers={"x-api-key": api_key}) as client:
        job_id = submit(client, url=media.progressive_url)
        assert client.get(f"/jobs/{job_id}").json()["status"] == "Pending"
        response = client.delete(f"/jobs/{job_id}")
        assert response.status_code == 200
        assert response.json() == {"message": "Job cancelled successfully", "job_id": job_id}
        job = wait_terminal(client, job_id, timeout=CANCEL_WITHIN_S)
        assert (job["status"], job["step"], job["error"]) == ("Failed", "Cancelled", "Job cancelled by user")
        again = client.delete(f"/jobs/{job_id}")
        assert again.status_code == 400 and "cannot be cancelled" in again.json()["error"]


@pytest.mark.usefixtures("worker")
def test_cancel_mid_download_stops_cleans_up_and_calls_the_webhook(
    api: httpx.Client, media: MediaSite, settings: Settings
) -> None:
    with webhook_receiver([200]) as receiver:
        job_id = submit(api, url=media.slow_dash_url, webhook_url=receiver.url)
        wait_for(api, job_id, lambda job: job["step"] == "Downloading" and "progress" in job)
        assert api.delete(f"/jobs/{job_id}").status_code == 200
        job = wait_terminal(api, job_id, timeout=CANCEL_WITHIN_S)
        assert (job["status"], job["step"], job["error"]) == ("Failed", "Cancelled", "Job cancelled by user")
        assert leftover_work_dirs(settings, job_id) == [] and no_object_for(settings, job_id)
        deadline = time.monotonic() + 30
        while not receiver.deliveries:
            assert time.monotonic() < deadline, "no webhook for the cancelled job"
            time.sleep(0.2)
    event = json.loads(receiver.deliveries[0].body)
    assert (event["type"], event["job_id"], event["error"]) == ("job_failed", job_id, "Job cancelled by user")


@pytest.mark.usefixtures("worker")
def test_retry_makes_a_new_job_with_the_same_parameters(api: httpx.Client, media: MediaSite) -> None:
    failed = submit(api, url=media.missing_url, format="mkv", filename="again")
    assert wait_terminal(api, failed)["status"] == "Warning"
    response = api.post(f"/jobs/{failed}/retry")
    assert response.status_code == 201, response.text
    retried = response.json()
    assert retried["original_job_id"] == failed and retried["message"] == "Job re-queued successfully"
    job = wait_terminal(api, retried["job_id"])
    assert (job["url"], job["format"], job["filename"]) == (media.missing_url, "mkv", "again")

    completed = submit(api, url=media.progressive_url)
    wait_terminal(api, completed)
    refused = api.post(f"/jobs/{completed}/retry")
    assert refused.status_code == 400 and refused.json()["error"] == "Only failed jobs can be retried"
    assert api.post("/jobs/00000000-0000-0000-0000-000000000000/retry").status_code == 404


@pytest.mark.usefixtures("worker")
def test_delete_file_removes_the_object(api: httpx.Client, media: MediaSite, settings: Settings) -> None:
    job_id = submit(api, url=media.progressive_url, download_thumbnail=True)
    job = wait_terminal(api, job_id)
    assert job["status"] == "Completed" and job["thumbnail_url"]
    response = api.delete(f"/jobs/{job_id}/file")
    assert response.status_code == 200, response.text
    deleted = response.json()
    assert deleted == {"message": "File deleted successfully", "job_id": job_id, "deleted_key": f"{job_id}.mp4"}
    with pytest.raises(ClientError):
        s3_client(settings).head_object(Bucket=settings.s3_bucket, Key=deleted["deleted_key"])
    assert no_object_for(settings, job_id)  # the thumbnail went with it
    after = api.get(f"/jobs/{job_id}").json()
    assert after["status"] == "Completed" and after["s3_url"] is None and "thumbnail_url" not in after
    again = api.delete(f"/jobs/{job_id}/file")
    assert again.status_code == 400 and again.json()["error"] == "Job has no file to delete"


@pytest.mark.usefixtures("worker")
def test_metadata_looks_without_downloading(api: httpx.Client, media: MediaSite) -> None:
    found = api.post("/metadata", json={"url": media.progressive_url})
    assert found.status_code == 200, found.text
    meta = found.json()
    assert (meta["width"], meta["height"]) == media.library.progressive_size
    assert abs(meta["duration"] - media.library.duration) < 0.5 and meta["extractor"] and meta["title"]

    show = api.post("/metadata", json={"url": media.show_url()}).json()
    assert (show["title"], show["total_videos"]) == ("Test show", MediaSite.SHOW_EPISODES)

    missing = api.post("/metadata", json={"url": media.missing_url})
    assert missing.status_code == 400 and "404" in missing.json()["error"]
    private = api.post("/metadata", json={"url": "http://10.1.2.3/video.mp4"})
    assert private.status_code == 400 and "url" in private.json()["error"]
    assert api.post("/metadata", json={}).status_code == 400


@pytest.mark.usefixtures("worker")
def test_another_keys_job_is_not_found_by_any_endpoint(
    api: httpx.Client, own_key_api: httpx.Client, media: MediaSite
) -> None:
    job_id = submit(api, url=media.missing_url)
    wait_terminal(api, job_id)
    stranger = own_key_api
    for method, path in [
        ("GET", f"/jobs/{job_id}"),
        ("DELETE", f"/jobs/{job_id}"),
        ("POST", f"/jobs/{job_id}/retry"),
        ("DELETE", f"/jobs/{job_id}/file"),
        ("GET", f"/jobs/{job_id}/events"),
        ("GET", "/jobs/not-a-uuid"),
        ("DELETE", "/jobs/not-a-uuid"),
    ]:
        response = stranger.request(method, path)
        assert response.status_code == 404 and response.json() == {"error": "Job not found"}, (method, path)
    assert api.get(f"/jobs/{job_id}").json()["status"] == "Warning"  # untouched by the stranger
