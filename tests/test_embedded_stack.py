"""The embedded stack on its own data dir and ports: data survives a restart, stop leaves no process."""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path

import asyncpg

from twister.config import Settings
from twister.embedded.process import free_port
from twister.embedded.stack import EmbeddedStack
from twister.storage import s3_client


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_ui_port=free_port(),
        database_url=f"postgresql://twister@127.0.0.1:{free_port()}/twister",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
    )


def _live_members(groups: set[int]) -> list[str]:
    """Processes (not zombies) of the given process groups, as "pid:name"."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        state, _, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) in groups and state != "Z":
            found.append(f"{entry.name}:{stat.split('(', 1)[1].rsplit(')', 1)[0]}")
    return found


def _uid(pid: int) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
    return int(line.split()[1])


async def _insert(dsn: str, value: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("create table kept (value text)")
        await conn.execute("insert into kept values ($1)", value)
    finally:
        await conn.close()


async def _values(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [row["value"] for row in await conn.fetch("select value from kept")]
    finally:
        await conn.close()


def _groups(stack: EmbeddedStack) -> set[int]:
    # Every child leads its own process group; Postgres backends are members of the postmaster's.
    groups = {proc.pid for proc in stack.processes if proc.pid is not None}
    assert len(groups) == 3
    assert _live_members(groups)
    return groups


def test_data_survives_restart_and_stop_leaves_no_process(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")

    with EmbeddedStack(settings, ui=False) as stack:
        assert sorted(proc.name for proc in stack.processes) == ["postgres", "s3", "temporal"]
        groups = _groups(stack)
        postgres = next(proc for proc in stack.processes if proc.name == "postgres")
        if os.geteuid() == 0:
            assert postgres.pid is not None
            assert _uid(postgres.pid) == pwd.getpwnam(settings.postgres_os_user).pw_uid
        asyncio.run(_insert(settings.database_url, "a row"))
        s3_client(settings).put_object(Bucket=settings.s3_bucket, Key="kept/object.txt", Body=b"an object")
    assert _live_members(groups) == []

    with EmbeddedStack(settings, ui=False) as stack:
        groups = _groups(stack)
        assert asyncio.run(_values(settings.database_url)) == ["a row"]
        body = s3_client(settings).get_object(Bucket=settings.s3_bucket, Key="kept/object.txt")["Body"].read()
        assert body == b"an object"
        stack.stop()
        stack.stop()  # idempotent, and again on leaving the block
    assert _live_members(groups) == []
