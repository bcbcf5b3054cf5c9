"""How many jobs one worker holds at once, and the admission that never takes a job it cannot hold.

Jobs are assigned through a task queue of their own (``models.assignment_queue``). The worker polls
it only while it has a free slot: its slot supplier reserves one before each poll, so a full worker is
simply not offered jobs (no refuse-and-retry). The job's id then holds the slot until its work dir is
removed, or its workflow is found closed.
"""

from __future__ import annotations

import asyncio
import threading

from temporalio.worker import (
    CustomSlotSupplier,
    SlotMarkUsedContext,
    SlotPermit,
    SlotReleaseContext,
    SlotReserveContext,
)


class JobSlots:
    """Created in the worker's event loop; the counting is thread-safe."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._held: set[str] = set()
        self._reserved = 0
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def _room(self) -> bool:
        return len(self._held) + self._reserved < self._capacity

    def try_reserve(self) -> bool:
        with self._lock:
            if not self._room():
                return False
            self._reserved += 1
            return True

    async def reserve(self) -> None:
        """Waits until a slot is free and reserves it for the job about to be polled."""
        while not self.try_reserve():
            self._changed.clear()
            if self.try_reserve():
                return
            await self._changed.wait()

    def _notify(self) -> None:
        self._loop.call_soon_threadsafe(self._changed.set)

    def unreserve(self) -> None:
        """A reservation no job came for (the poll ended empty)."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)
        self._notify()

    def bind(self, job_id: str) -> None:
        """The job polled with a reservation now holds its slot (a repeated assignment holds it once)."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)
            self._held.add(job_id)
        self._notify()

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def free(self, job_id: str) -> None:
        with self._lock:
            self._held.discard(job_id)
        self._notify()


class AssignmentSlotSupplier(CustomSlotSupplier):
    """Activity slots of the assignment worker: one per free job slot."""

    def __init__(self, slots: JobSlots) -> None:
        self._slots = slots

    async def reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit:
        await self._slots.reserve()
        return SlotPermit()

    def try_reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit | None:
        return SlotPermit() if self._slots.try_reserve() else None

    def mark_slot_used(self, ctx: SlotMarkUsedContext) -> None:
        pass  # the assignment activity binds the reservation to its job

    def release_slot(self, ctx: SlotReleaseContext) -> None:
        if ctx.slot_info is None:
            self._slots.unreserve()
