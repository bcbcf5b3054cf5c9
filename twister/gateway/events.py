"""``GET /jobs/{id}/events``: a job's status document as Server-Sent Events, until the job ends.

The first event is what ``GET /jobs/{id}`` answers at that moment. Then, every
``TWISTER_STATUS_REFRESH_SECONDS``, the stream asks the gateway's watcher (all listeners of a job
share its one Temporal read per interval) and sends the document when it changed; a step shorter
than the interval can go unseen. The finished document comes last and the stream closes. While
Temporal or the database is unreachable the stream waits and asks again; FastAPI sends a keep-alive
comment after 15 s without an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends
from fastapi.sse import EventSourceResponse, ServerSentEvent
from temporalio.service import RPCError

from twister.gateway.deps import OwnedJobDep, Services, ServicesDep
from twister.gateway.documents import current_document, final_document
from twister.gateway.errors import DATABASE_ERRORS
from twister.gateway.schemas import ERROR_RESPONSES, ErrorBody

EVENT = "status"
UNAVAILABLE: tuple[type[Exception], ...] = (RPCError, *DATABASE_ERRORS)

router = APIRouter()
T = TypeVar("T")

_ERROR_DESCRIPTIONS = {
    **{status: ERROR_RESPONSES[status]["description"] for status in (401, 404, 422, 503)},
    429: "Rate limited, or the key has TWISTER_MAX_EVENT_STREAMS_PER_KEY streams open already; "
    "retry after the Retry-After header's seconds",
}
# Spelled out as JSON: FastAPI would file a ``model`` under the route's own media type, an event stream.
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"schema": ErrorBody.model_json_schema()}}}
    for status, text in sorted(_ERROR_DESCRIPTIONS.items())
}


@dataclass
class _Opened:
    row: dict[str, Any]
    live: dict[str, Any] | None
    """The live document when the stream opened; None when the job had ended already."""


async def _open(job: OwnedJobDep, svc: ServicesDep) -> AsyncIterator[_Opened]:
    """What may refuse the stream, checked before it starts so that it answers JSON errors as GET
    does: 404, 429 (the key's streams), 503. The key's stream is held until the stream ends."""
    with svc.event_streams.hold(job.key.id):
        yield _Opened(job.row, await current_document(svc, job.row))


@router.get(
    "/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    response_description="Events named `status` whose data is the job's document as `GET /jobs/{id}` returns it: "
    "one when the stream opens, one per change, the finished document last; then the stream closes.",
    responses=_ERRORS,
)
async def job_events(svc: ServicesDep, opened: Annotated[_Opened, Depends(_open)]) -> AsyncIterator[ServerSentEvent]:
    """The job's status as Server-Sent Events until it ends (beyond the hosted service)."""
    pause = svc.settings.status_refresh_seconds
    live = opened.live
    while live is not None:
        yield ServerSentEvent(event=EVENT, data=live)
        live = await _next_change(svc, opened.row, live)
    yield ServerSentEvent(event=EVENT, data=await _available(partial(final_document, svc, opened.row), pause))


async def _next_change(svc: Services, row: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any] | None:
    """The job's next live document unlike ``sent``; None once the job has ended."""
    pause = svc.settings.status_refresh_seconds
    while True:
        await asyncio.sleep(pause)
        live = await _available(partial(current_document, svc, row), pause)
        if live != sent:
            return live


async def _available(read: Callable[[], Awaitable[T]], pause: float) -> T:
    """``read()``, tried again every ``pause`` s while Temporal or the database is unreachable."""
    while True:
        try:
            return await read()
        except UNAVAILABLE:
            await asyncio.sleep(pause)
