"""``/jobs`` routes: thin, the work is in schemas, admission, documents, lifecycle and the workflow."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from twister import db
from twister.gateway import lifecycle
from twister.gateway.admission import (
    check_delivery,
    check_source,
    create_batch,
    create_playlist,
    start_single,
)
from twister.gateway.deps import ApiKeyDep, OwnedJobDep, ServicesDep
from twister.gateway.documents import job_document
from twister.gateway.errors import ApiError
from twister.gateway.inspect import SourceProblem, could_be_playlist, inspect_url
from twister.gateway.quota import job_limits, too_many_unfinished, unfinished_limit, within_caps
from twister.gateway.schemas import (
    BULK_CREATE_SCHEMA,
    ERROR_RESPONSES,
    JOB_CREATE_SCHEMA,
    MAX_PAGE,
    BulkCreated,
    FileDeleted,
    JobCancelled,
    JobCreated,
    JobDocument,
    JobPage,
    JobRetried,
    JobSummary,
    PlaylistCreated,
    idempotency_key,
    parse_bulk_create,
    parse_job_create,
)
from twister.models import JobStatus, status_named

log = logging.getLogger(__name__)
router = APIRouter()


@router.post(
    "/jobs",
    status_code=201,
    responses={
        201: {"model": JobCreated | PlaylistCreated, "description": "A job, or for a playlist URL a batch of jobs"},
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
    job = within_caps(svc, key, parse_job_create(await request.body()))
    idempotency = (idempotency_key(x_idempotency_key), job.request_hash()) if x_idempotency_key is not None else None
    await check_source(svc, job.url, "url")
    storage = await check_delivery(svc, job)
    if could_be_playlist(job.url):
        try:
            info = await inspect_url(svc, job.url)
        except SourceProblem:
            info = None  # not a playlist the downloader can read: the job reports what is wrong
        if info is not None and info.entries:
            created = await create_playlist(svc, key, job, storage, info.title, info.entries)
            return JSONResponse(created.model_dump(), status_code=201)
    new, created_at = (
        db.NewJob(uuid.uuid4(), job.url, job.echo(), storage, limits=await job_limits(svc, key)),
        db.now_ms(),
    )
    admission = await db.insert_job(svc.pool, new, key.id, created_at, unfinished_limit(svc, key), idempotency, svc.box)
    if admission.job_id is None:
        raise too_many_unfinished(svc, key)
    if not admission.created:
        if idempotency is None or admission.earlier_request_hash != idempotency[1]:
            raise ApiError(409, "This x-idempotency-key was used with a different request body; use a new key")
        return JSONResponse({"job_id": str(admission.job_id), "cached": True}, status_code=200)
    await start_single(svc, job, new, key.id, created_at)
    return JSONResponse({"job_id": str(new.id)}, status_code=201)


@router.get("/jobs/{job_id}", response_model=None, responses={200: {"model": JobDocument}, **ERROR_RESPONSES})
async def get_job(job: OwnedJobDep, svc: ServicesDep) -> JSONResponse:
    return JSONResponse(await job_document(svc, job.row))


@router.get("/jobs", responses=ERROR_RESPONSES, response_model_exclude_none=True)
async def list_jobs(
    svc: ServicesDep,
    key: ApiKeyDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: Annotated[
        str | None, Query(description="pending, processing, completed, failed, warning or skipped")
    ] = None,
) -> JobPage:
    wanted = _status_filter(status)
    rows, total = await db.list_jobs(svc.pool, key.id, wanted, limit, offset)
    return JobPage(jobs=[JobSummary.of(row) for row in rows], total=total, limit=limit, offset=offset)


def _status_filter(status: str | None) -> JobStatus | None:
    if not status:
        return None
    found = status_named(status)
    if found is None:
        names = ", ".join(known.lower() for known in JobStatus)
        raise ApiError(400, f"Invalid value for 'status': {status!r} is not one of {names}")
    return found


@router.delete("/jobs/{job_id}", responses=ERROR_RESPONSES)
async def cancel_job(job: OwnedJobDep, svc: ServicesDep) -> JobCancelled:
    row = job.row
    await lifecycle.cancel(svc, row)
    log.info("job %s cancelled", row["id"])
    return JobCancelled(job_id=str(row["id"]))


@router.post("/jobs/{job_id}/retry", status_code=201, responses=ERROR_RESPONSES)
async def retry_job(job: OwnedJobDep, svc: ServicesDep) -> JobRetried:
    row = job.row
    new_id = await lifecycle.retry(svc, row, job.key)
    log.info("job %s retried as %s", row["id"], new_id)
    return JobRetried(job_id=str(new_id), original_job_id=str(row["id"]))


@router.delete("/jobs/{job_id}/file", responses=ERROR_RESPONSES)
async def delete_job_file(job: OwnedJobDep, svc: ServicesDep) -> FileDeleted:
    row = job.row
    deleted = await lifecycle.delete_file(svc, row)
    return FileDeleted(job_id=str(row["id"]), deleted_key=deleted)


@router.post(
    "/jobs/bulk",
    status_code=201,
    responses=ERROR_RESPONSES,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": BULK_CREATE_SCHEMA}}}},
)
async def create_bulk(request: Request, svc: ServicesDep, key: ApiKeyDep) -> BulkCreated:
    creates = parse_bulk_create(await request.body())
    storage = await check_delivery(svc, creates[0])  # the shared webhook (bulk takes no storage)
    fields = [f"jobs[{i}].url" for i in range(len(creates))]
    batch_id, jobs = await create_batch(svc, key, creates, [None] * len(creates), fields, storage)
    return BulkCreated(batch_id=str(batch_id), total_jobs=len(jobs), job_ids=[str(new.id) for new in jobs])
