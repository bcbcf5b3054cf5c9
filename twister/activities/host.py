"""Binding a job to one worker host, and releasing it there (removing or keeping its files)."""

from __future__ import annotations

import asyncio

from temporalio import activity

from twister.activities.multipart import OpenUploads
from twister.models import ActivityName, WorkerAssignment
from twister.worker.slots import JobSlots
from twister.worker.workdirs import WorkDirs


class HostActivities:
    def __init__(self, host_task_queue: str, workdirs: WorkDirs, slots: JobSlots, uploads: OpenUploads) -> None:
        self._assignment = WorkerAssignment(task_queue=host_task_queue)
        self._workdirs = workdirs
        self._slots = slots
        self._uploads = uploads

    @activity.defn(name=ActivityName.ASSIGN_WORKER)
    async def assign_worker(self, job_id: str) -> WorkerAssignment:
        """Runs on the assignment queue, which this worker polls only with a free job slot: the job
        takes that slot, and this worker runs its host-bound steps."""
        self._slots.bind(job_id)
        return self._assignment

    @activity.defn(name=ActivityName.REMOVE_WORKDIR)
    async def remove_workdir(self, job_id: str) -> None:
        """Also aborts a multipart upload the job's mux step started and no upload step finished (the
        job was cancelled or failed between its steps)."""
        await asyncio.to_thread(self._uploads.abort_all, job_id)
        self._workdirs.remove(job_id)
        self._slots.free(job_id)

    @activity.defn(name=ActivityName.KEEP_WORKDIR)
    async def keep_workdir(self, job_id: str) -> None:
        """A failed job frees its slot but leaves its files for a while, for a replay to resume from
        (not its unfinished multipart upload: a replay's upload step sends the whole file then)."""
        await asyncio.to_thread(self._uploads.abort_all, job_id)
        self._workdirs.keep(job_id)
        self._slots.free(job_id)
