"""Faults on a stack of its own: a worker killed (kill -9) in each step, S3 down during an upload,
Postgres down when a job finishes, Temporal killed mid-job, a workflow terminated by an operator.
Each job that completes leaves no work dir, one object in the bucket and no unfinished multipart upload.

S3 and Postgres are reached through fault proxies (``tests/fault_proxy.py``); Temporal is killed
for real and brought back by the stack's supervisor, as ``twister up`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from temporalio.client import Client

from tests.conftest import create_key, submit, wait_for, wait_terminal
from tests.fault_proxy import FaultProxy
from tests.media_site import MediaSite
from twister.config import Settings
from twister.embedded.children import isolated_settings, twister_process, wait_gateway_ready, wait_worker_ready
from twister.embedded.process import ManagedProcess, free_port
from twister.embedded.stack import EmbeddedStack
from twister.gateway.app import create_app
from twister.storage import s3_client

PART_BYTES = 1024**2  # boto3 raises it to 5 MiB: the DASH clip's ~1.9 MB file goes up as a one-part multipart upload
DATABASE_TIMEOUT = 1.0


@dataclass
class FaultStack:
    settings: Settings  # as the worker and gateway see them: S3 and Postgres through the proxies
    stack: EmbeddedStack
    s3: FaultProxy
    postgres: FaultProxy
    api: httpx.Client
    key: str
    slow_mux_flag: Path
    start_worker: Callable[..., ManagedProcess]

    def kill_worker(self, worker: ManagedProcess) -> None:
        """kill -9 of the worker and everything it started (its ffmpeg too), as when a host dies."""
        assert worker.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.stop()

    def objects(self, job_id: str) -> tuple[list[str], list[str]]:
        """Keys stored for the job, and its unfinished multipart uploads (straight to S3, no proxy)."""
        s3 = s3_client(self.stack.settings)
        listed = s3.list_objects_v2(Bucket=self.settings.s3_bucket, Prefix=job_id).get("Contents", [])
        uploads = s3.list_multipart_uploads(Bucket=self.settings.s3_bucket, Prefix=job_id).get("Uploads", [])
        return [item["Key"] for item in listed], [item["Key"] for item in uploads]

    def assert_clean_end(self, job_id: str, job: dict[str, Any]) -> None:
        assert job["status"] == "Completed", job
        assert self.objects(job_id) == ([f"{job_id}.mp4"], [])
        deadline = time.monotonic() + 10  # the sweep runs every second
        while list(self.settings.data_dir.glob(f"work-*/{job_id}")):
            assert time.monotonic() < deadline, "the job's work dir was not removed"
            time.sleep(0.2)


def _slow_ffmpeg(directory: Path, real: str, flag: Path) -> Path:
    """ffmpeg whose mux runs (those report ``-progress``) first wait while ``flag`` exists: a mux long
    enough to kill the worker in it. yt-dlp's own ffmpeg runs (fixups) go straight through."""
    wrapper = directory / "ffmpeg-slow-when-flagged"
    wrapper.write_text(
        f'#!/bin/sh\ncase "$*" in *-progress*) while [ -e "{flag}" ]; do sleep 0.2; done ;; esac\nexec "{real}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory, media: MediaSite) -> Iterator[FaultStack]:
    root = tmp_path_factory.mktemp("faults")
    direct = isolated_settings(
        root / "data",
        download_max_retries=2,
        upload_max_retries=40,  # S3 stays down for 20 s
        retry_initial_interval=0.2,
        retry_max_interval=1.0,
        heartbeat_timeout=2.0,
        host_schedule_to_start_timeout=4.0,
        workdir_sweep_interval=1.0,
        upload_part_bytes=PART_BYTES,
        database_timeout=DATABASE_TIMEOUT,
    )
    flag = root / "slow-mux"
    stop_supervising = threading.Event()
    with (
        EmbeddedStack(direct, ui=False) as stack,
        FaultProxy(direct.s3_port) as s3,
        FaultProxy(direct.database_port) as postgres,
    ):
        database = urlsplit(direct.database_url)
        proxied = direct.model_copy(
            update={
                "s3_endpoint_url": f"http://127.0.0.1:{s3.port}",
                "database_url": database._replace(
                    netloc=f"{database.username}:{database.password}@127.0.0.1:{postgres.port}"
                ).geturl(),
                "ffmpeg_path": str(_slow_ffmpeg(root, direct.ffmpeg_path, flag)),
            }
        )
        supervisor = threading.Thread(target=stack.supervise, args=(stop_supervising,), daemon=True)
        supervisor.start()

        def start_worker(name: str, **env: str) -> ManagedProcess:
            """A worker (``env``: more TWISTER_* variables); the same name is the same host (work root) again."""
            work = str(proxied.data_dir / f"work-{name}")
            process = stack.add(twister_process(proxied, name, "worker", TWISTER_WORK_DIR=work, **env).start())
            wait_worker_ready(process)
            return process

        port = free_port()
        # the gateway signs download URLs for clients: it reaches S3 directly
        gateway_settings = proxied.model_copy(update={"api_port": port, "s3_endpoint_url": direct.s3_endpoint_url})
        gateway = stack.add(twister_process(gateway_settings, "gateway", "gateway").start())
        wait_gateway_ready(gateway, gateway_settings.api_url)
        key = create_key(proxied, "faults")
        with httpx.Client(base_url=gateway_settings.api_url, headers={"x-api-key": key}, timeout=30) as api:
            try:
                yield FaultStack(proxied, stack, s3, postgres, api, key, flag, start_worker)
            finally:
                stop_supervising.set()
                supervisor.join()


@contextlib.contextmanager
def fast_source(media: MediaSite) -> Iterator[None]:
    """The slow media site at full speed (the download after a fault need not crawl)."""
    with media.slow_rate_of(50_000_000):
        yield


async def terminate(settings: Settings, job_id: str) -> None:
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    await client.get_workflow_handle(job_id).terminate(reason="stopped by an operator")


async def retried_attempts(settings: Settings, job_ids: list[str]) -> int:
    """Activity attempts after the first, over these jobs: a full worker declining one would show here."""
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    declined = 0
    for job_id in job_ids:
        history = await client.get_workflow_handle(job_id).fetch_history()
        for event in history.events:
            if event.HasField("activity_task_started_event_attributes"):
                declined += event.activity_task_started_event_attributes.attempt - 1
    return declined


TERMINATIONS = "terminations"  # a queue of its own: only the one-slot worker takes these jobs


def test_terminated_job_frees_its_slot_for_the_next_jobs(faults: FaultStack, media: MediaSite) -> None:
    """A workflow terminated in Temporal never runs its cleanup step: the worker must still free the
    job's slot and files, or it would refuse every later job."""
    settings = faults.settings
    worker = faults.start_worker("one-slot-host", TWISTER_WORKER_MAX_JOBS="1", TWISTER_TEMPORAL_TASK_QUEUE=TERMINATIONS)
    app = create_app(settings.model_copy(update={"temporal_task_queue": TERMINATIONS}))
    with TestClient(app, headers={"x-api-key": faults.key}) as api:
        stuck = submit(api, url=media.slow_dash_url)
        wait_for(api, stuck, lambda job: job["step"] == "Downloading")
        asyncio.run(terminate(settings, stuck))

        later = [submit(api, url=media.progressive_url) for _ in range(10)]
        assert [wait_terminal(api, job_id, timeout=120)["status"] for job_id in later] == ["Completed"] * 10

        gone = wait_terminal(api, stuck)
        assert gone["status"] == "Failed" and "terminated" in gone["error"]
        assert list(settings.data_dir.glob(f"work-*/{stuck}")) == []
        # a full worker is not offered jobs: each waited for the free slot and was assigned at once
        assert asyncio.run(retried_attempts(settings, later)) == 0
    assert "'activity_type': 'assign_worker'" not in worker.log_path.read_text(errors="replace")
    worker.stop()


def test_worker_killed_during_download(faults: FaultStack, media: MediaSite) -> None:
    worker = faults.start_worker("download-host")
    job_id = submit(faults.api, url=media.slow_dash_url)
    wait_for(faults.api, job_id, lambda job: job["step"] == "Downloading" and "progress" in job)
    faults.kill_worker(worker)
    with fast_source(media):
        replacement = faults.start_worker("download-host")  # the host comes back: it sweeps the dead one's files
        job = wait_terminal(faults.api, job_id, timeout=120)
    assert job["download_retries"] >= 1, job
    faults.assert_clean_end(job_id, job)
    replacement.stop()


def test_worker_killed_during_mux(faults: FaultStack, media: MediaSite) -> None:
    worker = faults.start_worker("mux-host")
    faults.slow_mux_flag.touch()
    try:
        job_id = submit(faults.api, url=media.dash_url)
        wait_for(faults.api, job_id, lambda job: job["step"] == "Muxing")
        faults.kill_worker(worker)
    finally:
        faults.slow_mux_flag.unlink()
    replacement = faults.start_worker("mux-host")
    faults.assert_clean_end(job_id, wait_terminal(faults.api, job_id, timeout=120))
    replacement.stop()


def test_storage_down_during_mux(faults: FaultStack, media: MediaSite) -> None:
    """The mux cannot start its multipart upload: it still succeeds, and the upload step sends the
    whole file once storage is back."""
    worker = faults.start_worker("mux-storage-host")
    faults.s3.set_mode("refuse")
    faults.slow_mux_flag.touch()
    try:
        job_id = submit(faults.api, url=media.dash_url)
        wait_for(faults.api, job_id, lambda job: job["step"] == "Muxing")
        time.sleep(2)  # the mux's multipart upload is refused
    finally:
        faults.s3.set_mode("pass")
        faults.slow_mux_flag.unlink()
    job = wait_terminal(faults.api, job_id, timeout=120)
    assert job["upload_retries"] == 0, job
    faults.assert_clean_end(job_id, job)
    worker.stop()


def upload_under_way(faults: FaultStack, media: MediaSite) -> str:
    """A job whose upload has begun and crawls (the S3 proxy is left slow: the caller resets it)."""
    faults.s3.set_mode("slow")
    job_id = submit(faults.api, url=media.dash_url)
    wait_for(faults.api, job_id, lambda job: job["step"] == "Uploading" and job.get("progress", {}).get("percent"))
    return job_id


def test_worker_killed_during_upload(faults: FaultStack, media: MediaSite) -> None:
    worker = faults.start_worker("upload-host")
    try:
        job_id = upload_under_way(faults, media)
        faults.kill_worker(worker)
        assert faults.objects(job_id) == ([], [f"{job_id}.mp4"])  # the killed attempt's multipart upload
    finally:
        faults.s3.set_mode("pass")
    replacement = faults.start_worker("upload-host")
    faults.assert_clean_end(job_id, wait_terminal(faults.api, job_id, timeout=120))
    replacement.stop()


def test_cancel_during_upload_aborts_its_multipart_upload(faults: FaultStack, media: MediaSite) -> None:
    worker = faults.start_worker("cancel-host")
    try:
        job_id = upload_under_way(faults, media)
        assert faults.api.delete(f"/jobs/{job_id}").status_code == 200
        job = wait_terminal(faults.api, job_id, timeout=5)
    finally:
        faults.s3.set_mode("pass")
    assert (job["status"], job["step"], job["error"]) == ("Failed", "Cancelled", "Job cancelled by user")
    assert faults.objects(job_id) == ([], [])  # no object, no unfinished multipart upload
    assert list(faults.settings.data_dir.glob(f"work-*/{job_id}")) == []
    worker.stop()


def test_storage_down_for_20_s_during_upload(faults: FaultStack, media: MediaSite) -> None:
    worker = faults.start_worker("storage-host")
    try:
        job_id = upload_under_way(faults, media)
        faults.s3.set_mode("refuse")
        time.sleep(20)
    finally:
        faults.s3.set_mode("pass")
    job = wait_terminal(faults.api, job_id, timeout=120)
    assert job["upload_retries"] >= 1, job
    faults.assert_clean_end(job_id, job)
    worker.stop()


def test_database_down_when_the_job_finishes(faults: FaultStack, media: MediaSite) -> None:
    worker = faults.start_worker("database-host")
    try:
        job_id = upload_under_way(faults, media)
        faults.postgres.set_mode("refuse")
        faults.s3.set_mode("pass")
        time.sleep(3)  # the upload ends; writing the outcome fails and is retried
        started = time.monotonic()
        meanwhile = faults.api.get(f"/jobs/{job_id}")
        assert meanwhile.status_code == 503 and "database" in meanwhile.json()["error"], meanwhile.text
        assert time.monotonic() - started < 2 * DATABASE_TIMEOUT + 2
    finally:
        faults.postgres.set_mode("pass")
        faults.s3.set_mode("pass")
    job = wait_terminal(faults.api, job_id, timeout=60)
    assert job["finished_at"] >= job["created_at"] and job["total_duration_ms"] > 0
    faults.assert_clean_end(job_id, job)
    worker.stop()


def test_temporal_killed_mid_job(faults: FaultStack, media: MediaSite) -> None:
    worker = faults.start_worker("temporal-host")
    job_id = submit(faults.api, url=media.slow_dash_url)
    wait_for(faults.api, job_id, lambda job: job["step"] == "Downloading")
    temporal = next(proc for proc in faults.stack.processes if proc.name == "temporal")
    assert temporal.pid is not None
    os.killpg(temporal.pid, signal.SIGKILL)  # the stack's supervisor starts it again, on its data
    with fast_source(media):
        job = wait_terminal(faults.api, job_id, timeout=120, through_outages=True)
    faults.assert_clean_end(job_id, job)
    assert next(proc for proc in faults.stack.processes if proc.name == "temporal").pid != temporal.pid
    worker.stop()
