"""Real services for the tests: the embedded Temporal, Postgres and S3, a local media site,
and twister's own worker and gateway processes started through its CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.media_site import MediaLibrary, MediaSite, generate_media
from tests.openapi_check import responses_checked_against_openapi
from twister.activities.multipart import Bucket, Buckets, OpenUploads
from twister.activities.mux import MuxActivities
from twister.config import Settings
from twister.embedded.children import isolated_settings, twister_process, wait_gateway_ready, wait_worker_ready
from twister.embedded.process import ManagedProcess
from twister.embedded.stack import EmbeddedStack
from twister.storage import s3_client
from twister.worker.workdirs import WorkDirs

TERMINAL = {"Completed", "Failed", "Warning", "Skipped"}


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(
        tmp_path_factory.mktemp("twister"),
        download_max_retries=2,
        upload_max_retries=2,
        retry_initial_interval=0.2,
        retry_max_interval=1.0,
        heartbeat_timeout=2.0,
        host_schedule_to_start_timeout=4.0,
        webhook_max_attempts=3,
        workdir_sweep_interval=1.0,
    )


@pytest.fixture(scope="session", autouse=True)
def openapi_checked(settings: Settings) -> Iterator[list[str]]:
    """Every gateway response of the suite must match /openapi.json (see tests/openapi_check.py)."""
    with responses_checked_against_openapi(settings) as seen:
        yield seen


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[EmbeddedStack]:
    with EmbeddedStack(settings, ui=False) as running:
        yield running


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaSite]:
    library: MediaLibrary = generate_media(tmp_path_factory.mktemp("media"))
    with MediaSite(library) as site:
        yield site


def work_root(settings: Settings, worker_name: str) -> Path:
    """Each test worker is a host of its own, with its own work root."""
    return settings.data_dir / f"work-{worker_name}"


def leftover_work_dirs(settings: Settings, job_id: str) -> list[Path]:
    """The job's work directories still on any test worker's disk."""
    return sorted(settings.data_dir.glob(f"work-*/{job_id}"))


@pytest.fixture(scope="session")
def start_worker(settings: Settings, stack: EmbeddedStack) -> Iterator[Callable[..., ManagedProcess]]:
    """``start_worker(name, **TWISTER_env)``: a worker process of its own, stopped with the session."""
    started: list[ManagedProcess] = []

    def start(name: str, **env: str) -> ManagedProcess:
        root = work_root(settings, name)
        process = twister_process(settings, name, "worker", TWISTER_WORK_DIR=str(root), **env).start()
        started.append(process)
        wait_worker_ready(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def worker(start_worker: Callable[..., ManagedProcess]) -> ManagedProcess:
    return start_worker("worker-main")


@pytest.fixture(scope="session")
def gateway(settings: Settings, stack: EmbeddedStack) -> Iterator[str]:
    process = twister_process(settings, "gateway", "gateway").start()
    wait_gateway_ready(process, settings.api_url)
    yield settings.api_url
    process.stop()


def twister_cli(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs ``twister ARGS`` against the test stack, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "twister", *args],
        env={**os.environ, **settings.as_env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def create_key(settings: Settings, name: str, *caps: str) -> str:
    """A new API key; ``caps``: options of ``twister keys create`` such as ``--max-resolution 480``."""
    return twister_cli(settings, "keys", "create", "--name", name, *caps).stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def api_key(settings: Settings, stack: EmbeddedStack) -> str:
    return create_key(settings, "tests")


@pytest.fixture(scope="session")
def api(gateway: str, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, headers={"x-api-key": api_key}, timeout=30) as client:
        yield client


def submit(api: httpx.Client, **body: Any) -> str:
    response = api.post("/jobs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["job_id"])


def wait_for(
    api: httpx.Client,
    job_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 90,
    *,
    through_outages: bool = False,
    every: float = 0.3,
) -> dict[str, Any]:
    """Polls the job every ``every`` s until ``done``; with ``through_outages`` a 503 (a dependency
    down) means "ask again"."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/jobs/{job_id}")
        if not (through_outages and response.status_code == 503):
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()
            # a terminal status always comes with the persisted document, never the bare base fields
            assert job["status"] not in TERMINAL or "finished_at" in job, job
            if done(job):
                return job
        assert time.monotonic() < deadline, f"job did not get there in {timeout}s: {response.text}"
        time.sleep(every)


def wait_terminal(
    api: httpx.Client, job_id: str, timeout: float = 90, *, through_outages: bool = False, every: float = 0.3
) -> dict[str, Any]:
    terminal: Callable[[dict[str, Any]], bool] = lambda job: job["status"] in TERMINAL  # noqa: E731
    return wait_for(api, job_id, terminal, timeout, through_outages=through_outages, every=every)


def count_jobs(settings: Settings, where: str = "true", *args: object) -> int:
    """Rows of ``jobs`` matching the SQL condition ``where`` ($1... are ``args``)."""

    async def count() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM jobs WHERE {where}", *args))
        finally:
            await conn.close()

    return asyncio.run(count())


def no_object_for(settings: Settings, job_id: str) -> bool:
    """Nothing stored under the job's id in the server bucket: no object, no unfinished multipart upload."""
    s3 = s3_client(settings)
    listed = s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix=job_id)
    uploads = s3.list_multipart_uploads(Bucket=settings.s3_bucket, Prefix=job_id)
    return listed.get("KeyCount", 0) == 0 and not uploads.get("Uploads")


def fetch(url: str, path: Path) -> Path:
    """Downloads what a presigned URL gives to ``path``."""
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.status_code
    path.write_bytes(response.content)
    return path


def server_buckets(settings: Settings) -> Buckets:
    """The server's bucket, as a worker's steps reach it (call on the test's event loop); no own storage."""

    async def no_own_storage(_job_id: str) -> None:
        return None

    return Buckets(Bucket(s3_client(settings), settings.s3_bucket), no_own_storage, asyncio.get_running_loop(), "")


def mux_activities(settings: Settings, workdirs: WorkDirs, uploads: OpenUploads | None = None) -> MuxActivities:
    return MuxActivities(settings, workdirs, server_buckets(settings), uploads or OpenUploads())


def moov_before_mdat(path: Path) -> bool:
    """The MP4's index (moov) comes before its media data, so a player can start before it has the whole file."""
    boxes: list[bytes] = []
    with path.open("rb") as f:
        while len(header := f.read(16)) >= 8:
            size, kind = int.from_bytes(header[:4]), header[4:8]
            if size == 1:  # a 64-bit size follows the type
                size = int.from_bytes(header[8:16])
            boxes.append(kind)
            if size < 8:  # 0: the last box runs to the end of the file
                break
            f.seek(f.tell() - len(header) + size)
    return b"moov" in boxes and b"mdat" in boxes and boxes.index(b"moov") < boxes.index(b"mdat")


def ffprobe_json(settings: Settings, path: Path) -> dict[str, Any]:
    import json

    out = subprocess.run(
        [settings.ffprobe_path, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result
