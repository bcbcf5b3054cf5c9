"""Bounded load: 200 jobs from 20 concurrent clients against a small local source, on one worker of
its own. Every job completes, none is lost or stored twice, and the worker's memory and disk stay
within what its slots allow. The wall time is written to ``<data dir>/load-test.txt`` and printed."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import create_key, submit, wait_terminal, work_root
from tests.media_site import MediaSite
from tests.sampling import Sampler
from twister.config import Settings
from twister.embedded.children import twister_process, wait_gateway_ready
from twister.embedded.process import ManagedProcess, free_port
from twister.storage import s3_client

CLIENTS = 20
JOBS_PER_CLIENT = 10
SLOTS = 8
QUEUE = "load"
POLL_EVERY = 1.0  # as an SDK client polls; the GET path under load is issue 10's benchmark
# per slot: the source, its muxed copy and yt-dlp's part file; per process: Python, Temporal's core, boto3
MEMORY_BOUND = 350 * 1024**2 + SLOTS * 40 * 1024**2


@pytest.fixture(scope="module")
def load_gateway(settings: Settings, start_worker: Callable[..., ManagedProcess]) -> Iterator[tuple[str, str]]:
    port = free_port()
    gateway = twister_process(
        settings,
        "gateway-load",
        "gateway",
        TWISTER_API_PORT=str(port),
        TWISTER_TEMPORAL_TASK_QUEUE=QUEUE,
        TWISTER_MAX_UNFINISHED_JOBS_PER_KEY=str(CLIENTS * JOBS_PER_CLIENT),  # one key for all the clients
    ).start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_gateway_ready(gateway, url)
        yield url, create_key(settings, "load")
    finally:
        gateway.stop()


def test_200_jobs_from_20_clients(
    settings: Settings,
    media: MediaSite,
    start_worker: Callable[..., ManagedProcess],
    load_gateway: tuple[str, str],
) -> None:
    worker = start_worker("worker-load", TWISTER_WORKER_MAX_JOBS=str(SLOTS), TWISTER_TEMPORAL_TASK_QUEUE=QUEUE)
    assert worker.pid is not None
    url, key = load_gateway
    source_size = media.library.path(media.library.progressive).stat().st_size

    def client(_: int) -> list[dict[str, object]]:
        with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=60) as api:
            job_ids = [submit(api, url=media.progressive_url) for _ in range(JOBS_PER_CLIENT)]
            return [wait_terminal(api, job_id, timeout=600, every=POLL_EVERY) for job_id in job_ids]

    started = time.monotonic()
    with (
        Sampler(worker.pid, work_root(settings, "worker-load"), every=0.2) as sampled,
        ThreadPoolExecutor(CLIENTS) as pool,
    ):
        jobs = [job for finished in pool.map(client, range(CLIENTS)) for job in finished]
    wall = time.monotonic() - started

    assert len({job["id"] for job in jobs}) == CLIENTS * JOBS_PER_CLIENT
    assert [job["id"] for job in jobs if job["status"] != "Completed"] == []
    s3 = s3_client(settings)
    for job in jobs:
        listed = s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix=str(job["id"]))
        assert [item["Key"] for item in listed.get("Contents", [])] == [f"{job['id']}.mp4"]
    assert sampled.peak_rss <= MEMORY_BOUND, f"worker tree peaked at {sampled.peak_rss / 1024**2:.0f} MB"
    assert sampled.peak_disk <= SLOTS * 3 * source_size, f"work dirs peaked at {sampled.peak_disk} bytes"

    def median(field: str) -> float:
        return statistics.median(float(job[field]) for job in jobs)  # type: ignore[arg-type]

    report = (
        f"{len(jobs)} jobs from {CLIENTS} clients, {SLOTS} slots: {wall:.1f} s wall, "
        f"median job {median('total_duration_ms') / 1000:.2f} s (queue wait {median('queue_wait_ms') / 1000:.2f} s, "
        f"extract {median('extract_duration_ms') / 1000:.2f} s, mux {median('mux_duration_ms') / 1000:.2f} s, "
        f"upload {median('upload_duration_ms') / 1000:.2f} s), "
        f"{3600 * len(jobs) / wall:.0f} jobs/h; worker peak {sampled.peak_rss / 1024**2:.0f} MB RSS (with children), "
        f"work dirs peak {sampled.peak_disk / 1024**2:.1f} MB"
    )
    (settings.data_dir / "load-test.txt").write_text(report + "\n")
    print(report)
