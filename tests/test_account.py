"""A key's own side of the API: usage and caps (set with the CLI), webhook secret, Slack alerts."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import create_key, fetch, ffprobe_json, submit, twister_cli, wait_terminal
from tests.media_site import MediaSite
from tests.webhook_receiver import Receiver, webhook_receiver
from twister.config import Settings
from twister.gateway.app import create_app


def client_for(gateway: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=gateway, headers={"x-api-key": key}, timeout=30)


def key_id_of(settings: Settings, name: str) -> str:
    """The id ``twister keys list`` shows for the key of this name."""
    listed = twister_cli(settings, "keys", "list").stdout.splitlines()
    line = next(line for line in listed if f" name={name} " in f"{line} ")
    return line.split("id=")[1].split()[0]


def wait_deliveries(receiver: Receiver, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.deliveries) < count:
        assert time.monotonic() < deadline, f"{len(receiver.deliveries)} deliveries, wanted {count}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def capped(settings: Settings, gateway: str, worker: object) -> Iterator[httpx.Client]:
    key = create_key(settings, "capped", "--max-resolution", "480")
    with client_for(gateway, key) as client:
        yield client


def test_resolution_cap_refuses_more_and_caps_best(
    capped: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    refused = capped.post("/jobs", json={"url": media.hls_url, "max_resolution": "720"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["limit"] == 480 and refused.json()["error"] == "Resolution limit exceeded"

    job = wait_terminal(capped, submit(capped, url=media.hls_url))
    assert job["status"] == "Completed" and job["max_resolution"] == "480"
    streams = ffprobe_json(settings, fetch(job["s3_url"], tmp_path / "capped.mp4"))["streams"]
    assert [s["height"] for s in streams if s["codec_type"] == "video"] == [360]


@pytest.mark.usefixtures("worker")
def test_file_size_cap_stops_a_larger_download(settings: Settings, gateway: str, media: MediaSite) -> None:
    with client_for(gateway, create_key(settings, "small-files-only", "--max-filesize", "200000")) as api:
        job = wait_terminal(api, submit(api, url=media.progressive_url))  # 350 kB
    assert job["status"] == "Warning" and "200000 bytes" in job["error"], job
    assert job["s3_url"] is None


@pytest.mark.usefixtures("worker")
def test_usage_counts_jobs_once_and_the_storage_quota_refuses(
    settings: Settings, gateway: str, media: MediaSite
) -> None:
    key = create_key(settings, "metered", "--storage-limit-gb", "1", "--max-duration", "600")
    with client_for(gateway, key) as api:
        fresh = api.get("/usage").json()
        assert fresh == {
            "client_name": "metered",
            "usage_count": 0,
            "storage_usage_gb": 0.0,
            "storage_limit_gb": 1.0,
            "storage_remaining_gb": 1.0,
            "max_duration_limit_seconds": 600,
            "max_filesize_limit_bytes": settings.max_file_size_bytes,
            "max_concurrent_jobs_limit": settings.max_unfinished_jobs_per_key,
        }
        stored = wait_terminal(api, submit(api, url=media.progressive_url))
        failed = wait_terminal(api, submit(api, url=media.missing_url))
        assert api.post(f"/jobs/{failed['id']}/retry").status_code == 201
        used = api.get("/usage").json()
        assert used["usage_count"] == 2  # the retry is the same job asked again
        assert used["storage_usage_gb"] == round(stored["file_size"] / 1024**3, 3)

        twister_cli(settings, "keys", "set", key_id_of(settings, "metered"), "--storage-limit-gb", "0.0000001")
        full = api.post("/jobs", json={"url": media.progressive_url})
        assert full.status_code == 403 and full.json()["error"] == "Storage quota exceeded", full.text
        assert set(full.json()) == {"error", "limit_gb", "used_gb", "message"}
        assert api.delete(f"/jobs/{stored['id']}/file").status_code == 200
        assert api.post("/jobs", json={"url": media.progressive_url}).status_code == 201  # room again


def test_concurrent_jobs_cap_is_a_quota(settings: Settings, media: MediaSite) -> None:
    key = create_key(settings, "one-at-a-time", "--max-concurrent-jobs", "1")
    app = create_app(settings.model_copy(update={"temporal_task_queue": "nobody-works-this-queue"}))
    with TestClient(app, headers={"x-api-key": key}) as api:
        first = submit(api, url=media.progressive_url)
        second = api.post("/jobs", json={"url": media.progressive_url})
        assert second.status_code == 403 and second.json()["limit"] == 1, second.text
        assert api.delete(f"/jobs/{first}").status_code == 200
        assert api.post("/jobs", json={"url": media.progressive_url}).status_code == 201


def test_keys_list_shows_caps_never_keys_and_revoke_locks_out(settings: Settings, gateway: str) -> None:
    key = create_key(settings, "short-lived", "--max-resolution", "720")
    listed = twister_cli(settings, "keys", "list").stdout
    assert "name=short-lived" in listed and "max_resolution=720" in listed and key not in listed
    key_id = key_id_of(settings, "short-lived")
    with client_for(gateway, key) as api:
        assert api.get("/usage").status_code == 200
        assert "revoked" in twister_cli(settings, "keys", "revoke", key_id).stdout
        gone = api.get("/usage")
        assert gone.status_code == 401 and gone.json() == {"error": "Invalid API Key"}
        job = api.get(f"/jobs/{uuid.uuid4()}")  # the key and the job are read together there
        assert job.status_code == 401 and job.json() == {"error": "Invalid API Key"}
    assert twister_cli(settings, "keys", "revoke", key_id, check=False).returncode == 1
    assert twister_cli(settings, "keys", "create", "--name", "x", "--max-resolution", "700", check=False).returncode


@pytest.mark.usefixtures("worker")
def test_rotated_webhook_secret_signs_the_next_webhooks(settings: Settings, gateway: str, media: MediaSite) -> None:
    with client_for(gateway, create_key(settings, "rotator")) as api, webhook_receiver([200]) as receiver:
        old = api.get("/user/webhook-secret").json()["secret"]
        new = api.post("/user/webhook-secret/rotate").json()["secret"]
        assert old.startswith("whsec_") and new.startswith("whsec_") and new != old
        assert api.get("/user/webhook-secret").json()["secret"] == new
        wait_terminal(api, submit(api, url=media.progressive_url, webhook_url=receiver.url))
        wait_deliveries(receiver, 1)
    delivery = receiver.deliveries[0]
    timestamp, signature = (part.split("=", 1)[1] for part in delivery.headers["x-tornado-signature"].split(","))
    expected = hmac.new(new.encode(), f"{timestamp}.".encode() + delivery.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)


@pytest.mark.usefixtures("worker")
def test_slack_alerts_follow_the_notify_level(settings: Settings, gateway: str, media: MediaSite) -> None:
    """Each change of the alert settings comes after the previous job's alert was decided either way."""
    with client_for(gateway, create_key(settings, "alerted")) as api, webhook_receiver([200]) as slack:
        assert api.post("/user/slack", json={"webhook_url": "http://10.9.8.7/hook"}).status_code == 400
        bad_level = api.post("/user/slack", json={"webhook_url": slack.url, "notify_level": "some"})
        assert bad_level.status_code == 400 and "notify_level" in bad_level.json()["error"]

        saved = api.post("/user/slack", json={"webhook_url": slack.url, "notify_level": "warnings_only"})
        assert saved.status_code == 200 and saved.json()["notify_level"] == "warnings_only"
        warned = wait_terminal(api, submit(api, url=media.missing_url))
        wait_deliveries(slack, 1)
        assert wait_terminal(api, submit(api, url=media.progressive_url))["status"] == "Completed"

        api.post("/user/slack", json={"webhook_url": slack.url, "notify_level": "errors_only"})
        assert wait_terminal(api, submit(api, url=media.missing_url))["status"] == "Warning"
        assert api.delete("/user/slack").json() == {"message": "Slack alerts removed"}
        wait_terminal(api, submit(api, url=media.missing_url))
        time.sleep(2)
    assert len(slack.deliveries) == 1, [d.body for d in slack.deliveries]
    text = json.loads(slack.deliveries[0].body)["text"]
    assert warned["id"] in text and "Warning" in text and media.missing_url in text
