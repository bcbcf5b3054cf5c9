"""twister's own processes (worker, gateway) as managed children of ``twister up`` or a test session."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx

from twister.config import Settings
from twister.embedded.process import ManagedProcess, free_port

WORKER_READY = "worker ready"


def isolated_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a private stack on free ports (tests, benchmarks), reaching loopback sources."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "temporal_address": f"127.0.0.1:{free_port()}",
        "temporal_ui_port": free_port(),
        "database_url": f"postgresql://twister:{secrets.token_urlsafe(16)}@127.0.0.1:{free_port()}/twister",
        "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
        "api_port": free_port(),
        "allowed_networks": "127.0.0.0/8",
    }
    return Settings(**{**values, **overrides})


def twister_process(settings: Settings, name: str, command: str, **env_overrides: str) -> ManagedProcess:
    """``python -m twister <command>`` with ``settings`` passed on as TWISTER_* variables."""
    env = {**os.environ, **settings.as_env(), **env_overrides}
    return ManagedProcess(name, [sys.executable, "-m", "twister", command], data_dir=settings.data_dir, env=env)


def wait_worker_ready(process: ManagedProcess, timeout: float = 60) -> None:
    process.wait_ready(
        lambda: WORKER_READY in process.log_path.read_text(errors="replace"),
        timeout,
        hint="The worker connects to Temporal, Postgres and S3 first: check that they answer.",
    )


def wait_gateway_ready(process: ManagedProcess, api_url: str, timeout: float = 60) -> None:
    def healthy() -> bool:
        return httpx.get(f"{api_url}/health", timeout=1).status_code == 200

    process.wait_ready(healthy, timeout, hint="Is TWISTER_API_PORT free?")
