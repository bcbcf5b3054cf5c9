"""Inline ``storage`` (provider s3): the job's file goes to the tenant's own bucket, checked by a probe
write before the job starts; its secret is never shown, logged or stored in plain text."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from temporalio.client import Client

from tests.conftest import count_jobs, fetch, moov_before_mdat, submit, wait_terminal
from tests.media_site import FFMPEG, MediaSite
from tests.test_mux import throttled
from twister.config import Settings
from twister.embedded.children import isolated_settings
from twister.embedded.process import ManagedProcess
from twister.embedded.s3 import launch_s3, wait_s3
from twister.gateway.app import create_app
from twister.media.probe import probe
from twister.models import ActivityName
from twister.storage import server_target, target_client


@pytest.fixture(scope="module")
def tenant_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A second S3 server, as a tenant's own storage: another endpoint, bucket and credentials."""
    tenant = isolated_settings(
        tmp_path_factory.mktemp("tenant-s3"),
        s3_access_key="tenant",
        s3_secret_key=f"tenant-secret-{secrets.token_hex(12)}",
        s3_bucket="tenant-videos",
    )
    process = launch_s3(tenant)
    try:
        wait_s3(tenant, process, 60)
        yield tenant
    finally:
        process.stop()


def storage_of(tenant: Settings, **changes: str) -> dict[str, Any]:
    target = server_target(tenant)
    given = {
        "provider": "s3",
        "endpoint": target.endpoint,
        "bucket": target.bucket,
        "region": target.region,
        "access_key": target.access_key,
        "secret_key": target.secret_key,
        "folder_prefix": "acme",
    }
    return {**given, **changes}


@pytest.mark.usefixtures("worker")
def test_file_goes_to_the_tenants_bucket_and_its_secret_stays_hidden(
    api: httpx.Client, media: MediaSite, settings: Settings, tenant_s3: Settings, tmp_path: Path
) -> None:
    job_id = submit(api, url=media.progressive_url, folder="talks", storage=storage_of(tenant_s3))
    job = wait_terminal(api, job_id, timeout=120)
    assert job["status"] == "Completed", job["error"]

    tenant = target_client(server_target(tenant_s3))
    listed = tenant.list_objects_v2(Bucket="tenant-videos", Prefix="acme/")
    assert [item["Key"] for item in listed["Contents"]] == [f"acme/talks/{job_id}.mp4"]
    stored = tenant.get_object(Bucket="tenant-videos", Key=f"acme/talks/{job_id}.mp4")["Body"].read()
    delivered = fetch(job["s3_url"], tmp_path / "delivered.mp4")
    assert delivered.read_bytes() == stored and len(stored) == job["file_size"]
    source_duration = probe(settings.ffprobe_path, media.library.path(media.library.progressive)).duration
    assert moov_before_mdat(delivered)
    assert probe(settings.ffprobe_path, delivered).duration == pytest.approx(source_duration, abs=0.1)
    assert job["storage"] == {k: v for k, v in storage_of(tenant_s3).items() if k not in ("access_key", "secret_key")}

    secret = tenant_s3.s3_secret_key
    assert secret not in api.get(f"/jobs/{job_id}").text
    assert count_jobs(settings, "jobs::text LIKE '%' || $1 || '%'", secret) == 0
    logs = [path.read_text(errors="replace") for path in (settings.data_dir / "logs").glob("*.log")]
    assert not any(secret in text for text in logs)
    assert secret.encode() not in (settings.data_dir / "temporal" / "temporal.db").read_bytes()


async def mux_result(settings: Settings, job_id: str) -> dict[str, Any]:
    """The mux step's result as the job's history recorded it."""
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    events = (await client.get_workflow_handle(job_id).fetch_history()).events
    scheduled = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.HasField("activity_task_scheduled_event_attributes")
    }
    for event in events:
        completed = event.activity_task_completed_event_attributes
        if event.HasField("activity_task_completed_event_attributes") and (
            scheduled[completed.scheduled_event_id] == ActivityName.MUX
        ):
            result: dict[str, Any] = json.loads(completed.result.payloads[0].data)
            return result
    raise AssertionError("no mux step completed")


