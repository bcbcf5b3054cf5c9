"""Records the job workflow histories that ``tests/test_replay.py`` replays.

``python -m tests.record_histories VERSION`` runs the workflow as the code has it now, with the test
activities of ``tests/test_workflow.py``, on a local Temporal dev server, and writes one history per
scenario to ``tests/histories/VERSION-<scenario>.json``. Record a new set after a workflow change and
keep the older sets: jobs started before the change still have such histories.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.test_workflow import FakeHost, fake_host, job_input, wait_until, workers
from twister.embedded.process import find_binary
from twister.models import ErrorType, JobInput, JobOutcome
from twister.workflows import DownloadJobWorkflow
from twister.workflows.visibility import SEARCH_ATTRIBUTES

HISTORIES = Path(__file__).parent / "histories"
HOOK = "https://hooks.example/twister"


async def _cancel_while_downloading(handle: WorkflowHandle[Any, JobOutcome], host: FakeHost) -> None:
    await wait_until(lambda: "download" in host.calls)
    await handle.cancel()


@dataclass(frozen=True)
class Scenario:
    name: str
    host: Callable[[], FakeHost]
    job: Callable[[], JobInput]
    meanwhile: Callable[[WorkflowHandle[Any, JobOutcome], FakeHost], Awaitable[None]] | None = None


SCENARIOS = (
    Scenario("completed", fake_host, job_input),
    Scenario("failed-upload", lambda: fake_host(upload_failures=[ErrorType.STORAGE_FAILED] * 10), job_input),
    Scenario(
        "cancelled",
        lambda: fake_host(block_download=True),
        lambda: job_input(webhook_url=HOOK),
        _cancel_while_downloading,
    ),
    Scenario("progress-webhooks", fake_host, lambda: replace(job_input(webhook_url=HOOK), progress_webhook=True)),
)


async def record(env: WorkflowEnvironment, scenario: Scenario) -> str:
    """Runs the scenario to its end; returns its history as JSON."""
    host, job = scenario.host(), scenario.job()
    async with workers(env, host) as shared:
        handle: WorkflowHandle[Any, JobOutcome] = await env.client.start_workflow(
            DownloadJobWorkflow.run, job, id=job.job_id, task_queue=shared
        )
        if scenario.meanwhile is not None:
            await scenario.meanwhile(handle, host)
        with contextlib.suppress(WorkflowFailureError):  # a failed job may fail its workflow
            await handle.result()
    history = await handle.fetch_history()
    return history.to_json()


async def main(version: str) -> None:
    HISTORIES.mkdir(exist_ok=True)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"), search_attributes=SEARCH_ATTRIBUTES
    )
    async with env:
        for scenario in SCENARIOS:
            path = HISTORIES / f"{version}-{scenario.name}.json"
            path.write_text(await record(env, scenario) + "\n")
            print(f"wrote {path}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.record_histories VERSION   (e.g. v2)")
    asyncio.run(main(sys.argv[1]))
    sys.stdout.flush()
    os._exit(0)  # the Temporal client's threads can abort interpreter finalization (temporalio/sdk-python#300)
