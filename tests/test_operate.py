"""What an operator does from the command line: replaying failed jobs (resumed where they failed, or
from the start, one or many), finding jobs by search attribute in Temporal, listing, showing and
cancelling jobs, downloading through the API, and setting up a Temporal namespace.

The replayed jobs fail on an S3 that the worker of this module reaches through a fault proxy; that
worker has a task queue of its own, fed by an in-process gateway, while the session's services keep
serving the other modules.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi.testclient import TestClient
from temporalio.client import Client, WorkflowExecutionStatus

from tests.conftest import create_key, fetch, leftover_work_dirs, submit, twister_cli, wait_for, wait_terminal
from tests.fault_proxy import FaultProxy
from tests.media_site import MediaSite
from twister.config import Settings
from twister.embedded.process import find_binary
from twister.gateway.app import create_app
from twister.worker.workdirs import KEPT_NAME

QUEUE = "replays"
VISIBILITY_WAIT = 10.0  # Temporal's list of workflows catches up with their search attributes within this


@dataclass
class Replays:
    api: TestClient
    s3: FaultProxy
    settings: Settings

    def new_key(self) -> int:
        """A key of its own for the calling test (its jobs are then the only ones with its ApiKeyId),
        sent from now on; returns its id."""
        name = f"replays-{uuid.uuid4().hex[:6]}"
        self.api.headers["x-api-key"] = create_key(self.settings, name)
        return key_id_of(self.settings, name)


def key_id_of(settings: Settings, name: str) -> int:
    async def read() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return int(await conn.fetchval("SELECT id FROM api_keys WHERE name = $1", name))
        finally:
            await conn.close()

    return asyncio.run(read())


@pytest.fixture(scope="module")
def replays(settings: Settings, start_worker: Any, media: MediaSite) -> Iterator[Replays]:
    with FaultProxy(settings.s3_port) as s3:
        start_worker(
            "replay-host", TWISTER_TEMPORAL_TASK_QUEUE=QUEUE, TWISTER_S3_ENDPOINT_URL=f"http://127.0.0.1:{s3.port}"
        )
        app = create_app(settings.model_copy(update={"temporal_task_queue": QUEUE, "upload_max_retries": 1}))
        with TestClient(app) as api:
            replays = Replays(api, s3, settings)
            replays.new_key()
            yield replays


def source_url(media: MediaSite) -> str:
    """The progressive clip under a URL of its own, so that its downloads can be counted."""
    return f"{media.progressive_url}?{uuid.uuid4().hex}"


def downloads_of(media: MediaSite, url: str) -> int:
    path = url.removeprefix(media.base_url)
    return sum(1 for method, requested, _ in media.requests if method == "GET" and requested == path)


def failed_upload(replays: Replays, media: MediaSite) -> tuple[str, str]:
    """A job (and its source URL) that failed because S3 refused every upload attempt."""
    url = source_url(media)
    replays.s3.set_mode("refuse")
    try:
        job_id = submit(replays.api, url=url)
        job = wait_terminal(replays.api, job_id)
    finally:
        replays.s3.set_mode("pass")
    assert (job["status"], job["upload_retries"], job["download_retries"]) == ("Failed", 1, 0), job
    return job_id, url


async def temporal(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)


def listed(settings: Settings, query: str, until: Callable[[list[str]], bool]) -> list[str]:
    """The workflow ids (one per run) the query lists, once ``until`` holds for them or
    VISIBILITY_WAIT has passed (Temporal's list catches up a little after each change)."""

    async def ids() -> list[str]:
        client = await temporal(settings)
        return [execution.id async for execution in client.list_workflows(query)]

    deadline = time.monotonic() + VISIBILITY_WAIT
    found = asyncio.run(ids())
    while not until(found) and time.monotonic() < deadline:
        time.sleep(0.3)
        found = asyncio.run(ids())
    return found


def workflow_ids(settings: Settings, query: str, expected: set[str]) -> set[str]:
    """The ids the query lists, once they are ``expected`` (or VISIBILITY_WAIT has passed)."""
    return set(listed(settings, query, lambda found: set(found) == expected))


def closed_status(settings: Settings, job_id: str) -> WorkflowExecutionStatus | None:
    """How the job's workflow ended (it may still deliver its webhook or alert after the row says so)."""

    async def describe() -> WorkflowExecutionStatus | None:
        handle = (await temporal(settings)).get_workflow_handle(job_id)
        while (status := (await handle.describe()).status) == WorkflowExecutionStatus.RUNNING:
            await asyncio.sleep(0.2)
        return status

    return asyncio.run(asyncio.wait_for(describe(), 30))


def test_replay_resumes_at_the_failed_upload_without_downloading_again(
    replays: Replays, media: MediaSite, settings: Settings
) -> None:
    job_id, url = failed_upload(replays, media)
    assert closed_status(settings, job_id) == WorkflowExecutionStatus.FAILED  # the UI tells it from a completed one
    [kept] = leftover_work_dirs(settings, job_id)
    assert (kept / KEPT_NAME).exists() and any(kept.glob("output.*"))  # the muxed file waits for the replay
    downloads = downloads_of(media, url)
    assert downloads >= 1

    replayed = twister_cli(settings, "jobs", "replay", job_id)
    assert replayed.stdout.strip() == f"Job {job_id} replayed before upload"
    job = wait_terminal(replays.api, job_id)

    assert job["status"] == "Completed" and job["s3_url"], job
    assert (job["download_retries"], job["upload_retries"]) == (0, 2)  # the failed run's attempts still count
    assert downloads_of(media, url) == downloads  # resumed at the upload: nothing downloaded again
    assert fetch(job["s3_url"], settings.data_dir / f"{job_id}.mp4").stat().st_size == job["file_size"]
    assert closed_status(settings, job_id) == WorkflowExecutionStatus.COMPLETED
    assert status_query(settings, job_id) == {
        **{name: job[name] for name in ("id", "url", "status", "step", "error", "created_at", "title")},
        "s3_url": None,  # a link only the gateway signs
        "subtitle_url": None,
    }
    wait_for_no_work_dir(settings, job_id)


def status_query(settings: Settings, job_id: str) -> dict[str, Any]:
    """The workflow's ``status`` query (the UI's Queries tab), answered by a worker."""

    async def query() -> dict[str, Any]:
        answer: dict[str, Any] = await (await temporal(settings)).get_workflow_handle(job_id).query("status")
        return answer

    return asyncio.run(query())


def wait_for_no_work_dir(settings: Settings, job_id: str) -> None:
    deadline = time.monotonic() + 10
    while leftover_work_dirs(settings, job_id):
        assert time.monotonic() < deadline, "the replayed job's work dir stayed"
        time.sleep(0.2)


def test_replay_downloads_again_when_the_kept_files_are_gone(
    replays: Replays, media: MediaSite, settings: Settings
) -> None:
    job_id, url = failed_upload(replays, media)
    [kept] = leftover_work_dirs(settings, job_id)
    shutil.rmtree(kept)  # cleaned up meanwhile (its time was up, or the disk was)
    downloads = downloads_of(media, url)

    assert twister_cli(settings, "jobs", "replay", job_id).stdout.strip() == f"Job {job_id} replayed before upload"
    job = wait_terminal(replays.api, job_id)

    assert job["status"] == "Completed" and job["s3_url"], job
    assert downloads_of(media, url) > downloads  # the upload found nothing to send: the worker downloaded again
    assert (job["download_retries"], job["upload_retries"]) == (1, 3)


def test_replay_from_start_runs_the_job_anew_under_its_id(
    replays: Replays, media: MediaSite, settings: Settings
) -> None:
    job_id, url = failed_upload(replays, media)
    downloads = downloads_of(media, url)

    replayed = twister_cli(settings, "jobs", "replay", job_id, "--from-start")
    assert replayed.stdout.strip() == f"Job {job_id} replayed from the start"
    job = wait_terminal(replays.api, job_id)

    assert job["status"] == "Completed" and job["s3_url"], job
    assert (job["download_retries"], job["upload_retries"]) == (1, 2)  # two downloads, three uploads in all
    assert downloads_of(media, url) > downloads
    assert listed(settings, f'WorkflowId="{job_id}"', lambda runs: len(runs) == 2) == [job_id] * 2  # two runs


def test_many_failed_jobs_found_by_search_attribute_and_replayed_at_once(
    replays: Replays, media: MediaSite, settings: Settings
) -> None:
    key_id = replays.new_key()
    failed = {failed_upload(replays, media)[0] for _ in range(2)}
    cancelled = submit(replays.api, url=media.slow_dash_url)
    wait_for(replays.api, cancelled, lambda job: job["step"] == "Downloading")
    assert twister_cli(settings, "jobs", "cancel", cancelled).stdout.strip() == f"Job {cancelled} cancelled"
    assert wait_terminal(replays.api, cancelled)["step"] == "Cancelled"
    mine = f"ApiKeyId={key_id}"

    assert workflow_ids(settings, f'JobStatus="Failed" AND {mine}', failed | {cancelled}) == failed | {cancelled}
    assert workflow_ids(settings, f'ExecutionStatus="Failed" AND {mine}', failed) == failed
    assert workflow_ids(settings, f'ExecutionStatus="Canceled" AND {mine}', {cancelled}) == {cancelled}
    lines = twister_cli(settings, "jobs", "list", "--status", "failed", "--key-id", str(key_id)).stdout
    assert {line.split()[0] for line in lines.splitlines()[:-1]} == failed | {cancelled}
    assert lines.splitlines()[-1] == "3 of 3 jobs"

    replayed = twister_cli(settings, "jobs", "replay", "--status", "failed", "--since", "1h", "--key-id", str(key_id))
    assert replayed.stdout.strip() == "2 of 2 jobs replayed (2 before upload)"  # not the cancelled one
    assert all(wait_terminal(replays.api, job_id)["status"] == "Completed" for job_id in failed)
    assert workflow_ids(settings, f'JobStatus="Completed" AND JobStep="Finished" AND {mine}', failed) == failed
    # the UI lists runs: each replayed job's earlier run stays there, Failed, beside its new one
    assert len(listed(settings, f'JobStatus="Failed" AND {mine}', lambda runs: len(runs) == 3)) == 3

    shown = json.loads(twister_cli(settings, "jobs", "show", cancelled).stdout)
    assert (shown["status"], shown["step"], shown["api_key_id"]) == ("Failed", "Cancelled", key_id)
    assert shown["workflow"]["status"] == "CANCELED"


def test_only_finished_failed_jobs_are_replayed(replays: Replays, media: MediaSite, settings: Settings) -> None:
    done = wait_terminal(replays.api, submit(replays.api, url=media.progressive_url))
    refused = twister_cli(settings, "jobs", "replay", done["id"], check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"Job {done['id']} not replayed: it is Completed: only finished Failed or Warning jobs are replayed"
    )
    unknown = twister_cli(settings, "jobs", "replay", str(uuid.uuid4()), check=False)
    assert unknown.returncode == 1 and unknown.stderr.startswith("No job has id")
    both = twister_cli(settings, "jobs", "replay", done["id"], "--status", "failed", check=False)
    assert both.returncode == 2 and "not both" in both.stderr


def test_download_command_follows_the_job_and_prints_the_file_url(
    settings: Settings, gateway: str, api_key: str, worker: object, media: MediaSite
) -> None:
    done = twister_cli(settings, "download", media.dash_url, "--key", api_key, "--api-url", gateway, check=False)
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith(settings.s3_endpoint_url) and "X-Amz-Signature" in url
    assert httpx.get(url, timeout=30).status_code == 200
    assert "uploading" in done.stderr and "100%" in done.stderr

    failing = twister_cli(settings, "download", media.missing_url, "--key", api_key, "--api-url", gateway, check=False)
    assert failing.returncode == 1 and failing.stdout == ""
    assert failing.stderr.strip().splitlines()[-1].startswith("Warning: "), failing.stderr


def test_temporal_setup_registers_the_search_attributes_a_worker_needs(settings: Settings, stack: object) -> None:
    namespace = f"setup-{uuid.uuid4().hex[:8]}"
    create = ["operator", "namespace", "create", "--namespace", namespace, "--address", settings.temporal_address]
    subprocess.run([find_binary("temporal"), *create], check=True, capture_output=True, timeout=60)
    elsewhere = settings.model_copy(update={"temporal_namespace": namespace})

    refused = subprocess.run(
        [sys.executable, "-m", "twister", "worker"],
        env={**os.environ, **elsewhere.as_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "run `twister temporal setup`" in refused.stderr

    assert twister_cli(elsewhere, "temporal", "setup").stdout.strip() == (
        f"Registered in {namespace}: JobStatus, JobStep, SourceHost, ApiKeyId"
    )
    assert twister_cli(elsewhere, "temporal", "setup").stdout.strip() == f"{namespace} is set up already"
