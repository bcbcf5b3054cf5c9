"""Open event streams per API key in this gateway process, within a cap."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from twister.gateway.errors import ApiError

RETRY_AFTER_S = 10


class StreamLimit:
    def __init__(self, per_key: int) -> None:
        self._per_key = per_key
        self._open: Counter[int] = Counter()

    @contextmanager
    def hold(self, key_id: int) -> Iterator[None]:
        """One stream of the key for the ``with`` block; 429 when the key has its cap open already."""
        if self._open[key_id] >= self._per_key:
            raise ApiError(
                429,
                f"This key already has {self._per_key} event streams open; close one or poll GET /jobs/{{id}}",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._open[key_id] += 1
        try:
            yield
        finally:
            self._open[key_id] -= 1
            if not self._open[key_id]:
                del self._open[key_id]
