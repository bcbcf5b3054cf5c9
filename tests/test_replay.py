"""The determinism guard: every recorded job history in ``tests/histories`` replays on the workflow as
the code has it now. A change that would break the jobs already running fails here; guard it with
``workflow.patched`` (and record a new set with ``python -m tests.record_histories``).

The same histories show where ``twister jobs replay`` resets a run to, and which attempts the reset
run sees again."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.record_histories import SCENARIOS
from twister.models import ActivityName
from twister.operate.replay import attempts_before, plan_reset
from twister.workflows import DownloadJobWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_each_recorded_version_covers_every_scenario() -> None:
    versions = {path.stem.split("-", 1)[0] for path in HISTORIES}
    assert {"v1", "v2"} <= versions
    for version in versions:
        assert {path.stem.split("-", 1)[1] for path in HISTORIES if path.stem.startswith(f"{version}-")} == {
            scenario.name for scenario in SCENARIOS
        }


def history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    await Replayer(workflows=[DownloadJobWorkflow]).replay_workflow(history(path))


def scheduling_task(events: list[HistoryEvent], step: ActivityName) -> int:
    """The workflow task that scheduled the last ``step``."""
    return max(
        event.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
        for event in events
        if event.activity_task_scheduled_event_attributes.activity_type.name == step
    )


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_replay_resets_to_before_the_step_that_did_not_finish(version: str) -> None:
    failed = list(history(Path(__file__).parent / "histories" / f"{version}-failed-upload.json").events)
    plan = plan_reset(failed)
    assert (plan.redo_step.step, plan.redo_step.event_id) == (
        ActivityName.UPLOAD,
        scheduling_task(failed, ActivityName.UPLOAD),
    )
    assert plan.redo_step.host_queue and plan.redo_step.host_queue.startswith("host-")
    assert (plan.reassign.step, plan.reassign.event_id) == (ActivityName.ASSIGN_WORKER, 4)
    # the reset run sees the download again, not the three upload attempts after the point
    assert attempts_before(failed, plan.redo_step.event_id) == {ActivityName.DOWNLOAD: 1, ActivityName.UPLOAD: 0}
    assert attempts_before(failed, len(failed) + 1) == {ActivityName.DOWNLOAD: 1, ActivityName.UPLOAD: 3}

    cancelled = list(history(Path(__file__).parent / "histories" / f"{version}-cancelled.json").events)
    assert plan_reset(cancelled).redo_step.step == ActivityName.DOWNLOAD

    completed = list(history(Path(__file__).parent / "histories" / f"{version}-completed.json").events)
    assert plan_reset(completed).redo_step == plan_reset(completed).reassign  # nothing unfinished: the start
