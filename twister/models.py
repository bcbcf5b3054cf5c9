"""Typed payloads shared by the gateway, the workflow and the activities.

Only dataclasses and enums live here: the workflow sandbox imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "Pending"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    WARNING = "Warning"
    SKIPPED = "Skipped"


class JobStep(StrEnum):
    QUEUED = "Queued"
    DOWNLOADING = "Downloading"
    MUXING = "Muxing"
    UPLOADING = "Uploading"
    FINISHED = "Finished"
    CANCELLED = "Cancelled"


class ErrorType(StrEnum):
    """Temporal ``ApplicationError.type`` values the activities raise."""

    CONTENT_UNAVAILABLE = "ContentUnavailable"
    DRM_PROTECTED = "DrmProtected"
    SOURCE_FAILED = "SourceFailed"
    FORBIDDEN_ADDRESS = "ForbiddenAddress"
    MUX_FAILED = "MuxFailed"
    STORAGE_FAILED = "StorageFailed"
    WEBHOOK_FAILED = "WebhookFailed"


NON_RETRYABLE_ERRORS = [ErrorType.CONTENT_UNAVAILABLE, ErrorType.DRM_PROTECTED, ErrorType.FORBIDDEN_ADDRESS]

VIDEO_FORMATS = ("mp4", "mkv", "webm", "mov")
AUDIO_FORMATS = ("m4a", "mp3", "ogg", "opus")
RESOLUTIONS = ("best", "2160", "1440", "1080", "720", "480", "360")


@dataclass
class JobOptions:
    """The create parameters that shape the output file."""

    format: str = "mp4"
    audio_only: bool = False
    max_resolution: str = "best"

    @property
    def resolution_cap(self) -> int | None:
        return None if self.max_resolution == "best" else int(self.max_resolution)


@dataclass
class JobInput:
    job_id: str
    api_key_id: int
    url: str
    options: JobOptions
    created_at_ms: int
    webhook_url: str | None = None


@dataclass
class StepPolicy:
    """Retry and timeout settings of the worker that took the job, recorded in the workflow history."""

    download_max_retries: int = 3
    upload_max_retries: int = 3
    retry_initial_interval: float = 2.0
    retry_max_interval: float = 60.0
    heartbeat_timeout: float = 30.0
    host_schedule_to_start_timeout: float = 120.0
    download_timeout: float = 6 * 3600
    webhook_max_attempts: int = 6
    webhook_timeout: float = 30.0


@dataclass
class WorkerAssignment:
    task_queue: str
    policy: StepPolicy


@dataclass
class StepRequest:
    job_id: str
    url: str
    options: JobOptions


@dataclass
class DownloadResult:
    title: str | None
    video_path: str | None
    audio_path: str | None
    native_video_codec: str | None
    native_audio_codec: str | None
    actual_quality: str
    downloaded_bytes: int
    extract_duration_ms: int
    download_duration_ms: int
    speed_mbps: float
    attempt: int


@dataclass
class MuxRequest:
    job_id: str
    options: JobOptions
    download: DownloadResult


@dataclass
class MuxResult:
    path: str
    file_size: int
    duration_ms: int


@dataclass
class UploadRequest:
    job_id: str
    path: str
    key: str


@dataclass
class UploadResult:
    key: str
    file_size: int
    duration_ms: int
    speed_mbps: float
    attempt: int


@dataclass
class JobOutcome:
    """Everything persisted on the job row once the job reaches a terminal status.

    Field names are the column names of ``jobs``.
    """

    status: str
    step: str
    finished_at: int
    error: str | None = None
    error_type: str | None = None
    s3_key: str | None = None
    title: str | None = None
    file_size: int | None = None
    download_speed_mbps: float | None = None
    upload_speed_mbps: float | None = None
    extract_duration_ms: int | None = None
    download_duration_ms: int | None = None
    mux_duration_ms: int | None = None
    upload_duration_ms: int | None = None
    total_duration_ms: int | None = None
    download_retries: int | None = None
    upload_retries: int | None = None
    queue_wait_ms: int | None = None
    requested_quality: str | None = None
    actual_quality: str | None = None
    native_video_codec: str | None = None
    native_audio_codec: str | None = None
    webhook_status: str | None = None


@dataclass
class WebhookRequest:
    job_id: str
    api_key_id: int
    webhook_url: str
    url: str
    outcome: JobOutcome
