"""What a key may still ask for: its caps (set by the operator per key) on top of the server's limits.

A cap that can be checked when a job is submitted answers the contract's 403; the others become the
job's own size and duration limits, so a job over them ends ``Warning`` with nothing uploaded.
"""

from __future__ import annotations

from dataclasses import replace

from twister import db
from twister.gateway.deps import Services
from twister.gateway.errors import ApiError
from twister.gateway.schemas import JobCreate
from twister.models import JobLimits

GB = 1024**3
UNFINISHED_RETRY_AFTER_S = 10
QUOTA_EXCEEDED = 403


def _gb(size: int) -> float:
    return round(size / GB, 3)


def _smallest(*limits: int | None) -> int:
    return min(limit for limit in limits if limit is not None)


def within_caps(svc: Services, key: db.ApiKey, job: JobCreate) -> JobCreate:
    """The job as the key's caps and the server's limits let it run, or the error that refuses it."""
    job = _within_resolution(key, job)
    _within_duration(svc, key, job)
    return job


def _within_resolution(key: db.ApiKey, job: JobCreate) -> JobCreate:
    """A job that asks for no resolution gets the key's cap; one that asks for more is refused."""
    cap = key.limits.max_resolution
    if cap is None:
        return job
    asked = job.options().resolution_cap
    if asked is None:
        return job.model_copy(update={"max_resolution": str(cap)})
    if asked > cap:
        raise ApiError(
            QUOTA_EXCEEDED,
            "Resolution limit exceeded",
            details={"limit": cap, "requested": asked, "message": f"This key may download up to {cap}p."},
        )
    return job


def _within_duration(svc: Services, key: db.ApiKey, job: JobCreate) -> None:
    """``max_duration`` may not ask a live recording to run past the key's cap (a quota, as resolution
    is: 403) or the server's limit (400)."""
    asked, cap, limit = job.max_duration, key.limits.max_duration_seconds, svc.settings.max_duration_seconds
    if asked is None:
        return
    if cap is not None and asked > cap:
        raise ApiError(
            QUOTA_EXCEEDED,
            "Duration limit exceeded",
            details={"limit": cap, "requested": asked, "message": f"This key may record up to {cap} s (max_duration)."},
        )
    if asked > limit:
        raise ApiError(400, f"Invalid value for 'max_duration': over this server's limit of {limit} s")


def capped_limits(svc: Services, key: db.ApiKey) -> JobLimits:
    """The server's job limits, lowered by the key's caps."""
    caps, server = key.limits, svc.settings.job_limits()
    return replace(
        server,
        max_file_size_bytes=_smallest(server.max_file_size_bytes, caps.max_filesize_bytes),
        max_duration_seconds=_smallest(server.max_duration_seconds, caps.max_duration_seconds),
    )


async def job_limits(svc: Services, key: db.ApiKey) -> JobLimits:
    """The size and duration limits of the key's next job; 403 when its storage quota is used up."""
    caps, limits = key.limits, capped_limits(svc, key)
    if caps.storage_limit_gb is not None:
        quota = int(caps.storage_limit_gb * GB)
        used = await db.stored_bytes(svc.pool, key.id)
        if used >= quota:
            raise ApiError(
                QUOTA_EXCEEDED,
                "Storage quota exceeded",
                details={
                    "limit_gb": caps.storage_limit_gb,
                    "used_gb": _gb(used),
                    "message": "Delete stored files (DELETE /jobs/{id}/file) or ask the operator for more storage.",
                },
            )
        # a file that would pass the quota is not downloaded
        limits.max_file_size_bytes = min(limits.max_file_size_bytes, quota - used)
    return limits


def unfinished_limit(svc: Services, key: db.ApiKey) -> int:
    return _smallest(svc.settings.max_unfinished_jobs_per_key, key.limits.max_concurrent_jobs)


def too_many_unfinished(svc: Services, key: db.ApiKey) -> ApiError:
    """The key's own cap is a quota (403); the server's protection a "try later" (429)."""
    limit = unfinished_limit(svc, key)
    message = f"This key already has {limit} unfinished jobs or would pass that; submit more when some have finished"
    if key.limits.max_concurrent_jobs == limit:
        return ApiError(QUOTA_EXCEEDED, "Concurrent jobs limit exceeded", details={"limit": limit, "message": message})
    return ApiError(429, message, headers={"Retry-After": str(UNFINISHED_RETRY_AFTER_S)})
