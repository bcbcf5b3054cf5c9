"""What a client may do to an accepted job: cancel it, retry it, delete its file."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from twister import db
from twister.backends import Backends
from twister.gateway.admission import start_single
from twister.gateway.deps import Services
from twister.gateway.errors import ApiError
from twister.gateway.files import delete_files
from twister.gateway.quota import job_limits, too_many_unfinished, unfinished_limit, within_caps
from twister.gateway.schemas import JobCreate
from twister.gateway.starts import StartUnconfirmed, TemporalUnreachable, job_input_from_row, start_job_workflow
from twister.models import RETRYABLE_STATUSES, ErrorKind, JobOutcome, JobStatus, JobStep
from twister.workflows.job import CANCELLED_MESSAGE

log = logging.getLogger(__name__)

_RUNNING = WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING


def cancelled(finished_at: int) -> JobOutcome:
    return JobOutcome(
        status=JobStatus.FAILED,
        step=JobStep.CANCELLED,
        finished_at=finished_at,
        error=CANCELLED_MESSAGE,
        error_type=ErrorKind.ERROR,
    )


async def cancel(svc: Backends, row: dict[str, Any]) -> None:
    """A running workflow is asked to cancel: it stops its step, cleans up, records the outcome and
    calls the webhook. A job not yet on a worker is also marked cancelled at once, so it reads as
    cancelled even while no worker runs. A job with no workflow yet (a paused batch's) gets one that
    is cancelled at once, so its end is recorded and sent like any other cancelled job's."""
    if row["finished_at"] is not None:
        raise ApiError(400, "Job cannot be cancelled (it has already finished)")
    handle = svc.temporal.get_workflow_handle(str(row["id"]))
    rpc_timeout = timedelta(seconds=svc.settings.temporal_rpc_timeout)
    try:
        description = await handle.describe(rpc_timeout=rpc_timeout)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        description = None
    if description is None:
        await _start_for_cancel(svc, row)
        await handle.cancel(rpc_timeout=rpc_timeout)
    elif description.raw_description.workflow_execution_info.status == _RUNNING:
        await handle.cancel(rpc_timeout=rpc_timeout)
        if (await description.memo()).get("status") != JobStatus.PENDING:
            return
    await db.record_outcome(svc.pool, row["id"], cancelled(db.now_ms()), only_unfinished=True)


async def _start_for_cancel(svc: Backends, row: dict[str, Any]) -> None:
    """An unconfirmed start may have reached Temporal: the cancel that follows is then still owed to
    that workflow (and fails with a 503 if there is none)."""
    try:
        await start_job_workflow(svc.temporal, svc.settings, job_input_from_row(row, svc.settings))
    except TemporalUnreachable as exc:
        log.warning("could not start job %s to cancel it: %s", row["id"], exc)
        raise ApiError(
            503, "The workflow service (Temporal) is unreachable; the job was not cancelled. Try again shortly."
        ) from None
    except StartUnconfirmed as exc:
        log.warning("start of job %s to cancel it unconfirmed (%s); cancelling it anyway", row["id"], exc)


async def retry(svc: Services, row: dict[str, Any], key: db.ApiKey) -> uuid.UUID:
    """A new job with the failed one's parameters (and its own storage target, if it had one), under
    the key's caps as they are now."""
    if row["status"] not in RETRYABLE_STATUSES:
        raise ApiError(400, "Only failed jobs can be retried")
    job = within_caps(svc, key, JobCreate.model_validate({"url": row["url"], **row["request"]}))
    storage = await db.job_storage(svc.pool, svc.box, row["id"]) if row["storage"] else None
    new = db.NewJob(
        uuid.uuid4(),
        job.url,
        job.echo(),
        storage,
        retry_of=row["retry_of"] or row["id"],
        limits=await job_limits(svc, key),
    )
    created_at = db.now_ms()
    admission = await db.insert_job(svc.pool, new, key.id, created_at, unfinished_limit(svc, key), box=svc.box)
    if admission.job_id is None:
        raise too_many_unfinished(svc, key)
    await start_single(svc, job, new, key.id, created_at)
    return new.id


async def delete_file(svc: Services, row: dict[str, Any]) -> str:
    if row["status"] != JobStatus.COMPLETED or not row["s3_key"]:
        raise ApiError(400, "Job has no file to delete")
    await delete_files(svc, row)
    return str(row["s3_key"])
