"""``GET /jobs/{id}/events`` and the status watcher against the real stack.

Jobs run on a worker of their own whose mux waits a second and whose uploads go through a throttling
proxy, so that each step lasts several refresh intervals. The gateways that count Temporal reads run
in this process (uvicorn in a thread), where their watcher's read counter can be seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import stat
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import create_key, submit, wait_terminal
from tests.fault_proxy import FaultProxy
from tests.media_site import MediaSite
from twister.config import Settings
from twister.embedded.process import ManagedProcess, free_port
from twister.gateway.watch import StatusWatcher

QUEUE = "events"  # served only by this module's worker
REFRESH = 0.2
STEPS = ["Downloading", "Muxing", "Uploading", "Finished"]


@dataclass
class InProcessGateway:
    url: str
    app: FastAPI
    loop: asyncio.AbstractEventLoop

    @property
    def watcher(self) -> StatusWatcher:
        watcher: StatusWatcher = self.app.state.services.watcher
        return watcher

    def tasks(self) -> int:
        """Tasks alive on the gateway's event loop."""

        async def count() -> int:
            return len(asyncio.all_tasks())

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(timeout=5)


@contextlib.contextmanager
def gateway_in_process(settings: Settings, **changes: Any) -> Iterator[InProcessGateway]:
    from twister.gateway.app import create_app

    port = free_port()
    app = create_app(settings.model_copy(update={"api_port": port, **changes}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the in-process gateway did not start"
        time.sleep(0.05)
    try:
        yield InProcessGateway(f"http://127.0.0.1:{port}", app, loop)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        loop.close()


def _slow_mux_ffmpeg(directory: Path, real: str) -> Path:
    """ffmpeg whose mux runs (those report ``-progress``) start a second late."""
    wrapper = directory / "ffmpeg-slow-mux"
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *-progress*) sleep 1 ;; esac\nexec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


@pytest.fixture(scope="module")
def steady_steps(
    settings: Settings,
    media: MediaSite,
    start_worker: Callable[..., ManagedProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """The worker of ``QUEUE``; its download of ``media.slow_dash_url`` takes about 3 s."""
    wrapper = _slow_mux_ffmpeg(tmp_path_factory.mktemp("events"), settings.ffmpeg_path)
    throttled, media.slow_rate = media.slow_rate, 600_000
    with FaultProxy(settings.s3_port) as s3:
        s3.slow_rate = 1_500_000
        s3.set_mode("slow")
        worker = start_worker(
            "events-host",
            TWISTER_TEMPORAL_TASK_QUEUE=QUEUE,
            TWISTER_FFMPEG_PATH=str(wrapper),
            TWISTER_S3_ENDPOINT_URL=f"http://127.0.0.1:{s3.port}",
        )
        try:
            yield
        finally:
            worker.stop()
            media.slow_rate = throttled


@pytest.fixture(scope="module")
def events_gateway(settings: Settings, steady_steps: None) -> Iterator[InProcessGateway]:
    with gateway_in_process(settings, temporal_task_queue=QUEUE, status_refresh_seconds=REFRESH) as gateway:
        yield gateway


@contextlib.asynccontextmanager
async def client(url: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=60, limits=limits) as http:
        yield http


async def listen(http: httpx.AsyncClient, job_id: str, *, comments: list[str] | None = None) -> list[dict[str, Any]]:
    """The documents of every ``status`` event, until the server closes the stream."""
    documents: list[dict[str, Any]] = []
    async with http.stream("GET", f"/jobs/{job_id}/events") as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        event, data = None, []
        async for line in response.aiter_lines():
            if line.startswith(":") and comments is not None:
                comments.append(line)
            elif line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
            elif not line and data:
                assert event == "status", event
                documents.append(json.loads("\n".join(data)))
                event, data = None, []
    return documents


def steps_seen(documents: list[dict[str, Any]]) -> list[str]:
    """The steps in order of appearance, each once."""
    return list(dict.fromkeys(document["step"] for document in documents))


def without_url(document: dict[str, Any]) -> dict[str, Any]:
    """The document without its presigned URL, which is signed anew on each read."""
    return {name: value for name, value in document.items() if name != "s3_url"}


async def test_stream_follows_the_steps_with_progress_and_closes_after_the_end(
    events_gateway: InProcessGateway, api_key: str, media: MediaSite
) -> None:
    async with client(events_gateway.url, api_key) as http:
        job_id = (await http.post("/jobs", json={"url": media.slow_dash_url})).json()["job_id"]
        documents = await asyncio.wait_for(listen(http, job_id), timeout=90)
        final = (await http.get(f"/jobs/{job_id}")).json()

    assert steps_seen(documents) in (STEPS, ["Queued", *STEPS])
    downloading = [document for document in documents if document["step"] == "Downloading"]
    percents = [document["progress"]["percent"] for document in downloading if "progress" in document]
    assert percents and percents == sorted(percents), downloading
    assert all(document["status"] == "Processing" for document in documents[:-1] if document["step"] != "Queued")
    assert documents[-1]["status"] == "Completed" and documents[-1]["s3_url"]
    assert without_url(documents[-1]) == without_url(final)
    assert all(earlier != later for earlier, later in itertools.pairwise(documents))


async def test_fifty_listeners_make_no_more_temporal_reads_than_one(
    events_gateway: InProcessGateway, api_key: str, media: MediaSite
) -> None:
    async with client(events_gateway.url, api_key) as http:
        job_id = (await http.post("/jobs", json={"url": media.slow_dash_url})).json()["job_id"]
        reads_before, started = events_gateway.watcher.reads, time.monotonic()
        streams = await asyncio.wait_for(asyncio.gather(*(listen(http, job_id) for _ in range(50))), timeout=90)
        reads, elapsed = events_gateway.watcher.reads - reads_before, time.monotonic() - started

    # at most one describe() per refresh interval (plus the one in flight at either end), for 50 listeners
    assert reads <= elapsed / REFRESH + 2, (reads, elapsed)
    for documents in streams:
        assert steps_seen(documents)[-3:] == STEPS[-3:]
        assert documents[-1]["status"] == "Completed"


async def test_concurrent_gets_of_a_running_job_share_one_temporal_read_per_interval(
    events_gateway: InProcessGateway, api_key: str, media: MediaSite
) -> None:
    async with client(events_gateway.url, api_key) as http:
        job_id = (await http.post("/jobs", json={"url": media.slow_dash_url})).json()["job_id"]
        reads_before, started = events_gateway.watcher.reads, time.monotonic()
        answers = []
        for _ in range(8):  # 8 bursts of 40 concurrent GETs, over about two seconds
            answers += await asyncio.gather(*(http.get(f"/jobs/{job_id}") for _ in range(40)))
            await asyncio.sleep(0.25)
        reads, elapsed = events_gateway.watcher.reads - reads_before, time.monotonic() - started
        await asyncio.wait_for(listen(http, job_id), timeout=90)  # the job ends before the next test

    assert reads <= elapsed / REFRESH + 2, (reads, elapsed)
    assert [answer.status_code for answer in answers] == [200] * 320
    assert {answer.json()["status"] for answer in answers} <= {"Pending", "Processing"}


@pytest.mark.usefixtures("worker")
def test_a_client_after_the_end_gets_the_final_document_at_once(api: httpx.Client, media: MediaSite) -> None:
    job_id = submit(api, url=media.progressive_url)
    final = wait_terminal(api, job_id)

    started = time.monotonic()
    documents = asyncio.run(_listen_once(api, job_id))

    assert time.monotonic() - started < 2
    assert [without_url(document) for document in documents] == [without_url(final)]


async def _listen_once(api: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    async with client(str(api.base_url), api.headers["x-api-key"]) as http:
        return await listen(http, job_id)


def test_another_keys_job_unknown_ids_and_missing_keys_are_json_errors(
    api: httpx.Client, settings: Settings, media: MediaSite, gateway: str
) -> None:
    job_id = submit(api, url=media.progressive_url)
    other = {"x-api-key": create_key(settings, "events-other")}
    refused = {
        "another key's job": httpx.get(f"{gateway}/jobs/{job_id}/events", headers=other),
        "unknown id": api.get("/jobs/8d7a4f62-1b7e-4c6b-9d1e-3f2a5b6c7d8e/events"),
        "malformed id": api.get("/jobs/not-a-uuid/events"),
        "no key": httpx.get(f"{gateway}/jobs/{job_id}/events"),
    }

    assert {case: response.status_code for case, response in refused.items()} == {
        "another key's job": 404,
        "unknown id": 404,
        "malformed id": 404,
        "no key": 401,
    }
    assert all(response.headers["content-type"] == "application/json" for response in refused.values())
    assert refused["another key's job"].json() == {"error": "Job not found"}


def test_events_route_is_documented_as_an_event_stream_with_json_errors(api: httpx.Client) -> None:
    operation = api.get("/openapi.json").json()["paths"]["/jobs/{job_id}/events"]["get"]

    assert "text/event-stream" in operation["responses"]["200"]["content"]
    for status in ("401", "404", "429", "503"):
        assert operation["responses"][status]["content"]["application/json"]["schema"]["required"] == ["error"]


async def test_quiet_stream_keeps_alive_and_streams_beyond_the_cap_get_429_until_one_closes(
    settings: Settings, media: MediaSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job no worker serves stays Pending: its streams are quiet, so they get keep-alive comments."""
    monkeypatch.setattr("fastapi.routing._PING_INTERVAL", 0.3)
    key = create_key(settings, "events-cap")
    with gateway_in_process(settings, temporal_task_queue="events-unserved", max_event_streams_per_key=2) as gateway:
        idle_tasks = gateway.tasks()
        async with client(gateway.url, key) as http:
            job_id = (await http.post("/jobs", json={"url": media.progressive_url})).json()["job_id"]
            comments: list[str] = []
            first = asyncio.create_task(listen(http, job_id, comments=comments))
            second = asyncio.create_task(listen(http, job_id))
            await asyncio.sleep(1)
            third = await http.get(f"/jobs/{job_id}/events")
            first.cancel()
            await asyncio.sleep(0.5)
            async with http.stream("GET", f"/jobs/{job_id}/events") as after_one_closed:
                reopened = after_one_closed.status_code
            second.cancel()
            for stream in (first, second):
                with contextlib.suppress(asyncio.CancelledError):
                    await stream

        assert third.status_code == 429 and third.headers["Retry-After"] and "2 event streams" in third.json()["error"]
        assert reopened == 200
        assert comments, "no keep-alive comment on a quiet stream"
        # every stream's tasks end with its client
        await asyncio.sleep(0.5)
        assert gateway.tasks() <= idle_tasks
