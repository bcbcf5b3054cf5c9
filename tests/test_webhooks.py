"""Webhooks: signed, retried with backoff, and never able to change the job's own status."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import httpx
import pytest

from tests.conftest import submit, wait_for
from tests.media_site import MediaSite
from tests.webhook_receiver import webhook_receiver
from twister import db
from twister.config import Settings
from twister.crypto import SecretBox


def webhook_secret(settings: Settings, api_key: str) -> str:
    """The key's signing secret, opened with the server key (its endpoint comes in a later issue)."""

    async def read() -> str:
        pool = await db.create_pool(settings.database_url, settings.database_timeout)
        try:
            key = await db.find_api_key(pool, api_key)
            assert key is not None
            return await db.webhook_secret(pool, SecretBox.from_settings(settings), key.id)
        finally:
            await pool.close()

    return asyncio.run(read())


def verify(secret: str, header: str, body: bytes) -> bool:
    parts = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


def settled(job: dict[str, object]) -> bool:
    return job.get("webhook_status") in ("delivered", "failed")


@pytest.mark.usefixtures("worker")
def test_webhook_retried_until_delivered_and_signed(
    api: httpx.Client, api_key: str, media: MediaSite, settings: Settings
) -> None:
    with webhook_receiver([500, 200]) as receiver:
        job_id = submit(api, url=media.progressive_url, webhook_url=receiver.url, folder="hooks")
        job = wait_for(api, job_id, settled)

    assert job["status"] == "Completed" and job["webhook_status"] == "delivered"
    assert len(receiver.deliveries) == 2
    delivery = receiver.deliveries[-1]
    assert verify(webhook_secret(settings, api_key), delivery.headers["x-tornado-signature"], delivery.body)
    event = json.loads(delivery.body)
    assert event["type"] == "job_completed" and event["status"] == "completed" and event["job_id"] == job_id
    assert (event["key"], event["folder"]) == (f"hooks/{job_id}.mp4", "hooks")
    assert event["file_size"] == job["file_size"]
    assert httpx.get(event["s3_url"]).status_code == 200


@pytest.mark.usefixtures("worker")
def test_warning_job_sends_job_warning_event(api: httpx.Client, media: MediaSite) -> None:
    with webhook_receiver([200]) as receiver:
        job_id = submit(api, url=media.missing_url, webhook_url=receiver.url)
        job = wait_for(api, job_id, settled)

    assert job["status"] == "Warning" and job["webhook_status"] == "delivered"
    event = json.loads(receiver.deliveries[0].body)
    assert (event["type"], event["status"], event["error_type"]) == ("job_warning", "warning", "warning")
    assert "s3_url" not in event


@pytest.mark.usefixtures("worker")
def test_progress_events_are_signed_and_come_before_the_end(
    api: httpx.Client, api_key: str, media: MediaSite, settings: Settings
) -> None:
    with webhook_receiver([200]) as receiver:
        job_id = submit(api, url=media.progressive_url, webhook_url=receiver.url, enable_progress_webhook=True)
        job = wait_for(api, job_id, settled)

    assert job["status"] == "Completed" and job["enable_progress_webhook"] is True
    secret = webhook_secret(settings, api_key)
    assert all(verify(secret, d.headers["x-tornado-signature"], d.body) for d in receiver.deliveries)
    events = [json.loads(d.body) for d in receiver.deliveries]
    assert [(e["type"], e.get("stage"), e.get("percent")) for e in events] == [
        ("progress", "downloading", 0),
        ("progress", "download_complete", 33),
        ("progress", "muxing", 33),
        ("progress", "mux_complete", 66),
        ("progress", "uploading", 66),
        ("progress", "completed", 100),
        ("job_completed", None, None),
    ]
    assert {e["job_id"] for e in events} == {job_id}


def test_progress_webhook_needs_a_webhook_url(api: httpx.Client, media: MediaSite) -> None:
    response = api.post("/jobs", json={"url": media.progressive_url, "enable_progress_webhook": True})
    assert response.status_code == 400 and "enable_progress_webhook" in response.json()["error"]
