"""Binding a job to one worker host, and removing its files there."""

from __future__ import annotations

import threading
import time

from temporalio import activity
from temporalio.exceptions import ApplicationError

from twister.activities.workdir import WorkDirs
from twister.models import StepPolicy, WorkerAssignment


class JobSlots:
    """How many jobs this worker holds at once. A slot is taken when a job is assigned and freed
    when its work directory is removed; one left by a job that never came back expires."""

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

    def free(self, job_id: str) -> None:
        with self._lock:
            self._taken.pop(job_id, None)


class HostActivities:
    def __init__(self, host_task_queue: str, policy: StepPolicy, workdirs: WorkDirs, slots: JobSlots) -> None:
        self._assignment = WorkerAssignment(task_queue=host_task_queue, policy=policy)
        self._workdirs = workdirs
        self._slots = slots

    @activity.defn(name="assign_worker")
    async def assign_worker(self, job_id: str) -> WorkerAssignment:
        """Runs on the shared queue: the worker that takes it runs the job's host-bound steps.
        A full worker declines, and Temporal offers the job again (to any worker) after a backoff."""
        if not self._slots.take(job_id):
            raise ApplicationError("worker is at capacity", type="WorkerBusy")
        return self._assignment

    @activity.defn(name="remove_workdir")
    async def remove_workdir(self, job_id: str) -> None:
        self._workdirs.remove(job_id)
        self._slots.free(job_id)
