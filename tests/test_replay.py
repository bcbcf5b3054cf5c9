"""The determinism guard: every recorded job history in ``tests/histories`` replays on the workflow as
the code has it now. A change that would break the jobs already running fails here; guard it with
``workflow.patched`` (and record a new set with ``python -m tests.record_histories``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.record_histories import SCENARIOS
from twister.workflows import DownloadJobWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_each_recorded_version_covers_every_scenario() -> None:
    versions = {path.stem.split("-", 1)[0] for path in HISTORIES}
    assert {"v1", "v2"} <= versions
    for version in versions:
        assert {path.stem.split("-", 1)[1] for path in HISTORIES if path.stem.startswith(f"{version}-")} == {
            scenario.name for scenario in SCENARIOS
        }


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=[DownloadJobWorkflow]).replay_workflow(history)
