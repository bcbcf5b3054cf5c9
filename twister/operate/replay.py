"""``twister jobs replay``: a Failed or Warning job runs again in place, under its own id.

By default the job's last run is reset (a Temporal reset) to just before the step that did not
finish, so the steps that did are not done again: a failed job's files wait on its worker for
``TWISTER_FAILED_WORK_TTL``, and if they are gone by then the workflow downloads again there. When
that worker no longer polls its queue, the reset goes back to just before the job was assigned, so
another worker takes it from the download. ``from_start`` (or a run whose history Temporal no longer
keeps) starts a new run from the beginning instead.

The row becomes unfinished (Pending) once the new run exists, and gets that run's outcome; the
attempts of the part set aside are kept on the row, so retry counts go on counting.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, ResetWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from twister import db
from twister.backends import Backends
from twister.config import Settings
from twister.gateway.starts import job_input_from_row, start_job_workflow
from twister.models import COUNTED_STEPS, HOST_STEPS, RETRYABLE_STATUSES, ActivityName, JobInput

POLLER_SEEN_WITHIN = timedelta(minutes=2)
"""A worker long-polls its queue for up to about a minute at a time: one seen within this is alive."""

REASON = "twister jobs replay"


class NotReplayable(Exception):
    """The job cannot be replayed (not a finished Failed/Warning job, or its workflow still runs)."""


@dataclass(frozen=True)
class ResetPoint:
    event_id: int
    """The ``WorkflowTaskCompleted`` event the run is reset to: the task that scheduled ``step``."""
    step: ActivityName
    """The first step the reset run does again."""
    host_queue: str | None = None
    """The worker queue that step ran on (host steps only)."""


@dataclass(frozen=True)
class ResetPlan:
    redo_step: ResetPoint
    """Just before the step that did not finish."""
    reassign: ResetPoint
    """Just before the job was assigned to the worker holding that step's files."""


def plan_reset(events: Sequence[HistoryEvent]) -> ResetPlan:
    """Where a run can be reset to, from its history: before its last host step that did not complete
    (failed, timed out, cancelled, or cut short by a termination), or before its assignment. A run that
    never got that far is reset to its first workflow task."""
    scheduled: dict[int, Any] = {}
    completed: set[int] = set()
    for event in events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes
        elif event.HasField("activity_task_completed_event_attributes"):
            completed.add(event.activity_task_completed_event_attributes.scheduled_event_id)

    def point(event_id: int) -> ResetPoint:
        attributes = scheduled[event_id]
        return ResetPoint(
            attributes.workflow_task_completed_event_id,
            ActivityName(attributes.activity_type.name),
            attributes.task_queue.name,
        )

    unfinished = [
        event_id
        for event_id, a in scheduled.items()
        if a.activity_type.name in HOST_STEPS and event_id not in completed
    ]
    if unfinished:
        failed = max(unfinished)
        assigned = max(
            e for e, a in scheduled.items() if a.activity_type.name == ActivityName.ASSIGN_WORKER and e < failed
        )
        return ResetPlan(point(failed), ResetPoint(point(assigned).event_id, ActivityName.ASSIGN_WORKER))
    first_task = next(event.event_id for event in events if event.HasField("workflow_task_completed_event_attributes"))
    start = ResetPoint(first_task, ActivityName.ASSIGN_WORKER)
    return ResetPlan(start, start)


def attempts_before(events: Sequence[HistoryEvent], event_id: int) -> dict[ActivityName, int]:
    """Attempts of the counted steps recorded before ``event_id``: a run reset there sees them again."""
    types = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.HasField("activity_task_scheduled_event_attributes")
    }
    attempts = dict.fromkeys(COUNTED_STEPS, 0)
    for event in events:
        if event.event_id < event_id and event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            step = types.get(started.scheduled_event_id)
            if step in attempts:
                attempts[ActivityName(step)] += started.attempt
    return attempts


def _attempts(row: dict[str, Any], step: ActivityName) -> int:
    """Every attempt of the step the job made so far (its retry count includes earlier runs')."""
    retries = row[f"{step}_retries"]
    return 0 if retries is None else retries + 1


@dataclass(frozen=True)
class Replayed:
    job_id: str
    resumed: str
    """Where the new run begins, e.g. "before upload" or "from the start"."""


async def replay_job(backends: Backends, row: dict[str, Any], *, from_start: bool = False) -> Replayed:
    """Replays one finished Failed or Warning job (raises ``NotReplayable`` for any other)."""
    job_id = str(row["id"])
    if row["finished_at"] is None or row["status"] not in RETRYABLE_STATUSES:
        raise NotReplayable(f"it is {row['status']}: only finished Failed or Warning jobs are replayed")
    run_id, events = await _last_run(backends, job_id)
    point = None
    if events and not from_start:
        plan = plan_reset(events)
        point = plan.redo_step if await _host_alive(backends, plan.redo_step.host_queue) else plan.reassign
    seen_again = attempts_before(events, point.event_id) if point else dict.fromkeys(COUNTED_STEPS, 0)
    earlier = {step: max(_attempts(row, step) - seen_again[step], 0) for step in COUNTED_STEPS}
    await db.set_earlier_attempts(backends.pool, row["id"], earlier)
    if point is not None:
        await backends.temporal.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=backends.settings.temporal_namespace,
                workflow_execution=WorkflowExecution(workflow_id=job_id, run_id=run_id),
                reason=REASON,
                workflow_task_finish_event_id=point.event_id,
                request_id=str(uuid.uuid4()),
            )
        )
        resumed = f"before {point.step}" if point.step != ActivityName.ASSIGN_WORKER else "before its assignment"
    else:
        job, settings = await _first_run(backends, row, events)
        await start_job_workflow(backends.temporal, settings, job, replay=True)
        resumed = "from the start"
    await db.reopen_job(backends.pool, row["id"], row["finished_at"])
    return Replayed(job_id, resumed)


async def _last_run(backends: Backends, job_id: str) -> tuple[str, list[HistoryEvent]]:
    """The id and history of the job's last run; no history when Temporal no longer keeps it."""
    handle = backends.temporal.get_workflow_handle(job_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return "", []  # dropped after the namespace's retention period: only a new run is possible
    if description.status == WorkflowExecutionStatus.RUNNING:
        raise NotReplayable("its workflow is still running")
    history = await backends.temporal.get_workflow_handle(job_id, run_id=description.run_id).fetch_history()
    return description.run_id, list(history.events)


async def _first_run(
    backends: Backends, row: dict[str, Any], events: Sequence[HistoryEvent]
) -> tuple[JobInput, Settings]:
    """The input and settings (task queue) a new run starts with: the last run's, as its history
    recorded them, else (history gone) the row's parameters with this process's settings."""
    if not events:
        return job_input_from_row(row, backends.settings), backends.settings
    started = events[0].workflow_execution_started_event_attributes
    [job] = await backends.temporal.data_converter.decode(started.input.payloads, [JobInput])
    return job, backends.settings.model_copy(update={"temporal_task_queue": started.task_queue.name})


async def _host_alive(backends: Backends, queue: str | None) -> bool:
    """Whether a worker polled this host queue lately (its files may still be there)."""
    if queue is None:
        return False
    described = await backends.temporal.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=backends.settings.temporal_namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    seen_since = datetime.now(UTC) - POLLER_SEEN_WITHIN
    return any(poller.last_access_time.ToDatetime(UTC) >= seen_since for poller in described.pollers)
