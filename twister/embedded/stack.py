"""The three embedded services together, started concurrently; children added later are stopped first."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from types import TracebackType
from typing import Self

from twister.config import Settings
from twister.embedded.postgres import launch_postgres, wait_postgres
from twister.embedded.process import ManagedProcess
from twister.embedded.s3 import launch_s3, wait_s3
from twister.embedded.temporal import launch_temporal, wait_temporal

log = logging.getLogger(__name__)

Waiter = Callable[[Settings, ManagedProcess, float], None]


class EmbeddedStack:
    """Temporal, Postgres and S3 as child processes, for ``twister up`` and test sessions.

    ``with EmbeddedStack(settings) as stack:`` returns once all three answer (and the role, database and
    bucket exist). More children (worker, gateway) can be handed over with ``add``; they are stopped first.
    """

    def __init__(self, settings: Settings, *, ui: bool = True) -> None:
        self.settings = settings
        self.ui = ui
        self.timings: dict[str, float] = {}
        self._processes: list[ManagedProcess] = []
        self._services: set[ManagedProcess] = set()
        self._lock = threading.Lock()

    @property
    def processes(self) -> tuple[ManagedProcess, ...]:
        with self._lock:
            return tuple(self._processes)

    def add(self, proc: ManagedProcess) -> ManagedProcess:
        """Hand over a child to be stopped with the stack (before the services, last added first)."""
        with self._lock:
            self._processes.append(proc)
        return proc

    def _add_service(self, proc: ManagedProcess) -> ManagedProcess:
        with self._lock:
            self._processes.append(proc)
            self._services.add(proc)
        return proc

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
        try:
            # Spawning happens here, in the caller's thread, so that an interrupt can never leave an
            # unregistered child behind; the (slow) waiting runs concurrently in threads.
            waits: dict[str, tuple[Waiter, ManagedProcess]] = {}
            temporal = launch_temporal(settings, ui=self.ui)
            waits["temporal"] = (wait_temporal, self._add_service(temporal))
            waits["s3"] = (wait_s3, self._add_service(launch_s3(settings)))
            waits["postgres"] = (wait_postgres, self._add_service(launch_postgres(settings)))
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

    def _wait_all(self, waits: dict[str, tuple[Waiter, ManagedProcess]], started: float) -> None:
        timeout = self.settings.embedded_start_timeout

        def wait(name: str, waiter: Waiter, proc: ManagedProcess) -> None:
            waiter(self.settings, proc, timeout)
            self.timings[name] = time.monotonic() - started

        pool = ThreadPoolExecutor(max_workers=len(waits), thread_name_prefix="twister-embedded")
        try:
            futures = [pool.submit(wait, name, waiter, proc) for name, (waiter, proc) in waits.items()]
            for future in as_completed(futures):
                future.result()
        except BaseException:
            # Stop the children before joining the threads: their waits then end at once.
            self.stop()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        """Stop every child: added ones last first, then the three services together (they do not depend
        on each other, and each takes 1-2 s). Idempotent; fine after a start that failed halfway."""
        with self._lock:
            processes, self._processes = self._processes, []
            services, self._services = self._services, set()
        began = time.monotonic()
        for proc in reversed([proc for proc in processes if proc not in services]):
            _stop_quietly(proc)
        threads = [threading.Thread(target=_stop_quietly, args=(proc,)) for proc in processes if proc in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if processes:
            log.info("embedded stack stopped in %.1f s", time.monotonic() - began)


def _stop_quietly(proc: ManagedProcess) -> None:
    try:
        proc.stop()
    except Exception:
        log.exception("stopping %s failed", proc.name)
