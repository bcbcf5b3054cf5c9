"""A worker's peak memory (its whole process tree: ffmpeg too) and peak work-dir disk use, sampled in a
thread: for the load test and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import psutil


def tree_rss(pid: int) -> tuple[int, int]:
    """Resident memory of a process and its children, bytes: counted once, and summed as each process
    reports it. They differ by the children caught between ``fork`` and ``exec``: such a child still
    runs the parent's program and reports the parent's whole RSS, pages it shares rather than holds
    (3-18 times per 16 jobs, 10-100 ms each, on a worker starting ffmpeg and ffprobe)."""
    once = summed = 0
    try:
        process = psutil.Process(pid)
        program = process.cmdline()
        for member in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                rss = member.memory_info().rss
                summed += rss
                if member is process or member.cmdline() != program:
                    once += rss
    except psutil.NoSuchProcess:
        pass
    return once, summed


def disk_use(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):  # a job's files may go while we count them
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(directory, name)).st_size
    return total


class Sampler:
    def __init__(self, pid: int, root: Path, every: float = 0.1) -> None:
        self.pid, self.root, self.every = pid, root, every
        self.peak_rss = self.peak_rss_summed = self.peak_disk = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            once, summed = tree_rss(self.pid)
            self.peak_rss, self.peak_rss_summed = max(self.peak_rss, once), max(self.peak_rss_summed, summed)
            self.peak_disk = max(self.peak_disk, disk_use(self.root))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
