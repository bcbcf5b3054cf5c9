"""Dependencies going away (runs last: it stops the session's Temporal and Postgres).

Finished jobs are answered from Postgres without Temporal; what needs a missing dependency gets a
503 JSON error, never a traceback, and a job that could not be started leaves no row behind.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest

from tests.conftest import submit, wait_terminal
from tests.media_site import MediaSite
from twister.config import Settings
from twister.embedded.stack import EmbeddedStack


def count_jobs(settings: Settings) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM jobs"))
        finally:
            await conn.close()

    return asyncio.run(count())


def stop_service(stack: EmbeddedStack, name: str) -> None:
    next(p for p in stack.processes if p.name == name).stop()


@pytest.mark.usefixtures("worker")
def test_outages_answer_503_and_finished_jobs_survive_temporal(
    api: httpx.Client, media: MediaSite, stack: EmbeddedStack, settings: Settings
) -> None:
    finished = wait_terminal(api, submit(api, url=media.progressive_url))
    assert finished["status"] == "Completed"
    active_id = submit(api, url=media.slow_dash_url)

    stop_service(stack, "temporal")

    started = time.monotonic()
    again = api.get(f"/jobs/{finished['id']}")
    assert again.status_code == 200 and again.json()["status"] == "Completed" and again.json()["s3_url"]
    active = api.get(f"/jobs/{active_id}")
    print(f"GET of an active job with Temporal down answered in {time.monotonic() - started:.1f} s")
    assert active.status_code == 503 and "Temporal" in active.json()["error"]
    rows_before = count_jobs(settings)
    started = time.monotonic()
    refused = api.post("/jobs", json={"url": media.progressive_url})
    assert refused.status_code == 503 and "not created" in refused.json()["error"]
    assert count_jobs(settings) == rows_before
    print(f"POST with Temporal down answered in {time.monotonic() - started:.1f} s")

    stop_service(stack, "postgres")

    down = api.get(f"/jobs/{finished['id']}")
    assert down.status_code == 503 and "database" in down.json()["error"]
