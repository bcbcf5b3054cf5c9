"""One reader of each running job's state in a gateway process, however many requests ask.

``GET /jobs/{id}`` and the event streams ask the watcher, not Temporal. Per job it runs at most one
read at a time, shares the answer with every caller waiting for it and reuses it for
``refresh_seconds``. Past that, an answer younger than twice the interval is still given at once
while the next read runs, so no caller waits for ``describe()`` while the job is being watched
(a request waiting for Temporal's answer was most of a running job's GET latency under load);
an older one, or none, is waited for. Memory stays bounded: when a job is added, entries nobody asked about since
their answer went stale are dropped, and beyond ``max_jobs`` the least recently read go first.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from twister.gateway.status import LiveState

Reader = Callable[[str], Awaitable[LiveState | None]]


@dataclass
class _Watch:
    state: LiveState | None = None
    read_at: float = -math.inf
    reading: asyncio.Task[LiveState | None] | None = None


def _retrieve(task: asyncio.Task[LiveState | None]) -> None:
    """A failed read that no caller waited for (they had a recent answer) is not an unhandled error."""
    if not task.cancelled():
        task.exception()


class StatusWatcher:
    def __init__(self, read: Reader, *, refresh_seconds: float, max_jobs: int) -> None:
        self._read = read
        self._refresh = refresh_seconds
        self._max_jobs = max_jobs
        self._jobs: OrderedDict[str, _Watch] = OrderedDict()  # least recently read first
        self.reads = 0
        """Reads made so far (each one ``describe()``): what the coalescing saves shows here."""

    async def state(self, job_id: str) -> LiveState | None:
        """The job's state (None once it has ended), read at most ``refresh_seconds`` ago, or up to twice
        that while the next read runs. A failed read (Temporal unreachable) raises to every caller that
        waited for it and is not kept."""
        watch = self._jobs.get(job_id)
        if watch is None:
            watch = self._add(job_id)
        elif watch.reading is None and self._fresh(watch):
            return watch.state
        if watch.reading is None:
            watch.reading = asyncio.create_task(self._read_into(job_id, watch))
            watch.reading.add_done_callback(_retrieve)
        if self._recent(watch):
            # stale but recent: answered at once, the read under way is for the callers after this one
            return watch.state
        # shielded: a caller that goes away (a client disconnecting) leaves the read to the others
        return await asyncio.shield(watch.reading)

    async def _read_into(self, job_id: str, watch: _Watch) -> LiveState | None:
        self.reads += 1
        try:
            state = await self._read(job_id)
        finally:
            watch.reading = None
        watch.state, watch.read_at = state, time.monotonic()
        if self._jobs.get(job_id) is watch:
            self._jobs.move_to_end(job_id)
        return state

    def _fresh(self, watch: _Watch) -> bool:
        return time.monotonic() - watch.read_at < self._refresh

    def _recent(self, watch: _Watch) -> bool:
        return time.monotonic() - watch.read_at < 2 * self._refresh

    def _add(self, job_id: str) -> _Watch:
        while self._jobs:
            oldest = next(iter(self._jobs.values()))
            if len(self._jobs) < self._max_jobs and (oldest.reading is not None or self._fresh(oldest)):
                break
            self._jobs.popitem(last=False)
        watch = self._jobs[job_id] = _Watch()
        return watch
