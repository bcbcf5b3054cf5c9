"""Requests per minute per API key, as a token bucket in this gateway process.

Each key may burst up to its per-minute allowance, which refills evenly over the minute. Several
gateway processes each allow that much: size the setting for one process.
"""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self._capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    def retry_after(self, key_id: int) -> int | None:
        """Takes one request from the key's allowance: None when allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key_id, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - at) * self._per_second)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return None
            self._buckets[key_id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self._per_second))
