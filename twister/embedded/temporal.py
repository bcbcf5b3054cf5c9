"""Temporal dev server (``temporal server start-dev``) with a SQLite file under the data dir."""

from __future__ import annotations

import subprocess

from twister.config import Settings
from twister.embedded.process import (
    ManagedProcess,
    ensure_port_free,
    find_binary,
    free_port,
    private_dir,
    stop_leftover,
    tcp_connects,
)
from twister.models import SEARCH_ATTRIBUTE_TYPES


def launch_temporal(settings: Settings, *, ui: bool) -> ManagedProcess:
    """Spawn the server without waiting for it (see ``wait_temporal``)."""
    db_dir = settings.data_dir / "temporal"
    argv = [
        find_binary("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(db_dir / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.temporal_port),
        # Both default to random free ports already; explicit ones show up in `ps` and the log.
        "--http-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
        # Write-ahead log, still synced at every commit (as durable as SQLite's default rollback
        # journal, which syncs the journal and the database each time) for ~25 % less CPU per job.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=full",
        "--log-level",
        "warn",
        "--color",
        "never",
    ]
    for name, type_name in SEARCH_ATTRIBUTE_TYPES.items():  # registered on every start (kept if there)
        argv += ["--search-attribute", f"{name}={type_name}"]
    argv += ["--ui-port", str(settings.temporal_ui_port)] if ui else ["--headless"]
    if settings.temporal_namespace != "default":
        argv += ["--namespace", settings.temporal_namespace]
    stop_leftover("temporal", settings.data_dir)
    ensure_port_free(settings.temporal_port, "Temporal", "TWISTER_TEMPORAL_ADDRESS")
    if ui:
        ensure_port_free(settings.temporal_ui_port, "Temporal UI", "TWISTER_TEMPORAL_UI_PORT")
    private_dir(db_dir)
    return ManagedProcess("temporal", argv, data_dir=settings.data_dir).start()


def wait_temporal(settings: Settings, proc: ManagedProcess, timeout: float) -> None:
    # The CLI rather than temporalio's client: a supervisor that never loads the SDK's Rust bridge
    # cannot hit its crash at interpreter exit (temporalio/sdk-python#300).
    describe = [
        find_binary("temporal"),
        "operator",
        "namespace",
        "describe",
        "--namespace",
        settings.temporal_namespace,
        "--address",
        f"127.0.0.1:{settings.temporal_port}",
        "--command-timeout",
        "3s",
        "--disable-config-file",
        "--disable-config-env",
        "--output",
        "json",
    ]

    def ready() -> bool:
        if not tcp_connects(settings.temporal_port):
            return False
        result = subprocess.run(describe, capture_output=True, text=True, timeout=10, check=False)
        if result.returncode != 0:
            raise RuntimeError((result.stderr or result.stdout).strip()[-500:])
        return True

    proc.wait_ready(
        ready,
        timeout,
        hint=f"Temporal should answer gRPC on 127.0.0.1:{settings.temporal_port} "
        f"(TWISTER_TEMPORAL_ADDRESS); its database is {settings.data_dir / 'temporal' / 'temporal.db'}.",
    )
