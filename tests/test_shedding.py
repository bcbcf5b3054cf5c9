"""Beyond its concurrency limit the gateway answers 503 with Retry-After at once instead of queueing."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from twister.gateway.shedding import LoadShedding

LIMIT = 3


def _app(release: asyncio.Event, entered: asyncio.Semaphore) -> FastAPI:
    app = FastAPI()

    @app.get("/jobs/{job_id}")
    async def slow(job_id: str) -> dict[str, str]:
        entered.release()
        await release.wait()
        return {"id": job_id}

    @app.get("/jobs/{job_id}/events")
    async def events(job_id: str) -> dict[str, str]:
        return {"stream": job_id}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(LoadShedding, max_concurrent=LIMIT)
    return app


async def test_requests_beyond_the_limit_get_503_at_once_and_the_others_are_answered() -> None:
    release, entered = asyncio.Event(), asyncio.Semaphore(0)
    transport = httpx.ASGITransport(app=_app(release, entered))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        held = [asyncio.create_task(client.get(f"/jobs/{i}")) for i in range(LIMIT)]
        for _ in range(LIMIT):
            await asyncio.wait_for(entered.acquire(), 5)

        refused = await asyncio.wait_for(client.get("/jobs/one-more"), 1)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["error"]
        # health checks and event streams are never refused
        assert (await asyncio.wait_for(client.get("/health"), 1)).status_code == 200
        assert (await asyncio.wait_for(client.get("/jobs/x/events"), 1)).status_code == 200

        release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200] * LIMIT
        assert (await client.get("/jobs/after")).json() == {"id": "after"}