EAGER_QUEUE = "eager-tenant"  # a queue of its own: only the worker with 5 MiB parts and a slow ffmpeg


def test_parts_go_to_the_tenants_bucket_while_the_file_is_muxed(
    settings: Settings,
    start_worker: Callable[..., ManagedProcess],
    api_key: str,
    media: MediaSite,
    tenant_s3: Settings,
    tmp_path: Path,
) -> None:
    """A 39 MB progressive source, muxed at twice real time with 5 MiB parts: the mux step sends parts
    to the tenant's bucket (through the egress proxy) while ffmpeg writes, and the upload step
    completes the upload. The tenant gets the whole file, index first, and no unfinished upload."""
    source = media.library.root / "eager-big.mp4"
    noise = "testsrc2=size=640x360:rate=25:duration=5,noise=alls=20:allf=t"
    tone = "sine=frequency=440:sample_rate=48000:duration=5"
    lossless = ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-c:a", "aac"]
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", noise, "-f", "lavfi", "-i", tone, *lossless, str(source)],
        check=True,
    )
    slow = throttled(settings, tmp_path)
    start_worker(
        EAGER_QUEUE,
        TWISTER_TEMPORAL_TASK_QUEUE=EAGER_QUEUE,
        TWISTER_FFMPEG_PATH=slow.ffmpeg_path,
        TWISTER_UPLOAD_PART_BYTES=str(slow.upload_part_bytes),
    )
    app = create_app(settings.model_copy(update={"temporal_task_queue": EAGER_QUEUE}))
    with TestClient(app, headers={"x-api-key": api_key}) as api:
        job_id = submit(api, url=media.url("eager-big.mp4"), storage=storage_of(tenant_s3))
        job = wait_terminal(api, job_id, timeout=120)
    assert job["status"] == "Completed", job["error"]

    handed_over = asyncio.run(mux_result(settings, job_id))["handed_over"]
    assert handed_over is not None and len(handed_over["parts"]) >= 2, handed_over
    tenant = target_client(server_target(tenant_s3))
    key = f"acme/{job_id}.mp4"
    delivered = fetch(job["s3_url"], tmp_path / "delivered.mp4")
    stored = tenant.get_object(Bucket="tenant-videos", Key=key)["Body"].read()
    assert delivered.read_bytes() == stored and len(stored) == job["file_size"] > 30_000_000
    assert moov_before_mdat(delivered)
    assert probe(settings.ffprobe_path, delivered).duration == pytest.approx(5, abs=0.1)
    assert tenant.list_multipart_uploads(Bucket="tenant-videos", Prefix="acme/").get("Uploads", []) == []


def test_wrong_credentials_are_a_400_before_any_job(
    api: httpx.Client, media: MediaSite, settings: Settings, tenant_s3: Settings
) -> None:
    before = count_jobs(settings)
    refused = api.post("/jobs", json={"url": media.progressive_url, "storage": storage_of(tenant_s3, secret_key="no")})
    assert refused.status_code == 400, refused.text
    assert "storage" in refused.json()["error"] and "test write" in refused.json()["error"]
    assert count_jobs(settings) == before


KEYS = {"provider": "s3", "bucket": "b-1", "access_key": "a", "secret_key": "s"}


@pytest.mark.parametrize(
    ("storage", "names"),
    [
        ({"provider": "blob", "account_name": "a"}, "'blob'"),
        ({**KEYS, "endpoint": "http://10.1.2.3:9000"}, "storage.endpoint"),
        (KEYS, "storage.endpoint"),
        ({**KEYS, "endpoint": "http://x", "bucket": "B"}, "storage.bucket"),
        ({**KEYS, "endpoint": "http://x", "base_folder": "../up"}, "storage.base_folder"),
    ],
)
def test_bad_storage_names_the_field(api: httpx.Client, media: MediaSite, storage: dict[str, Any], names: str) -> None:
    refused = api.post("/jobs", json={"url": media.progressive_url, "storage": storage})
    assert refused.status_code == 400 and names in refused.json()["error"], refused.text
