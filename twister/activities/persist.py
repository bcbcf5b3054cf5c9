"""Writes a job's terminal state to its Postgres row."""

from __future__ import annotations

import uuid

import asyncpg
from temporalio import activity

from twister import db
from twister.models import JobOutcome


class PersistActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="record_outcome")
    async def record_outcome(self, job_id: str, outcome: JobOutcome) -> None:
        await db.record_outcome(self._pool, uuid.UUID(job_id), outcome)

    @activity.defn(name="record_webhook_status")
    async def record_webhook_status(self, job_id: str, status: str) -> None:
        await db.record_webhook_status(self._pool, uuid.UUID(job_id), status)
