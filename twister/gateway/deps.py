"""Request dependencies: the shared clients, the caller's API key and the job a path names."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Header, Request

from twister import db
from twister.backends import Backends
from twister.gateway.errors import ApiError
from twister.gateway.listeners import StreamLimit
from twister.gateway.rate_limit import RateLimiter
from twister.gateway.watch import StatusWatcher
from twister.net.guard import Endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from twister.gateway.metrics import GatewayMetrics


@dataclass
class Services(Backends):
    s3_probe: S3Client
    """Short timeouts, one attempt: for /ready."""
    metrics: GatewayMetrics
    rate_limiter: RateLimiter
    blocked_endpoints: frozenset[Endpoint]
    watcher: StatusWatcher
    event_streams: StreamLimit


async def services(request: Request) -> Services:
    """async: FastAPI would run a plain function in its thread pool, on every request."""
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


async def presented_key(
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """The API key the request carries (``x-api-key``, or ``Authorization: Bearer``); 401 without one."""
    key = x_api_key
    if not key and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key:
        raise ApiError(401, "Missing x-api-key header")
    return key


PresentedKeyDep = Annotated[str, Depends(presented_key)]


def admitted(svc: Services, found: db.ApiKey | None) -> db.ApiKey:
    """``found``, the key looked up for the request, if it may make one more request; else 401
    (unknown or revoked) or 429 (over its rate)."""
    if found is None:
        raise ApiError(401, "Invalid API Key")
    wait = svc.rate_limiter.retry_after(found.id)
    if wait is not None:
        raise ApiError(
            429,
            f"Rate limit of {svc.settings.rate_limit_per_minute} requests per minute exceeded; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    return found


async def current_key(svc: ServicesDep, presented: PresentedKeyDep) -> db.ApiKey:
    return admitted(svc, await db.find_api_key(svc.pool, presented))


ApiKeyDep = Annotated[db.ApiKey, Depends(current_key)]


@dataclass(frozen=True)
class OwnedJob:
    key: db.ApiKey
    row: dict[str, Any]


async def owned_job(job_id: str, svc: ServicesDep, presented: PresentedKeyDep) -> OwnedJob:
    """The caller's key and its job ``job_id`` (path parameter), read in one database round trip;
    404 for a malformed id, an unknown one and another key's job alike."""
    try:
        job_uuid = uuid.UUID(job_id)
    except ValueError:
        admitted(svc, await db.find_api_key(svc.pool, presented))
        raise ApiError(404, "Job not found") from None
    key, row = await db.find_api_key_and_job(svc.pool, presented, job_uuid)
    key = admitted(svc, key)
    if row is None:
        raise ApiError(404, "Job not found")
    return OwnedJob(key, row)


OwnedJobDep = Annotated[OwnedJob, Depends(owned_job)]
