"""Starting a job's workflow, and making sure every accepted job's workflow gets started.

The job row is written first (``workflow_start_pending``), then the workflow is started with the
job id as its workflow id, so a repeated start is idempotent. A start that fails may still have
reached Temporal (a timeout says nothing either way): such a job stays accepted, and the
reconciler repeats the start until Temporal confirms the workflow exists. Only a start that
provably never left this process (no connection to Temporal) undoes the job.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from twister import db
from twister.config import Settings
from twister.gateway.deps import Services
from twister.gateway.errors import DATABASE_ERRORS
from twister.gateway.schemas import JobCreate
from twister.logs import job_context
from twister.models import JobInput, JobStatus, JobStep
from twister.workflows import DownloadJobWorkflow

log = logging.getLogger(__name__)

RECONCILE_BATCH = 100


class TemporalUnreachable(Exception):
    """No connection to Temporal could be made: the start request was never sent."""


class StartUnconfirmed(Exception):
    """The start failed in a way that does not tell whether Temporal received it."""


def _never_sent(exc: BaseException) -> bool:
    if isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect"):
        return True  # the lazy client's first connection failed
    return isinstance(exc, RPCError) and exc.status == RPCStatusCode.UNAVAILABLE and "connect error" in exc.message


async def start_job_workflow(temporal: Client, settings: Settings, job: JobInput) -> None:
    """Returns once the job's workflow exists (started now or by an earlier attempt)."""
    try:
        async with asyncio.timeout(settings.temporal_rpc_timeout + 1):
            await temporal.start_workflow(
                DownloadJobWorkflow.run,
                job,
                id=job.job_id,
                task_queue=settings.temporal_task_queue,
                memo={"status": str(JobStatus.PENDING), "step": str(JobStep.QUEUED)},
                # a closed run of this job (e.g. terminated by an operator) is never started over
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=timedelta(seconds=settings.temporal_rpc_timeout),
            )
    except WorkflowAlreadyStartedError:
        return
    except (RPCError, RuntimeError, OSError, TimeoutError) as exc:
        if _never_sent(exc):
            raise TemporalUnreachable(str(exc)) from None
        raise StartUnconfirmed(f"{type(exc).__name__}: {exc}") from None


def job_input_from_row(row: dict[str, Any], settings: Settings) -> JobInput:
    """The workflow input of a stored job: its echoed create parameters are a valid create body."""
    create = JobCreate.model_validate({"url": row["url"], **row["request"]})
    batch_id = str(row["batch_id"]) if row.get("batch_id") else None
    limits = row["limits"] or settings.job_limits()  # rows from before per-job limits ran with the server's
    return create.job_input(str(row["id"]), row["api_key_id"], row["created_at"], settings, limits, batch_id)


async def confirm_started(svc: Services, job_id: uuid.UUID) -> None:
    """Best effort: if this write fails, the reconciler finds the workflow started and marks it then."""
    try:
        await db.mark_workflow_started(svc.pool, job_id)
    except DATABASE_ERRORS as exc:
        log.warning("could not mark job %s started (%s); the reconciler will", job_id, type(exc).__name__)


async def reconcile_starts(svc: Services) -> int:
    """Starts the workflows of jobs whose start is unconfirmed; returns how many it confirmed."""
    settings = svc.settings
    grace_ms = int((settings.temporal_rpc_timeout + 2) * 1000)  # a POST still starting its own job
    rows = await db.jobs_awaiting_start(svc.pool, db.now_ms() - grace_ms, RECONCILE_BATCH)
    confirmed = 0
    for row in rows:
        with job_context(row["id"]):
            try:
                await start_job_workflow(svc.temporal, settings, job_input_from_row(row, settings))
            except (TemporalUnreachable, StartUnconfirmed) as exc:
                log.warning("job starts still unconfirmed, Temporal: %s", exc)
                break
            await confirm_started(svc, row["id"])
            log.info("job %s: workflow start confirmed by the reconciler", row["id"])
        confirmed += 1
    return confirmed


async def reconcile_forever(svc: Services) -> None:
    while True:
        await asyncio.sleep(svc.settings.start_reconcile_interval)
        try:
            await reconcile_starts(svc)
        except DATABASE_ERRORS as exc:
            log.warning("start reconciler: the database is unreachable (%s)", type(exc).__name__)
        except Exception:
            log.exception("start reconciler failed; trying again next round")
