"""The three embedded services together, started concurrently and restarted when they crash."""

from __future__ import annotations

import logging
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from types import TracebackType
from typing import Self

from twister.config import Settings
from twister.embedded.postgres import launch_postgres, wait_postgres
from twister.embedded.process import ManagedProcess
from twister.embedded.s3 import launch_s3, wait_s3
from twister.embedded.supervisor import RestartPolicy, Supervisor
from twister.embedded.temporal import launch_temporal, wait_temporal

log = logging.getLogger(__name__)

Waiter = Callable[[Settings, ManagedProcess, float], None]
Wait = Callable[[ManagedProcess], None]


class EmbeddedStack(Supervisor):
    """Temporal, Postgres and S3 as child processes, for ``twister up`` and test sessions.

    ``with EmbeddedStack(settings) as stack:`` returns once all three answer (and the role, database and
    bucket exist). More children (worker, gateway) can be handed over with ``keep`` or ``add``; they are
    stopped first. ``supervise`` restarts any of the three that crashes.
    """

    def __init__(self, settings: Settings, *, ui: bool = True, policy: RestartPolicy | None = None) -> None:
        super().__init__(policy)
        self.settings = settings
        self.ui = ui
        self.timings: dict[str, float] = {}

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self.processes:
            raise RuntimeError("this EmbeddedStack is already started")
        settings = self.settings
        started = time.monotonic()
        _close_data_dir(settings)
        services: dict[str, tuple[Callable[[], ManagedProcess], Waiter]] = {
            "temporal": (lambda: launch_temporal(settings, ui=self.ui), wait_temporal),
            "s3": (lambda: launch_s3(settings), wait_s3),
            "postgres": (lambda: launch_postgres(settings), wait_postgres),
        }
        try:
            # Spawning happens here, in the caller's thread, so that an interrupt can never leave an
            # unregistered child behind; the (slow) waiting runs concurrently in threads.
            waits: dict[str, tuple[Wait, ManagedProcess]] = {}
            for name, (launch, waiter) in services.items():
                wait = self._waiting(waiter)
                waits[name] = (wait, self.keep(launch, wait, base=True))
            self._wait_all(waits, started)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - started
        log.info(
            "embedded stack ready in %.1f s (%s)",
            self.timings["total"],
            ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings.items() if name != "total"),
        )

    def _waiting(self, waiter: Waiter) -> Wait:
        return lambda proc: waiter(self.settings, proc, self.settings.embedded_start_timeout)

    def _wait_all(self, waits: dict[str, tuple[Wait, ManagedProcess]], started: float) -> None:
        def timed(name: str, wait: Wait, proc: ManagedProcess) -> None:
            wait(proc)
            self.timings[name] = time.monotonic() - started

        pool = ThreadPoolExecutor(max_workers=len(waits), thread_name_prefix="twister-embedded")
        try:
            futures = [pool.submit(timed, name, wait, proc) for name, (wait, proc) in waits.items()]
            for future in as_completed(futures):
                future.result()
        except BaseException:
            # Stop the children before joining the threads: their waits then end at once.
            self.stop()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _close_data_dir(settings: Settings) -> None:
    """No one else may list or change the data dir; traverse (x) stays where granted, as Postgres' OS
    user needs it when we are root (the directories inside are made with ``private_dir``)."""
    data = settings.data_dir
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    data.chmod(stat.S_IMODE(data.stat().st_mode) & ~0o066)
