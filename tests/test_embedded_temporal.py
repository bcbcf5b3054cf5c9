"""The embedded Temporal keeps its SQLite file in write-ahead-log mode, synced at every commit."""

from __future__ import annotations

import sqlite3

from twister.config import Settings
from twister.embedded.stack import EmbeddedStack


def test_temporal_database_is_a_synced_write_ahead_log(settings: Settings, stack: EmbeddedStack) -> None:
    path = settings.data_dir / "temporal" / "temporal.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    argv = next(proc for proc in stack.processes if proc.name == "temporal").argv
    assert "synchronous=full" in argv  # a connection's own setting: the server's, not the file's
