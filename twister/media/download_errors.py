"""Turns downloader exceptions into Temporal errors: content problems are final, the rest retried.

Classification goes by exception class and message, never by yt-dlp's ``expected`` flag, and the
messages name "the downloader" rather than the library behind it.
"""

from __future__ import annotations

import re

from temporalio.exceptions import ApplicationError
from yt_dlp.utils import GeoRestrictedError, UnsupportedError

from twister.models import ErrorType
from twister.net.egress import FORBIDDEN_REASON

_DRM = re.compile(r"\bDRM\b|drm.protected", re.IGNORECASE)
_CONTENT = re.compile(
    r"HTTP Error 404|HTTP Error 410|private video|video is private|members[- ]only|join this channel"
    r"|not available in your country|geo.?restrict|video (is )?unavailable|has been removed|no longer available"
    r"|account .*terminated|sign in to confirm your age|age.?restricted|inappropriate for some users"
    r"|unsupported url|no video formats found|requested format is not available",
    re.IGNORECASE,
)
_NOT_STARTED = re.compile(r"live event will begin|premieres in|stream has not started|upcoming live", re.IGNORECASE)
_MAY_APPEAR = re.compile(rf"HTTP Error 404|HTTP Error 410|{_NOT_STARTED.pattern}", re.IGNORECASE)
_PREFIX = re.compile(r"^(ERROR:\s*)?(\[[^\]]+\]\s*([\w.-]+:\s*)?)?")
_CAUSED_BY = re.compile(r"\s*\(caused by .*\)\s*$")


def downloader_message(exc: BaseException) -> str:
    text = _PREFIX.sub("", str(exc)).strip()
    text = re.sub(r"yt-dlp|youtube-dl|yt_dlp", "the downloader", text, flags=re.IGNORECASE)
    text = re.sub(r";?\s*please report this issue.*$", "", text, flags=re.IGNORECASE | re.DOTALL)
    first_line = _CAUSED_BY.sub("", text.splitlines()[0]) if text else ""
    return first_line.rstrip(".") or type(exc).__name__


def classify_download_error(exc: BaseException, attempt: int) -> ApplicationError:
    """The error to raise from the Download activity; ``attempt`` travels along so the workflow
    can count retries even when the step fails for good."""
    original = getattr(exc, "exc_info", None)
    cause = original[1] if original and len(original) > 1 and original[1] is not None else exc
    message = downloader_message(exc)
    if FORBIDDEN_REASON in message:
        return ApplicationError(
            f"The source led the downloader to an address it may not reach: {message}",
            attempt,
            type=ErrorType.FORBIDDEN_ADDRESS,
            non_retryable=True,
        )
    if _DRM.search(message):
        return ApplicationError(
            f"The content is DRM-protected and cannot be downloaded: {message}",
            attempt,
            type=ErrorType.DRM_PROTECTED,
            non_retryable=True,
        )
    if _NOT_STARTED.search(message):
        return ApplicationError(
            f"The stream has not started yet: {message}. Set wait_for_video to wait for it.",
            attempt,
            type=ErrorType.CONTENT_UNAVAILABLE,
            non_retryable=True,
        )
    if isinstance(cause, GeoRestrictedError | UnsupportedError) or _CONTENT.search(message):
        return ApplicationError(
            f"The source is not available to the downloader: {message}. Check that the URL is public and still online.",
            attempt,
            type=ErrorType.CONTENT_UNAVAILABLE,
            non_retryable=True,
        )
    return ApplicationError(
        f"The downloader failed: {message}. The job was retried; if the source is reachable, retry it later.",
        attempt,
        type=ErrorType.SOURCE_FAILED,
    )


def may_appear(exc: BaseException) -> bool:
    """The source is not there yet but may come: a 404/410, or a stream or premiere that has not
    started. What ``wait_for_video`` waits out."""
    return bool(_MAY_APPEAR.search(downloader_message(exc)))
