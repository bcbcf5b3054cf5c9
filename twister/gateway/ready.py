"""``/ready``: 200 when Temporal, Postgres and S3 all answer, else 503 naming those that do not.
The checks run together, each cut off after ``TWISTER_READY_TIMEOUT``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from twister.gateway.deps import Services, ServicesDep
from twister.gateway.errors import error_response
from twister.gateway.schemas import ErrorBody

router = APIRouter()


class Ready(BaseModel):
    status: str = "ready"


async def _temporal(svc: Services) -> None:
    request = DescribeNamespaceRequest(namespace=svc.settings.temporal_namespace)
    timeout = timedelta(seconds=svc.settings.ready_timeout)
    await svc.temporal.workflow_service.describe_namespace(request, retry=False, timeout=timeout)


async def _postgres(svc: Services) -> None:
    await svc.pool.fetchval("SELECT 1")


async def _s3(svc: Services) -> None:
    await asyncio.to_thread(svc.s3_probe.head_bucket, Bucket=svc.settings.s3_bucket)


CHECKS: dict[str, Callable[[Services], Awaitable[None]]] = {"Temporal": _temporal, "Postgres": _postgres, "S3": _s3}


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    detail = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {detail[0][:200]}" if detail else type(exc).__name__


async def unreachable(svc: Services) -> dict[str, str]:
    """The dependencies that do not answer, with why."""
    timeout = svc.settings.ready_timeout
    results = await asyncio.gather(
        *(asyncio.wait_for(check(svc), timeout) for check in CHECKS.values()), return_exceptions=True
    )
    return {
        name: _reason(result, timeout)
        for name, result in zip(CHECKS, results, strict=True)
        if isinstance(result, BaseException)
    }


@router.get(
    "/ready",
    response_model=Ready,
    responses={503: {"model": ErrorBody, "description": "Temporal, Postgres or S3 does not answer (named)"}},
)
async def ready(svc: ServicesDep) -> Ready | JSONResponse:
    down = await unreachable(svc)
    if down:
        reasons = "; ".join(f"{name} unreachable ({why})" for name, why in down.items())
        return error_response(503, f"Not ready: {reasons}")
    return Ready()
