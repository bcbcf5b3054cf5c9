"""The contract's job status document, from the workflow while the job runs and from the row after."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from twister.job_document import base_document
from twister.models import HOST_STEPS, TERMINAL_STATUSES, JobOutcome, JobStatus, JobStep

BASE_OUTCOME_FIELDS = ("status", "step", "error")
"""Outcome fields that are part of the base document, present while the job runs too."""

STORED_FILES = {"s3_key": "s3_url", "subtitle_key": "subtitle_url", "thumbnail_key": "thumbnail_url"}
"""Outcome fields naming a stored file, and the document field that gives its presigned URL instead."""

FINISHED_FIELDS = tuple(
    f.name for f in fields(JobOutcome) if f.name not in BASE_OUTCOME_FIELDS and f.name not in STORED_FILES
)
"""What a finished job's document adds, each only when it has a value."""

_PROGRESS_FIELDS = ("percent", "downloaded_bytes", "total_bytes", "speed_mbps", "eta_s", "recorded_seconds")
"""The contract's progress fields, and (beyond) the seconds a live recording has recorded so far."""


def finished_document(row: dict[str, Any], urls: dict[str, str]) -> dict[str, Any]:
    """``urls``: presigned URLs by document field (``s3_url``, ``subtitle_url``, ``thumbnail_url``)."""
    document = base_document(row, row["status"], row["step"], urls.get("s3_url"), row["error"])
    document["subtitle_url"] = urls.get("subtitle_url")
    if "thumbnail_url" in urls:
        document["thumbnail_url"] = urls["thumbnail_url"]
    document.update({name: row[name] for name in FINISHED_FIELDS if row[name] is not None})
    if row["batch_id"]:
        document["batch_id"] = str(row["batch_id"])
    document.update({name: value for name, value in row["request"].items() if name not in document})
    return document


@dataclass(frozen=True)
class LiveState:
    """What ``describe()`` tells of a running job: the memo's status and step, and the running
    step's last progress."""

    status: str
    step: str
    progress: dict[str, Any] | None = None


QUEUED = LiveState(JobStatus.PENDING, JobStep.QUEUED)
"""A job whose workflow Temporal does not know (yet): its start is still being confirmed."""


async def read_live_state(client: Client, job_id: str, rpc_timeout: timedelta) -> LiveState | None:
    """The state of a running job from ``describe()``, which needs no worker. None when the job has
    finished in the meantime: its row then holds the answer (the workflow writes the row before it
    sets a terminal memo, and may run on to deliver the webhook)."""
    try:
        description = await client.get_workflow_handle(job_id).describe(rpc_timeout=rpc_timeout)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return QUEUED
    if (
        description.raw_description.workflow_execution_info.status
        != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    ):
        return None
    memo = await description.memo()
    status = str(memo.get("status", JobStatus.PENDING))
    if status in TERMINAL_STATUSES:
        return None
    pending = description.raw_description.pending_activities
    progress = await _progress(client, pending) if status == JobStatus.PROCESSING else None
    return LiveState(status, str(memo.get("step", JobStep.QUEUED)), progress)


def live_document(row: dict[str, Any], state: LiveState) -> dict[str, Any]:
    """The document of a running job: the base fields, and ``progress`` while a step reports it."""
    document = base_document(row, state.status, state.step)
    if state.progress:
        document["progress"] = state.progress
    return document


async def _progress(client: Client, pending: Any) -> dict[str, Any] | None:
    for activity in pending:
        if activity.activity_type.name not in HOST_STEPS or not activity.heartbeat_details.payloads:
            continue
        details = await client.data_converter.decode(list(activity.heartbeat_details.payloads))
        if details and isinstance(details[0], dict):
            found = {name: details[0][name] for name in _PROGRESS_FIELDS if details[0].get(name) is not None}
            return found or None
    return None
