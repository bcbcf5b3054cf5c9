"""The worker's malloc arenas. glibc gives each new thread an arena of its own, up to 8 per core, and
an arena keeps up to twice the largest block freed so far unreturned at its top; yt-dlp reads each
HLS fragment (megabytes) whole. With 16 jobs' threads that was ~50 MB of the worker's ~255 MB (the
bench's 16-job row); with two arenas shared by all threads, what one thread freed serves the others."""

from __future__ import annotations

import ctypes
import os

ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def limit_malloc_arenas() -> None:
    """Before the worker starts its threads. An operator's ``MALLOC_ARENA_MAX`` wins (glibc applied it
    at start-up); a C library without ``mallopt`` (not glibc) is left as it is."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, ARENAS)
