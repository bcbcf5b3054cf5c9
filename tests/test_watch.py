"""The gateway's status watcher on its own, with a stand-in for Temporal's ``describe()``: one read
per job at a time and per interval, shared by every caller; failures not kept; memory bounded."""

from __future__ import annotations

import asyncio

import pytest

from twister.gateway.status import LiveState
from twister.gateway.watch import StatusWatcher

DOWNLOADING = LiveState("Processing", "Downloading")


class SlowTemporal:
    """Answers each read after ``delay`` s; ``failing`` makes reads raise instead."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.failing = False
        self.asked: list[str] = []

    async def read(self, job_id: str) -> LiveState | None:
        self.asked.append(job_id)
        await asyncio.sleep(self.delay)
        if self.failing:
            raise ConnectionError("Temporal unreachable")
        return DOWNLOADING


def watcher(temporal: SlowTemporal, refresh: float = 0.2, max_jobs: int = 100) -> StatusWatcher:
    return StatusWatcher(temporal.read, refresh_seconds=refresh, max_jobs=max_jobs)


async def test_concurrent_callers_share_one_read_reused_for_the_interval() -> None:
    temporal = SlowTemporal()
    watch = watcher(temporal)

    first = await asyncio.gather(*(watch.state("job") for _ in range(100)))
    again = await watch.state("job")  # within the interval: the same answer
    await asyncio.sleep(0.2)
    later = await watch.state("job")  # stale but recent: at once, a new read starts
    await asyncio.sleep(0.1)

    assert first == [DOWNLOADING] * 100 and again == later == DOWNLOADING
    assert temporal.asked == ["job", "job"] and watch.reads == 2


async def test_a_recent_answer_is_given_at_once_while_it_is_read_again_an_older_one_is_waited_for() -> None:
    temporal = SlowTemporal(delay=0.15)
    watch = watcher(temporal, refresh=0.2)
    await watch.state("job")
    temporal.failing = True  # the background read fails: nobody waited for it, nothing is raised

    await asyncio.sleep(0.25)  # stale, younger than twice the interval
    began = asyncio.get_running_loop().time()
    assert await watch.state("job") == DOWNLOADING
    assert asyncio.get_running_loop().time() - began < 0.05
    await asyncio.sleep(0.3)  # the failed read is not kept; the answer is now older than 0.4 s

    with pytest.raises(ConnectionError):
        await watch.state("job")  # waited for, and its failure reaches the caller
    assert temporal.asked == ["job", "job", "job"]


async def test_a_failed_read_reaches_every_waiting_caller_and_is_not_kept() -> None:
    temporal = SlowTemporal()
    temporal.failing = True
    watch = watcher(temporal)

    results = await asyncio.gather(*(watch.state("job") for _ in range(5)), return_exceptions=True)
    temporal.failing = False
    recovered = await watch.state("job")  # at once, not after the interval

    assert all(isinstance(result, ConnectionError) for result in results)
    assert recovered == DOWNLOADING and temporal.asked == ["job", "job"]


async def test_a_caller_going_away_leaves_the_read_to_the_others() -> None:
    temporal = SlowTemporal(delay=0.2)
    watch = watcher(temporal)
    leaving = asyncio.create_task(watch.state("job"))
    staying = asyncio.create_task(watch.state("job"))
    await asyncio.sleep(0.05)

    leaving.cancel()

    assert await staying == DOWNLOADING
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert watch.reads == 1


async def test_beyond_the_cap_the_least_recently_read_job_is_dropped() -> None:
    temporal = SlowTemporal(delay=0)
    watch = watcher(temporal, refresh=60, max_jobs=2)

    for job_id in ("a", "b", "c", "b", "c", "a"):
        await watch.state(job_id)

    # "b" and "c" were kept (read once each), "a" was dropped for "c" and read again
    assert temporal.asked == ["a", "b", "c", "a"]
