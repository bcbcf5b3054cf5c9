"""Writes a job's terminal state to its Postgres row."""

from __future__ import annotations

import uuid

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from twister import db
from twister.models import ActivityName, ErrorType, JobOutcome, WebhookStatus


def _row_missing(job_id: str) -> ApplicationError:
    activity.logger.error("job %s has no row to record its result in", job_id)
    return ApplicationError(
        f"Job {job_id} has no row in the jobs table; its result cannot be recorded.",
        type=ErrorType.JOB_ROW_MISSING,
        non_retryable=True,
    )


class PersistActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name=ActivityName.RECORD_OUTCOME)
    async def record_outcome(self, job_id: str, outcome: JobOutcome) -> bool:
        """True when this job's end finished its batch (it was the batch's last job running)."""
        if not await db.record_outcome(self._pool, uuid.UUID(job_id), outcome):
            raise _row_missing(job_id)
        return await db.claim_batch_end(self._pool, uuid.UUID(job_id), outcome.finished_at)

    @activity.defn(name=ActivityName.RECORD_WEBHOOK_STATUS)
    async def record_webhook_status(self, job_id: str, status: WebhookStatus) -> None:
        if not await db.record_webhook_status(self._pool, uuid.UUID(job_id), status):
            raise _row_missing(job_id)
