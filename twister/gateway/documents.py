"""A job's status document as ``GET /jobs/{id}`` and its event stream serve it: live from the
gateway's watcher while the job runs, from its row (with presigned URLs) once it has finished."""

from __future__ import annotations

from typing import Any

from twister import db
from twister.backends import Backends
from twister.gateway.deps import Services
from twister.gateway.files import presigned_files
from twister.gateway.status import finished_document, live_document
from twister.models import ErrorKind, JobOutcome, JobStatus, JobStep


async def job_document(svc: Services, row: dict[str, Any]) -> dict[str, Any]:
    live = await current_document(svc, row)
    return live if live is not None else await final_document(svc, row)


async def current_document(svc: Services, row: dict[str, Any]) -> dict[str, Any] | None:
    """The document of a running job; None once the job has ended and its row holds the answer."""
    if row["finished_at"] is not None:
        return None
    state = await svc.watcher.state(str(row["id"]))
    return None if state is None else live_document(row, state)


def ended_without_result(finished_at: int) -> JobOutcome:
    """The outcome of a job whose workflow closed without writing one."""
    return JobOutcome(
        status=JobStatus.FAILED,
        step=JobStep.FINISHED,
        finished_at=finished_at,
        error="The job's workflow ended without a result (terminated by an operator); retry the job.",
        error_type=ErrorKind.ERROR,
    )


async def final_document(svc: Backends, row: dict[str, Any]) -> dict[str, Any]:
    """The document of a job whose workflow has ended, from its row (read again if ``row`` was read
    before the end)."""
    job_id, key_id = row["id"], row["api_key_id"]
    if row["finished_at"] is None:
        row = await db.get_job(svc.pool, job_id, key_id) or row
    if row["finished_at"] is None:
        # The workflow closed without writing its outcome: terminated (or timed out) in Temporal.
        await db.record_outcome(svc.pool, job_id, ended_without_result(db.now_ms()), only_unfinished=True)
        row = await db.get_job(svc.pool, job_id, key_id) or row
    urls = await presigned_files(svc, row) if row["status"] == JobStatus.COMPLETED else {}
    return finished_document(row, urls)
