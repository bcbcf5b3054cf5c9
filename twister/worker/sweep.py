"""The worker's periodic housekeeping: orphaned work dirs, and slots of jobs that ended elsewhere."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from twister.worker.slots import JobSlots
from twister.worker.workdirs import WorkDirs

log = logging.getLogger(__name__)


async def release_closed_jobs(client: Client, slots: JobSlots, workdirs: WorkDirs) -> list[str]:
    """Frees the slot and work dir of every held job whose workflow is no longer running.

    A job normally frees both in its cleanup step; a workflow terminated by an operator (or timed
    out) never runs that step, and without this its slot would stay taken.
    """
    released = []
    for job_id in slots.held():
        try:
            description = await client.get_workflow_handle(job_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                continue  # Temporal unreachable: decide next time
        else:
            if description.status == WorkflowExecutionStatus.RUNNING:
                continue
        await asyncio.to_thread(workdirs.remove, job_id)
        slots.free(job_id)
        released.append(job_id)
    if released:
        log.info("released %d jobs whose workflow ended without cleanup: %s", len(released), ", ".join(released))
    return released


async def sweep_forever(client: Client, slots: JobSlots, workdirs: WorkDirs, interval: float) -> None:
    while True:
        await release_closed_jobs(client, slots, workdirs)
        await asyncio.to_thread(workdirs.sweep)
        await asyncio.sleep(interval)
