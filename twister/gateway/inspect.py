"""Looking at a URL through a worker (the gateway never fetches sources itself): playlist detection
for ``POST /jobs`` and the ``POST /metadata`` lookup."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from twister.gateway.deps import Services
from twister.gateway.errors import ApiError
from twister.models import NON_RETRYABLE_ERRORS, UrlInfo
from twister.workflows import InspectUrlWorkflow

MEDIA_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".m4a", ".mov", ".mkv", ".webm", ".mp3", ".ogg", ".opus", ".aac", ".wav", ".flac"}
    | {".m3u8", ".mpd", ".ts", ".flv", ".avi"}
)
"""A URL whose path ends so is a media file or a stream manifest: one video, never a playlist."""

INSPECT_RETRY_AFTER_S = 10


class SourceProblem(Exception):
    """The downloader could not look at the URL; ``content`` tells a content problem (the source's
    fault, final) from a technical one (may pass)."""

    def __init__(self, message: str, content: bool) -> None:
        super().__init__(message)
        self.content = content


def could_be_playlist(url: str) -> bool:
    return PurePosixPath(urlsplit(url).path).suffix.lower() not in MEDIA_SUFFIXES


async def inspect_url(svc: Services, url: str) -> UrlInfo:
    """What a worker's downloader sees at ``url``; 503 when no worker answers in time."""
    settings = svc.settings
    try:
        return await svc.temporal.execute_workflow(
            InspectUrlWorkflow.run,
            url,
            id=f"inspect-{uuid.uuid4()}",
            task_queue=settings.temporal_task_queue,
            execution_timeout=timedelta(seconds=settings.inspect_timeout),
            rpc_timeout=timedelta(seconds=settings.temporal_rpc_timeout),
        )
    except WorkflowFailureError as exc:
        cause = exc.cause.cause if isinstance(exc.cause, ActivityError) else exc.cause
        if isinstance(cause, ApplicationError):
            raise SourceProblem(cause.message, content=cause.type in NON_RETRYABLE_ERRORS) from None
        raise ApiError(
            503,
            "No worker looked at the URL in time; start a worker (twister worker) or try again shortly.",
            headers={"Retry-After": str(INSPECT_RETRY_AFTER_S)},
        ) from None
    except RuntimeError as exc:  # the lazy client's first connection failed (RPC errors answer 503 anyway)
        raise ApiError(503, f"The workflow service (Temporal) is unreachable: {exc}") from None
