"""``/batch`` routes: a playlist's or a bulk submission's jobs, seen and steered together."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twister import db
from twister.batches import batch_document
from twister.gateway.admission import start_accepted
from twister.gateway.deps import ApiKeyDep, Services, ServicesDep
from twister.gateway.errors import ApiError
from twister.gateway.schemas import ERROR_RESPONSES, MAX_BULK_JOBS, JobCreate
from twister.gateway.starts import job_input_from_row
from twister.models import JobStatus

router = APIRouter()


class Rename(BaseModel):
    model_config = ConfigDict(strict=True)

    job_id: str
    filename: str


class Renames(BaseModel):
    renames: list[Rename] = Field(min_length=1, max_length=MAX_BULK_JOBS)


class RenameError(BaseModel):
    job_id: str
    error: str


class RenameResult(BaseModel):
    updated: int
    errors: list[RenameError]


class Episode(BaseModel):
    job_id: str
    url: str
    status: JobStatus
    title: str | None = None
    filename: str | None = None
    error: str | None = None


class BatchDocument(BaseModel):
    """A batch: its jobs' counts, and ``status`` paused, processing, completed or finished (done, some failed)."""

    id: str
    status: Literal["paused", "processing", "completed", "finished"]
    total_episodes: int
    completed_episodes: int
    failed_episodes: int
    episode_jobs: list[Episode]
    created_at: int
    show_url: str | None = Field(default=None, description="The playlist URL (none for a bulk submission)")
    title: str | None = None
    folder: str | None = None
    finished_at: int | None = None


class BatchStarted(BaseModel):
    batch_id: str
    started_jobs: int
    status: str = "processing"


def _parse_batch_id(batch_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(batch_id)
    except ValueError:
        raise ApiError(404, "Batch not found") from None


async def _own_batch(svc: Services, batch_id: str, key: db.ApiKey) -> dict[str, Any]:
    batch = await db.get_batch(svc.pool, _parse_batch_id(batch_id), key.id)
    if batch is None:
        raise ApiError(404, "Batch not found")
    return batch


@router.get("/batch/{batch_id}", response_model=None, responses={200: {"model": BatchDocument}, **ERROR_RESPONSES})
async def get_batch(batch_id: str, svc: ServicesDep, key: ApiKeyDep) -> JSONResponse:
    return JSONResponse(batch_document(await _own_batch(svc, batch_id, key)))


@router.post("/batch/{batch_id}/start", responses=ERROR_RESPONSES)
async def start_batch(batch_id: str, svc: ServicesDep, key: ApiKeyDep) -> BatchStarted:
    batch = await _own_batch(svc, batch_id, key)
    rows = await db.start_batch(svc.pool, batch["id"], key.id)
    if rows is None:
        raise ApiError(400, "Batch is not paused")
    await start_accepted(svc, [job_input_from_row(row, svc.settings) for row in rows])
    return BatchStarted(batch_id=str(batch["id"]), started_jobs=len(rows))


def _filename_error(filename: str) -> str | None:
    """The create rules for ``filename``, as a message (None: a valid name)."""
    try:
        JobCreate.model_validate({"url": "-", "filename": filename})
    except ValidationError as exc:
        return f"Invalid value for 'filename': {exc.errors()[0]['msg']}"
    return None


@router.patch("/batch/{batch_id}/jobs", responses=ERROR_RESPONSES)
async def rename_jobs(batch_id: str, body: Renames, svc: ServicesDep, key: ApiKeyDep) -> RenameResult:
    batch = await _own_batch(svc, batch_id, key)
    if not batch["paused"]:
        raise ApiError(400, "Only a paused batch's jobs can be renamed")
    errors = []
    for rename in body.renames:
        problem = _filename_error(rename.filename)
        if problem is None:
            try:
                job_id = uuid.UUID(rename.job_id)
            except ValueError:
                job_id = None
            if job_id is None or not await db.rename_batch_job(svc.pool, batch["id"], job_id, rename.filename):
                problem = "No unfinished job of this batch has this id"
        if problem is not None:
            errors.append(RenameError(job_id=rename.job_id, error=problem))
    return RenameResult(updated=len(body.renames) - len(errors), errors=errors)
