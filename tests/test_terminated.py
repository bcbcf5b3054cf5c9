"""A workflow terminated by an operator (Temporal UI or CLI) never runs its cleanup step: the worker
must still free the job's slot and files, or it refuses every later job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi.testclient import TestClient
from temporalio.client import Client

from tests.conftest import create_key, leftover_work_dirs, submit, wait_for, wait_terminal
from tests.media_site import MediaSite
from twister.config import Settings
from twister.embedded.process import ManagedProcess
from twister.gateway.app import create_app

QUEUE = "terminations"  # a worker of its own: the session's worker never takes these jobs


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


def test_terminated_job_frees_its_slot_for_the_next_jobs(
    settings: Settings, media: MediaSite, start_worker: Callable[..., ManagedProcess]
) -> None:
    worker = start_worker("worker-one-slot", TWISTER_WORKER_MAX_JOBS="1", TWISTER_TEMPORAL_TASK_QUEUE=QUEUE)
    app = create_app(settings.model_copy(update={"temporal_task_queue": QUEUE}))
    with TestClient(app, headers={"x-api-key": create_key(settings, "operator")}) as api:
        stuck = submit(api, url=media.slow_dash_url)
        wait_for(api, stuck, lambda job: job["step"] == "Downloading")
        asyncio.run(terminate(settings, stuck))

        later = [submit(api, url=media.progressive_url) for _ in range(10)]
        assert [wait_terminal(api, job_id, timeout=120)["status"] for job_id in later] == ["Completed"] * 10

        gone = wait_terminal(api, stuck)
        assert gone["status"] == "Failed" and "terminated" in gone["error"]
        assert leftover_work_dirs(settings, stuck) == []
        # a full worker is not offered jobs: each waited for the free slot and was assigned at once
        assert asyncio.run(retried_attempts(settings, later)) == 0
    assert "'activity_type': 'assign_worker'" not in worker.log_path.read_text(errors="replace")
