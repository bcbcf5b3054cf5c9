"""A child process of the embedded stack: its own process group, a log file, a pid file, a clean stop."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
CHILD_UMASK = 0o077  # what the children write (databases, logs, work files) is for this user only


_handed_out: set[int] = set()
_FREE_PORT_RANGE = (20000, 32767)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and was not handed out before by this process.

    Drawn below the kernel's ephemeral range (32768+), where the OS picks source ports of
    outgoing connections: a port from there can be taken by any client before our server binds it.
    """
    while True:
        port = random.randint(*_FREE_PORT_RANGE)
        if port not in _handed_out and port_is_free(port):
            _handed_out.add(port)
            return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: connections of a stopped server in TIME_WAIT must not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tcp_connects(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(port: int, service: str, setting: str) -> None:
    """Fail fast: a busy port would otherwise make the readiness check talk to someone else's server."""
    if not port_is_free(port):
        raise RuntimeError(
            f"{service} cannot start: port {port} on 127.0.0.1 is already in use "
            f"(another twister stack, or a leftover process?). Stop it or choose another port with {setting}."
        )


def private_dir(path: Path) -> Path:
    """``path`` created if missing, and made accessible to its owner only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def find_binary(name: str) -> str:
    """A binary installed by a PyPI package into this interpreter's scripts dir (the venv's bin)."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"`{name}` not found next to {sys.executable} nor on PATH: pip install 'twister[embedded]'")
    return found


def _start_ticks(pid: int) -> int | None:
    """Process start time from /proc, to tell a live process from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int, ticks: int | None) -> bool:
    current = _start_ticks(pid)
    return current is not None and (ticks is None or current == ticks)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: a leftover's new parent (init or
    a subreaper) may be slow to reap them, and they hold no ports or files any more."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = list(os.scandir("/proc"))
    except OSError:  # no procfs: trust kill(0)
        return True
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            state, _, group = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[:3]
            # A zombie leader whose other threads are still listed is still exiting, sockets open.
            if int(group) == pgid and (state != "Z" or len(os.listdir(Path(entry.path, "task"))) > 1):
                return True
        except (OSError, ValueError):
            continue
    return False


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_leftover(
    name: str, data_dir: Path, stop_signal: signal.Signals = signal.SIGTERM, stop_timeout: float = 10.0
) -> None:
    """Stop the child ``name`` left running by a parent that was killed; refuse if its parent still lives.

    Call it before checking ports or state files the leftover would still hold.
    """
    pid_path = data_dir / "run" / f"{name}.pid"
    try:
        record = json.loads(pid_path.read_text())
    except (OSError, ValueError):
        return
    pid, parent = int(record["pid"]), int(record["parent"])
    if _alive(pid, record.get("ticks")):
        if _alive(parent, record.get("parent_ticks")):
            raise RuntimeError(
                f"{name} is already running (pid {pid}) for process {parent} on this data dir: "
                f"stop that one first, or use another TWISTER_DATA_DIR."
            )
        log.warning("stopping leftover %s (pid %d) of a previous run that was killed", name, pid)
        _signal_group(pid, stop_signal)
        if not _wait_group_gone(pid, stop_timeout):
            _signal_group(pid, signal.SIGKILL)
            _wait_group_gone(pid, 5.0)
    pid_path.unlink(missing_ok=True)


class ManagedProcess:
    """One long-running child: output to ``<data_dir>/logs/<name>.log``, stopped with its whole group.

    A pid file in ``<data_dir>/run`` lets the next start stop a child that outlived a killed parent
    (children live in their own process group, so they survive the parent's death).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        group: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_timeout: float = 10.0,
        after_stop: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.data_dir = data_dir
        self.log_path = data_dir / "logs" / f"{name}.log"
        self.pid_path = data_dir / "run" / f"{name}.pid"
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._user = user
        self._group = group
        self._stop_signal = stop_signal
        self._stop_timeout = stop_timeout
        self._after_stop = list(after_stop)
        self._popen: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._stop_lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> ManagedProcess:
        if self._popen is not None:
            raise RuntimeError(f"{self.name} was already started")
        self.stop_leftover()
        private_dir(self.log_path.parent)
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(log_fd, "ab") as log_file:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self._cwd,
                env=self._env,
                user=self._user,
                group=self._group,
                extra_groups=[] if self._user is not None else None,
                process_group=0,
                umask=CHILD_UMASK,
            )
        self._write_pid_file(self._popen.pid)
        log.debug("started %s (pid %d): %s", self.name, self._popen.pid, " ".join(self.argv))
        return self

    def wait_ready(self, check: Callable[[], bool], timeout: float, *, hint: str = "") -> None:
        """Poll ``check`` (exceptions mean "not yet") until it passes, the process exits or time is up."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            if self._stopping.is_set():
                raise RuntimeError(f"{self.name} was stopped while starting")
            code = self.returncode
            if code is not None:
                raise self._failure(f"{self.name} exited with code {code} while starting", last_error, hint)
            try:
                if check():
                    return
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise self._failure(f"{self.name} was not ready after {timeout:g} s", last_error, hint)
            time.sleep(0.1)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            with open(self.log_path, "rb") as file:
                file.seek(0, os.SEEK_END)
                file.seek(max(0, file.tell() - 64 * 1024))
                text = file.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop signal to the whole group, up to ``stop_timeout`` s of grace, then SIGKILL. Idempotent."""
        self._stopping.set()
        began = time.monotonic()
        with self._stop_lock:
            popen = self._popen
            if popen is not None:
                self._stop_group(popen)
                self.pid_path.unlink(missing_ok=True)
                log.debug("stopped %s in %.1f s", self.name, time.monotonic() - began)
            callbacks, self._after_stop = self._after_stop, []
        for callback in callbacks:
            try:
                callback()
            except OSError as exc:
                log.warning("cleanup after stopping %s failed: %s", self.name, exc)

    def _stop_group(self, popen: subprocess.Popen[bytes]) -> None:
        pgid = popen.pid
        if popen.poll() is None:
            _signal_group(pgid, self._stop_signal)
            try:
                popen.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s, killing it", self.name, self._stop_timeout)
                _signal_group(pgid, signal.SIGKILL)
                popen.wait()
        # Members of the group that outlived the leader (none expected, but never leave any behind).
        if not _wait_group_gone(pgid, 2.0):
            _signal_group(pgid, signal.SIGKILL)
            _wait_group_gone(pgid, 2.0)

    def _failure(self, what: str, last_error: str, hint: str) -> RuntimeError:
        parts = [what + "."]
        if last_error:
            parts.append(f"Last readiness check: {last_error}")
        if hint:
            parts.append(hint)
        parts.append(f"Full log: {self.log_path}")
        tail = self.log_tail()
        parts.append(f"Last lines of the log:\n{tail}" if tail else "The log is empty.")
        return RuntimeError("\n".join(parts))

    def _write_pid_file(self, pid: int) -> None:
        private_dir(self.pid_path.parent)
        record = {
            "pid": pid,
            "ticks": _start_ticks(pid),
            "parent": os.getpid(),
            "parent_ticks": _start_ticks(os.getpid()),
        }
        self.pid_path.write_text(json.dumps(record))

    def stop_leftover(self) -> None:
        stop_leftover(self.name, self.data_dir, self._stop_signal, self._stop_timeout)
