"""``/jobs`` routes: thin, the work is in schemas, starts, status and the workflow."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from twister import db
from twister.gateway.deps import ApiKeyDep, Services, ServicesDep
from twister.gateway.errors import ApiError
from twister.gateway.schemas import (
    ERROR_RESPONSES,
    JOB_CREATE_SCHEMA,
    JobCreated,
    check_limits,
    idempotency_key,
    parse_job_create,
)
from twister.gateway.starts import StartUnconfirmed, TemporalUnreachable, confirm_started, start_job_workflow
from twister.gateway.status import STORED_FILES, active_document, finished_document
from twister.models import ErrorKind, JobOutcome, JobStatus, JobStep
from twister.net.guard import UnsafeUrlError, check_url
from twister.storage import S3Target, StorageRefused, presigned_url, probe_target, target_client

log = logging.getLogger(__name__)
router = APIRouter()
UNFINISHED_RETRY_AFTER_S = 10


async def _check_url(svc: Services, url: str, field: str) -> None:
    try:
        await asyncio.to_thread(
            check_url, url, svc.settings.allowed_network_list, field, blocked_endpoints=svc.blocked_endpoints
        )
    except UnsafeUrlError as exc:
        raise ApiError(400, str(exc)) from None


async def _check_storage(svc: Services, target: S3Target, prefix: str) -> None:
    """Reachable (the SSRF rules apply to storage endpoints too) and writable, before any job starts."""
    await _check_url(svc, target.endpoint, "storage.endpoint")
    try:
        await asyncio.to_thread(probe_target, target, prefix)
    except StorageRefused as exc:
        raise ApiError(400, f"Invalid value for 'storage': the storage refused a test write ({exc})") from None


@router.post(
    "/jobs",
    status_code=201,
    responses={
        201: {"model": JobCreated},
        200: {"model": JobCreated, "description": "A repeat of an x-idempotency-key: the first job, cached"},
        **ERROR_RESPONSES,
    },
    # the body is parsed by hand for the contract's 400/422 split; the schema still documents it
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": JOB_CREATE_SCHEMA}}}},
)
async def create_job(
    request: Request,
    svc: ServicesDep,
    key: ApiKeyDep,
    x_idempotency_key: Annotated[str | None, Header(description="A repeat returns the first job.")] = None,
) -> JSONResponse:
    job = parse_job_create(await request.body())
    check_limits(job, svc.settings.job_limits())
    await _check_url(svc, job.url, "url")
    if job.webhook_url:
        await _check_url(svc, job.webhook_url, "webhook_url")
    storage = job.storage_target()
    if storage is not None:
        await _check_storage(svc, storage, job.options().storage_prefix or "")
    job_id = uuid.uuid4()
    created_at = db.now_ms()
    limit = svc.settings.max_unfinished_jobs_per_key
    idempotency = (idempotency_key(x_idempotency_key), job.request_hash()) if x_idempotency_key is not None else None
    admission = await db.insert_job(
        svc.pool, job_id, key.id, job.url, job.echo(), created_at, limit, idempotency, storage, svc.box
    )
    if admission.job_id is None:
        raise ApiError(
            429,
            f"This key already has {limit} unfinished jobs; submit more when some have finished",
            headers={"Retry-After": str(UNFINISHED_RETRY_AFTER_S)},
        )
    if not admission.created:
        if idempotency is None or admission.earlier_request_hash != idempotency[1]:
            raise ApiError(409, "This x-idempotency-key was used with a different request body; use a new key")
        return JSONResponse({"job_id": str(admission.job_id), "cached": True}, status_code=200)
    job_input = job.job_input(str(job_id), key.id, created_at, svc.settings)
    try:
        await start_job_workflow(svc.temporal, svc.settings, job_input)
    except TemporalUnreachable as exc:
        await db.delete_job(svc.pool, job_id)
        log.warning("could not start job %s: %s", job_id, exc)
        raise ApiError(
            503, "The workflow service (Temporal) is unreachable; the job was not created. Try again shortly."
        ) from None
    except StartUnconfirmed as exc:
        # It may have started anyway: the job is kept, and the reconciler makes sure it runs.
        log.warning("start of job %s unconfirmed (%s); the reconciler will confirm it", job_id, exc)
    else:
        await confirm_started(svc, job_id)
    log.info("job %s created", job_id)
    return JSONResponse({"job_id": str(job_id)}, status_code=201)


def ended_without_result(finished_at: int) -> JobOutcome:
    """The outcome of a job whose workflow closed without writing one."""
    return JobOutcome(
        status=JobStatus.FAILED,
        step=JobStep.FINISHED,
        finished_at=finished_at,
        error="The job's workflow ended without a result (terminated by an operator); retry the job.",
        error_type=ErrorKind.ERROR,
    )


def _parse_job_id(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(job_id)
    except ValueError:
        raise ApiError(404, "Job not found") from None


@router.get("/jobs/{job_id}", responses=ERROR_RESPONSES)
async def get_job(job_id: str, svc: ServicesDep, key: ApiKeyDep) -> dict[str, Any]:
    job_uuid = _parse_job_id(job_id)
    row = await db.get_job(svc.pool, job_uuid, key.id)
    if row is None:
        raise ApiError(404, "Job not found")
    if row["finished_at"] is None:
        document = await active_document(svc.temporal, row, timedelta(seconds=svc.settings.temporal_rpc_timeout))
        if document is not None:
            return document
        row = await db.get_job(svc.pool, job_uuid, key.id) or row
    if row["finished_at"] is None:
        # The workflow closed without writing its outcome: terminated (or timed out) in Temporal.
        await db.record_outcome(svc.pool, job_uuid, ended_without_result(db.now_ms()), only_unfinished=True)
        row = await db.get_job(svc.pool, job_uuid, key.id) or row
    urls = {}
    if row["status"] == JobStatus.COMPLETED:
        settings = svc.settings
        own = await db.job_storage(svc.pool, svc.box, job_uuid) if row["storage"] else None
        client, bucket = (target_client(own), own.bucket) if own else (svc.s3, settings.s3_bucket)
        urls = {
            url_field: presigned_url(client, bucket, row[key_field], settings.presign_ttl_seconds)
            for key_field, url_field in STORED_FILES.items()
            if row[key_field]
        }
    return finished_document(row, urls)
