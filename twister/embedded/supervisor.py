"""Child processes that are restarted when they crash, with backoff, until one crashes too often."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from twister.embedded.process import ManagedProcess

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.5


@dataclass(frozen=True)
class RestartPolicy:
    """The ``max_crashes``-th crash of one child within ``window`` seconds stops everything; before that,
    the n-th crash in the window is restarted after ``first_delay * 2**(n-1)`` seconds, at most ``max_delay``."""

    max_crashes: int = 5
    window: float = 300.0
    first_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, crashes: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** (crashes - 1)))


class GaveUp(RuntimeError):
    """A child crashed too often; the message says which one, how, and what to do."""


@dataclass(eq=False)
class _Child:
    proc: ManagedProcess
    launch: Callable[[], ManagedProcess] | None
    wait: Callable[[ManagedProcess], None]
    base: bool
    crashes: deque[float] = field(default_factory=deque)
    restarter: threading.Thread | None = None

    def count_crash(self, window: float) -> int:
        now = time.monotonic()
        self.crashes.append(now)
        while self.crashes[0] < now - window:
            self.crashes.popleft()
        return len(self.crashes)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            pass
    return f"exited with code {code}"


def _stop_quietly(proc: ManagedProcess) -> None:
    try:
        proc.stop()
    except Exception:
        log.exception("stopping %s failed", proc.name)


class Supervisor:
    """Stops its children together; ``supervise`` restarts those handed over with ``keep`` when they crash.

    Base children (the services the others use) stop last, concurrently; the others stop before them,
    last added first.
    """

    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self._children: list[_Child] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._failure: str | None = None

    @property
    def processes(self) -> tuple[ManagedProcess, ...]:
        with self._lock:
            return tuple(child.proc for child in self._children)

    def add(self, proc: ManagedProcess) -> ManagedProcess:
        """Hand over a started child to be stopped with the others; it is never restarted."""
        with self._lock:
            self._children.append(_Child(proc, None, lambda _: None, base=False))
        return proc

    def keep(
        self, launch: Callable[[], ManagedProcess], wait: Callable[[ManagedProcess], None], *, base: bool = False
    ) -> ManagedProcess:
        """Start a child with ``launch`` (the caller waits for it); after a crash ``supervise`` launches
        it again and waits with ``wait``."""
        proc = launch()
        with self._lock:
            self._children.append(_Child(proc, launch, wait, base))
        return proc

    def supervise(self, stop: threading.Event) -> None:
        """Restart crashed children until ``stop`` is set; raise ``GaveUp`` when one crashes too often."""
        while not stop.wait(WATCH_INTERVAL):
            if self._failure is not None:
                raise GaveUp(self._failure)
            with self._lock:
                crashed = [
                    child
                    for child in self._children
                    if child.launch is not None and child.restarter is None and not child.proc.running()
                ]
            for child in crashed:
                child.restarter = threading.Thread(
                    target=self._restart, args=(child,), name=f"restart-{child.proc.name}", daemon=True
                )
                child.restarter.start()

    def _restart(self, child: _Child) -> None:
        name = child.proc.name
        reason = _exit_reason(child.proc.returncode)
        while True:
            log_path, tail = child.proc.log_path, child.proc.log_tail()
            _stop_quietly(child.proc)  # what is left of its process group, its pid file, its sockets
            crashes = child.count_crash(self.policy.window)
            if crashes >= self.policy.max_crashes:
                self._failure = (
                    f"{name} {reason}: crash {crashes} within {self.policy.window:g} s, so twister stops "
                    f"everything.\nLast lines of {log_path}:\n{tail}\n"
                    f"Find the cause in that log (a full disk, its port taken by another program, damaged data "
                    f"under {child.proc.data_dir}?), fix it, then start twister again."
                )
                return
            delay = self.policy.delay(crashes)
            log.warning(
                "%s %s (crash %d within %g s; at %d twister gives up); restarting it in %g s. Last lines of %s:\n%s",
                name,
                reason,
                crashes,
                self.policy.window,
                self.policy.max_crashes,
                delay,
                log_path,
                tail,
            )
            if self._closed.wait(delay):
                return
            try:
                self._relaunch(child)
            except Exception as exc:
                if self._closed.is_set():
                    return
                reason = "did not come back: " + str(exc).splitlines()[0]
                continue
            log.info("%s is back (pid %s)", name, child.proc.pid)
            child.restarter = None
            return

    def _relaunch(self, child: _Child) -> None:
        assert child.launch is not None
        proc = child.launch()
        with self._lock:
            child.proc = proc
            closed = self._closed.is_set()
        if closed:
            _stop_quietly(proc)
            raise RuntimeError("stopping")
        child.wait(proc)

    def stop(self) -> None:
        """Stop every child and end the restarts in progress. Idempotent."""
        with self._lock:
            self._closed.set()
            children, self._children = self._children, []
        began = time.monotonic()
        for child in reversed([child for child in children if not child.base]):
            _stop_quietly(child.proc)
        threads = [threading.Thread(target=_stop_quietly, args=(child.proc,)) for child in children if child.base]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for restarter in [child.restarter for child in children]:
            if restarter is not None:
                restarter.join()
        if children:
            log.info("stopped %d children in %.1f s", len(children), time.monotonic() - began)
