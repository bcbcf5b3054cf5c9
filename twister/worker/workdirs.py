"""Per-job scratch directories on a worker host.

A worker process holds an exclusive ``flock`` on the ``.lock`` file of every job directory it
works in, from Download until the job's cleanup. The OS drops the lock when the process dies
(even with kill -9), so a sweep can tell an orphaned directory from one in use and remove it.

A job failed by a technical error leaves its directory unlocked but marked ``.kept``: a replay of
the job resumes from its files (``hold``). The sweep removes it after ``keep_for`` seconds, and the
oldest kept directories first whenever all kept ones take more than ``keep_bytes``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
from pathlib import Path

from temporalio.exceptions import ApplicationError

from twister.models import ErrorType

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
KEPT_NAME = ".kept"


class WorkDirs:
    def __init__(self, root: Path, *, keep_for: float = 0.0, keep_bytes: int = 0) -> None:
        self.root = root
        self._keep_for = keep_for
        self._keep_bytes = keep_bytes
        self._locks: dict[str, int] = {}
        self._mutex = threading.Lock()

    def path(self, job_id: str) -> Path:
        return self.root / job_id

    def fresh(self, job_id: str) -> Path:
        """An empty directory for the job, locked by this process (a previous attempt's files go)."""
        self.remove(job_id)
        path = self.path(job_id)
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        with self._mutex:
            self._locks[job_id] = fd
        return path

    def hold(self, job_id: str) -> Path:
        """The job's directory, locked by this process if it was not: a replayed job resuming in the
        files its failed run kept, which are then no longer kept. A directory that is gone stays gone
        (the step finds its files missing)."""
        path = self.path(job_id)
        with self._mutex:
            if job_id in self._locks:
                return path
        try:
            fd = os.open(path / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        except FileNotFoundError:
            return path
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another worker process on this disk works in it
            os.close(fd)
            return path
        with self._mutex:
            self._locks[job_id] = fd
        (path / KEPT_NAME).unlink(missing_ok=True)
        return path

    def keep(self, job_id: str) -> None:
        """Leaves a failed job's files for ``keep_for`` seconds (or removes them when nothing is kept)."""
        if self._keep_for <= 0:
            self.remove(job_id)
            return
        path = self.path(job_id)
        if path.is_dir():
            (path / KEPT_NAME).touch()  # before the unlock: the sweep never sees it unmarked and unlocked
        with self._mutex:
            fd = self._locks.pop(job_id, None)
        if fd is not None:
            os.close(fd)
        self._evict_kept()

    def remove(self, job_id: str) -> None:
        with self._mutex:
            fd = self._locks.pop(job_id, None)
        shutil.rmtree(self.path(job_id), ignore_errors=True)
        if fd is not None:
            os.close(fd)

    def sweep(self) -> list[str]:
        """Removes job directories that no live process holds, but for kept ones younger than
        ``keep_for``, then kept ones over ``keep_bytes``; returns their job ids."""
        removed = []
        for entry in self._unheld():
            kept_since = self._kept_since(entry)
            if kept_since is None or time.time() - kept_since >= self._keep_for:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        removed += self._evict_kept()
        if removed:
            log.info("removed %d orphaned or expired work directories", len(removed))
        return removed

    def _unheld(self) -> list[Path]:
        """Job directories no live process holds."""
        if not self.root.is_dir():
            return []
        with self._mutex:
            held = set(self._locks)
        return [
            entry for entry in self.root.iterdir() if entry.name not in held and entry.is_dir() and self._unowned(entry)
        ]

    def _evict_kept(self) -> list[str]:
        """Removes the oldest kept directories while all kept ones take more than ``keep_bytes``."""
        kept = sorted((since, entry) for entry in self._unheld() if (since := self._kept_since(entry)) is not None)
        sizes = {entry: _size(entry) for _, entry in kept}
        total = sum(sizes.values())
        evicted = []
        for _, entry in kept:
            if total <= self._keep_bytes:
                break
            shutil.rmtree(entry, ignore_errors=True)
            total -= sizes[entry]
            evicted.append(entry.name)
        return evicted

    @staticmethod
    def _kept_since(path: Path) -> float | None:
        try:
            return (path / KEPT_NAME).stat().st_mtime
        except FileNotFoundError:
            return None

    @staticmethod
    def _unowned(path: Path) -> bool:
        try:
            fd = os.open(path / LOCK_NAME, os.O_RDWR)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True


def _size(path: Path) -> int:
    total = 0
    for file in path.rglob("*"):
        with contextlib.suppress(OSError):  # a file removed meanwhile
            total += file.stat().st_size if file.is_file() else 0
    return total


def files_gone(what: str) -> ApplicationError:
    """The files a step works on are gone from this worker (cleaned up, disk replaced): the workflow
    downloads the source again on this host rather than retrying a step that cannot succeed."""
    return ApplicationError(
        f"The {what} are gone from the worker; the job downloads the source again.",
        type=ErrorType.STREAMS_MISSING,
        non_retryable=True,
    )
