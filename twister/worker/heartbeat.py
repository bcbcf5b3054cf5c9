"""Steady heartbeats for the host-bound steps, whatever the step is busy with.

yt-dlp's extraction and an ffmpeg re-encode of unknown duration report nothing for long stretches;
a heartbeat only from progress callbacks would let a healthy step die at ``heartbeat_timeout``.
Callbacks therefore only record the latest progress here, and a background sender passes it on at a
pace derived from the timeout, so a burst of callbacks costs no extra round trips either.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from types import TracebackType
from typing import Any, Self

from temporalio import activity

log = logging.getLogger(__name__)

_MIN_INTERVAL = 0.5
_MAX_INTERVAL = 2.0


def heartbeat_interval() -> float:
    """A quarter of the step's heartbeat timeout, between 0.5 and 2 seconds."""
    timeout = activity.info().heartbeat_timeout
    if timeout is None:
        return _MAX_INTERVAL
    return min(max(timeout.total_seconds() / 4, _MIN_INTERVAL), _MAX_INTERVAL)


class Heartbeat:
    """``with Heartbeat(...)`` in a threaded activity, ``async with`` in an async one."""

    def __init__(self, **details: Any) -> None:
        self._details = details
        self._interval = heartbeat_interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    def update(self, **details: Any) -> None:
        self._details = {**self._details, **details}

    @property
    def details(self) -> dict[str, Any]:
        return self._details

    def _send(self) -> None:
        try:
            activity.heartbeat(self._details)
        except RuntimeError as exc:  # the step has just ended: nothing left to report
            log.debug("heartbeat not sent: %s", exc)

    # threaded activities: a thread with a copy of the activity's context
    def __enter__(self) -> Self:
        context = contextvars.copy_context()
        self._send()

        def beat() -> None:
            while not self._stop.wait(self._interval):
                context.run(self._send)

        self._thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    # async activities: a task on the activity's event loop
    async def __aenter__(self) -> Self:
        self._send()

        async def beat() -> None:
            while True:
                await asyncio.sleep(self._interval)
                self._send()

        self._task = asyncio.create_task(beat())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
