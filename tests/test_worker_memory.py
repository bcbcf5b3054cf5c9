"""The worker's memory settings, in a process of their own (they are per process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

ALLOCATING_THREADS = """
import ctypes, sys, threading
from twister.worker.memory import limit_malloc_arenas
if sys.argv[1] == "limited":
    limit_malloc_arenas()
barrier = threading.Barrier(9)
def allocate():
    kept = [bytes(64 * 1024) for _ in range(4)]  # served by the thread's malloc arena
    barrier.wait()
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
[t.start() for t in threads]
barrier.wait()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, to stderr
barrier.wait()
"""


def arenas(mode: str, **env: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", ALLOCATING_THREADS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return len(re.findall(r"^Arena \d+:", done.stderr, re.MULTILINE))


def test_worker_threads_share_two_malloc_arenas() -> None:
    assert arenas("unlimited") > 2  # glibc's default: one per thread here
    assert arenas("limited") == 2


def test_an_operators_malloc_arena_max_wins() -> None:
    assert arenas("limited", MALLOC_ARENA_MAX="4") == 4
