"""Request dependencies: the shared clients and the caller's API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

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
