"""Binding a job to one worker host, and removing its files there."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from twister.models import ActivityName, ErrorType, WorkerAssignment
from twister.worker.slots import JobSlots
from twister.worker.workdirs import WorkDirs


class HostActivities:
    def __init__(self, host_task_queue: str, workdirs: WorkDirs, slots: JobSlots) -> None:
        self._assignment = WorkerAssignment(task_queue=host_task_queue)
        self._workdirs = workdirs
        self._slots = slots

    @activity.defn(name=ActivityName.ASSIGN_WORKER)
    async def assign_worker(self, job_id: str) -> WorkerAssignment:
        """Runs on the shared queue: the worker that takes it runs the job's host-bound steps.
        A full worker declines, and Temporal offers the job again (to any worker) after a backoff."""
        if not self._slots.take(job_id):
            # benign: an expected refusal, logged at DEBUG without a traceback
            raise ApplicationError(
                "worker is at capacity", type=ErrorType.WORKER_BUSY, category=ApplicationErrorCategory.BENIGN
            )
        return self._assignment

    @activity.defn(name=ActivityName.REMOVE_WORKDIR)
    async def remove_workdir(self, job_id: str) -> None:
        self._workdirs.remove(job_id)
        self._slots.free(job_id)
