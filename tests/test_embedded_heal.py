"""The supervisor of `twister up`: a crashed child comes back after a backoff while its siblings keep
running; one that keeps crashing stops everything, saying which child, how it ended and its last words."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from twister.embedded.process import ManagedProcess
from twister.embedded.supervisor import GaveUp, RestartPolicy, Supervisor

FAST = RestartPolicy(max_crashes=3, window=60, first_delay=0.05, max_delay=0.1)


def shell(data_dir: Path, name: str, script: str) -> Callable[[], ManagedProcess]:
    return lambda: ManagedProcess(name, ["/bin/sh", "-c", script], data_dir=data_dir).start()


def no_wait(_: ManagedProcess) -> None:
    pass


def current(supervisor: Supervisor, name: str) -> ManagedProcess:
    return next(proc for proc in supervisor.processes if proc.name == name)


def test_restarts_a_crashed_child_and_gives_up_on_one_that_keeps_crashing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="twister.embedded.supervisor")
    supervisor = Supervisor(FAST)
    stop = threading.Event()
    marker = tmp_path / "crashed-once"
    with ThreadPoolExecutor(1) as pool:
        try:
            steady = supervisor.keep(shell(tmp_path, "steady", "exec sleep 60"), no_wait)
            flaky = supervisor.keep(
                shell(tmp_path, "flaky", f"[ -e {marker} ] && exec sleep 60; touch {marker}; echo flaky fell; exit 7"),
                no_wait,
            )
            supervising = pool.submit(supervisor.supervise, stop)

            deadline = time.monotonic() + 10
            while "flaky is back" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
            assert "flaky exited with code 7" in caplog.text and "flaky fell" in caplog.text
            assert current(supervisor, "flaky") is not flaky and current(supervisor, "flaky").running()

            supervisor.keep(shell(tmp_path, "doomed", "echo doomed: disk full; exit 3"), no_wait)
            with pytest.raises(GaveUp) as gave_up:
                supervising.result(timeout=10)
            message = str(gave_up.value)
            assert message.startswith("doomed exited with code 3: crash 3 within 60 s, so twister stops everything")
            assert "doomed: disk full" in message and str(tmp_path / "logs" / "doomed.log") in message
            assert steady.running() and current(supervisor, "steady") is steady
            assert current(supervisor, "flaky").running()
        finally:
            stop.set()
            children = supervisor.processes
            supervisor.stop()
    assert len(children) == 3 and not any(proc.running() for proc in children)
