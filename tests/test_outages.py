"""Dependencies going away, staged with fault proxies between a gateway of its own and the session's
real Temporal and Postgres (which keep serving everything else).

Finished jobs are answered from Postgres without Temporal; what needs a missing dependency gets a
503 JSON error within the RPC timeout; a start that may have reached Temporal keeps its job, and
the job runs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from tests.conftest import count_jobs, submit, wait_terminal
from tests.fault_proxy import FaultProxy, via
from tests.media_site import MediaSite
from twister.config import Settings
from twister.embedded.children import twister_process, wait_gateway_ready
from twister.embedded.process import free_port

RPC_TIMEOUT = 2.0
DATABASE_TIMEOUT = 1.0


@dataclass
class FaultyGateway:
    api: httpx.Client
    temporal: FaultProxy
    postgres: FaultProxy


@pytest.fixture(scope="module")
def faulty(settings: Settings, api_key: str, worker: object) -> Iterator[FaultyGateway]:
    with FaultProxy(settings.temporal_port) as temporal, FaultProxy(settings.database_port) as postgres:
        port = free_port()
        process = twister_process(
            settings,
            "gateway-faulty",
            "gateway",
            TWISTER_API_PORT=str(port),
            TWISTER_TEMPORAL_ADDRESS=f"127.0.0.1:{temporal.port}",
            TWISTER_DATABASE_URL=via(settings.database_url, postgres),
            TWISTER_TEMPORAL_RPC_TIMEOUT=str(RPC_TIMEOUT),
            TWISTER_DATABASE_TIMEOUT=str(DATABASE_TIMEOUT),
            TWISTER_START_RECONCILE_INTERVAL="0.5",
        ).start()
        try:
            url = f"http://127.0.0.1:{port}"
            wait_gateway_ready(process, url)
            with httpx.Client(base_url=url, headers={"x-api-key": api_key}, timeout=30) as api:
                yield FaultyGateway(api, temporal, postgres)
        finally:
            process.stop()


def job_row(settings: Settings, job_id: str) -> asyncpg.Record | None:
    async def read() -> asyncpg.Record | None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", uuid.UUID(job_id))
        finally:
            await conn.close()

    return asyncio.run(read())


def test_temporal_down_finished_jobs_answer_the_rest_is_a_prompt_503(
    faulty: FaultyGateway, media: MediaSite, settings: Settings
) -> None:
    api = faulty.api
    finished = wait_terminal(api, submit(api, url=media.progressive_url))
    assert finished["status"] == "Completed"
    active_id = submit(api, url=media.slow_dash_url)

    faulty.temporal.set_mode("refuse")
    try:
        again = api.get(f"/jobs/{finished['id']}")
        assert again.status_code == 200 and again.json()["status"] == "Completed" and again.json()["s3_url"]

        started = time.monotonic()
        active = api.get(f"/jobs/{active_id}")
        assert active.status_code == 503 and "Temporal" in active.json()["error"]
        assert time.monotonic() - started < RPC_TIMEOUT + 3

        rows_before = count_jobs(settings)
        started = time.monotonic()
        refused = api.post("/jobs", json={"url": media.progressive_url})
        assert refused.status_code == 503 and "not created" in refused.json()["error"]
        assert time.monotonic() - started < RPC_TIMEOUT + 3
        assert count_jobs(settings) == rows_before
    finally:
        faulty.temporal.set_mode("pass")
    throttled, media.slow_rate = media.slow_rate, 50_000_000  # the rest of the download need not crawl
    try:
        assert wait_terminal(api, active_id, timeout=120)["status"] == "Completed"
    finally:
        media.slow_rate = throttled


def test_start_that_may_have_reached_temporal_keeps_the_job_and_it_runs(
    faulty: FaultyGateway, media: MediaSite, settings: Settings
) -> None:
    api = faulty.api
    submit(api, url=media.progressive_url)  # the gateway's connection to Temporal is up

    faulty.temporal.set_mode("blackhole")  # the start reaches Temporal, its answer never comes back
    try:
        created = api.post("/jobs", json={"url": media.progressive_url})
    finally:
        faulty.temporal.set_mode("pass")

    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    job = wait_terminal(api, job_id, timeout=120)
    assert job["status"] == "Completed" and job["s3_url"]
    row = job_row(settings, job_id)
    assert row is not None and row["workflow_start_pending"] is False


def test_start_that_never_arrived_is_made_by_the_reconciler(
    faulty: FaultyGateway, media: MediaSite, settings: Settings
) -> None:
    """Temporal's address accepts the connection but nothing comes back: the gateway cannot tell
    whether the start arrived. The job is kept, and once Temporal answers again the reconciler starts it."""
    api = faulty.api
    faulty.temporal.set_mode("refuse")  # drops the gateway's connection
    faulty.temporal.set_mode("silent")  # its new connection gets nowhere
    try:
        created = api.post("/jobs", json={"url": media.progressive_url})
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        row = job_row(settings, job_id)
        assert row is not None and row["workflow_start_pending"] is True
    finally:
        faulty.temporal.set_mode("pass")

    job = wait_terminal(api, job_id, timeout=120)
    assert job["status"] == "Completed" and job["s3_url"]
    row = job_row(settings, job_id)
    assert row is not None and row["workflow_start_pending"] is False


def test_database_down_is_a_503_and_heals(faulty: FaultyGateway, media: MediaSite) -> None:
    api = faulty.api
    finished = wait_terminal(api, submit(api, url=media.progressive_url))

    faulty.postgres.set_mode("refuse")
    try:
        down = api.get(f"/jobs/{finished['id']}")
        assert down.status_code == 503 and "database" in down.json()["error"]
    finally:
        faulty.postgres.set_mode("pass")
    assert api.get(f"/jobs/{finished['id']}").json()["status"] == "Completed"


def test_frozen_database_is_a_prompt_503_and_heals(faulty: FaultyGateway, media: MediaSite) -> None:
    """Postgres stops answering (connections stay open, nothing comes back): the contract's 503 comes
    within the database timeout, not after the client gave up."""
    api = faulty.api
    finished = wait_terminal(api, submit(api, url=media.progressive_url))

    faulty.postgres.set_mode("blackhole")
    try:
        for method, path, body in (
            ("GET", f"/jobs/{finished['id']}", None),
            ("POST", "/jobs", {"url": media.progressive_url}),
        ):
            started = time.monotonic()
            frozen = api.request(method, path, json=body)
            assert frozen.status_code == 503 and "database" in frozen.json()["error"], frozen.text
            assert time.monotonic() - started < 2 * DATABASE_TIMEOUT + 2
    finally:
        faulty.postgres.set_mode("pass")
    assert api.get(f"/jobs/{finished['id']}").json()["status"] == "Completed"
