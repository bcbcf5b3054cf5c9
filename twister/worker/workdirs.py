"""Per-job scratch directories on a worker host.

A worker process holds an exclusive ``flock`` on the ``.lock`` file of every job directory it
works in, from Download until the job's cleanup. The OS drops the lock when the process dies
(even with kill -9), so a sweep can tell an orphaned directory from one in use and remove it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
from pathlib import Path

from temporalio.exceptions import ApplicationError

from twister.models import ErrorType

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


class WorkDirs:
    def __init__(self, root: Path) -> None:
        self.root = root
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

    def remove(self, job_id: str) -> None:
        with self._mutex:
            fd = self._locks.pop(job_id, None)
        shutil.rmtree(self.path(job_id), ignore_errors=True)
        if fd is not None:
            os.close(fd)

    def sweep(self) -> list[str]:
        """Removes job directories that no live process holds; returns their job ids."""
        if not self.root.is_dir():
            return []
        removed = []
        for entry in self.root.iterdir():
            with self._mutex:
                if entry.name in self._locks:
                    continue
            if entry.is_dir() and self._unowned(entry):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        if removed:
            log.info("removed %d orphaned work directories", len(removed))
        return removed

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


def files_gone(what: str) -> ApplicationError:
    """The files a step works on are gone from this worker (cleaned up, disk replaced): the workflow
    downloads the source again on this host rather than retrying a step that cannot succeed."""
    return ApplicationError(
        f"The {what} are gone from the worker; the job downloads the source again.",
        type=ErrorType.STREAMS_MISSING,
        non_retryable=True,
    )
