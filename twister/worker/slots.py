"""How many jobs one worker holds at once."""

from __future__ import annotations

import threading
import time


class JobSlots:
    """A slot is taken when a job is assigned and freed when its work directory is removed; one
    left by a job that never came back expires."""

    def __init__(self, capacity: int, ttl_seconds: float) -> None:
        self._capacity = capacity
        self._ttl = ttl_seconds
        self._taken: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, job_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            self._taken = {job: at for job, at in self._taken.items() if now - at < self._ttl}
            if job_id not in self._taken and len(self._taken) >= self._capacity:
                return False
            self._taken[job_id] = now
            return True

    def held(self) -> list[str]:
        with self._lock:
            return list(self._taken)

    def free(self, job_id: str) -> None:
        with self._lock:
            self._taken.pop(job_id, None)
