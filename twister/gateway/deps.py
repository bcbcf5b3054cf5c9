"""Request dependencies: the shared clients and the caller's API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import asyncpg
from fastapi import Depends, Header, Request
from temporalio.client import Client

from twister import db
from twister.config import Settings
from twister.crypto import SecretBox
from twister.gateway.errors import ApiError
from twister.gateway.listeners import StreamLimit
from twister.gateway.rate_limit import RateLimiter
from twister.gateway.watch import StatusWatcher
from twister.net.guard import Endpoint
from twister.storage import PresignedUrls

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from twister.gateway.metrics import GatewayMetrics


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    temporal: Client
    s3: S3Client
    s3_probe: S3Client
    """Short timeouts, one attempt: for /ready."""
    metrics: GatewayMetrics
    rate_limiter: RateLimiter
    blocked_endpoints: frozenset[Endpoint]
    box: SecretBox
    watcher: StatusWatcher
    event_streams: StreamLimit
    presigned: PresignedUrls
    """Presigned URLs of the server bucket's objects, reused for a minute."""


async def services(request: Request) -> Services:
    """async: FastAPI would run a plain function in its thread pool, on every request."""
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


async def current_key(
    svc: ServicesDep,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> db.ApiKey:
    key = x_api_key
    if not key and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key:
        raise ApiError(401, "Missing x-api-key header")
    found = await db.find_api_key(svc.pool, key)
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


ApiKeyDep = Annotated[db.ApiKey, Depends(current_key)]
