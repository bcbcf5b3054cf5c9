"""Typed payloads and names shared by the gateway, the workflow and the activities.

Only dataclasses, enums and literals live here: the workflow sandbox imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, get_args


class JobStatus(StrEnum):
    PENDING = "Pending"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    WARNING = "Warning"
    SKIPPED = "Skipped"


def status_named(name: str) -> JobStatus | None:
    """The status a client or operator names, in any case (``failed``), or None for no such status."""
    return next((status for status in JobStatus if status.lower() == name.lower()), None)


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.WARNING, JobStatus.SKIPPED})
RETRYABLE_STATUSES = (JobStatus.FAILED, JobStatus.WARNING)
"""A job that ended so may be retried (``POST /jobs/{id}/retry``) or replayed (``twister jobs replay``)."""


class JobStep(StrEnum):
    QUEUED = "Queued"
    DOWNLOADING = "Downloading"
    MUXING = "Muxing"
    UPLOADING = "Uploading"
    FINISHED = "Finished"
    CANCELLED = "Cancelled"


class ErrorKind(StrEnum):
    """The contract's ``error_type``: a technical failure or a content problem."""

    ERROR = "error"
    WARNING = "warning"


class WebhookStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class ErrorType(StrEnum):
    """Temporal ``ApplicationError.type`` values the activities raise, and ``JOB_FAILED``, the failure
    that ends the workflow of a Failed job."""

    CONTENT_UNAVAILABLE = "ContentUnavailable"
    DRM_PROTECTED = "DrmProtected"
    SOURCE_FAILED = "SourceFailed"
    FORBIDDEN_ADDRESS = "ForbiddenAddress"
    STREAMS_MISSING = "StreamsMissing"
    MUX_FAILED = "MuxFailed"
    STORAGE_FAILED = "StorageFailed"
    WEBHOOK_FAILED = "WebhookFailed"
    JOB_ROW_MISSING = "JobRowMissing"
    OVER_LIMIT = "OverLimit"
    JOB_FAILED = "JobFailed"


NON_RETRYABLE_ERRORS = (
    ErrorType.CONTENT_UNAVAILABLE,
    ErrorType.DRM_PROTECTED,
    ErrorType.FORBIDDEN_ADDRESS,
    ErrorType.STREAMS_MISSING,
    ErrorType.JOB_ROW_MISSING,
    ErrorType.OVER_LIMIT,
)


class ActivityName(StrEnum):
    """Every activity, by the name the workflow schedules it and the worker registers it under."""

    ASSIGN_WORKER = "assign_worker"
    DOWNLOAD = "download"
    MUX = "mux"
    UPLOAD = "upload"
    REMOVE_WORKDIR = "remove_workdir"
    KEEP_WORKDIR = "keep_workdir"
    RECORD_OUTCOME = "record_outcome"
    RECORD_WEBHOOK_STATUS = "record_webhook_status"
    DELIVER_WEBHOOK = "deliver_webhook"
    DELIVER_PROGRESS = "deliver_progress"
    DELIVER_BATCH_WEBHOOK = "deliver_batch_webhook"
    INSPECT_URL = "inspect_url"
    ALERT_SLACK = "alert_slack"


SEARCH_ATTRIBUTE_TYPES = {"JobStatus": "Keyword", "JobStep": "Keyword", "SourceHost": "Keyword", "ApiKeyId": "Int"}
"""The custom search attributes of a job's workflow, by name, with their Temporal type
(``workflows/visibility.py`` sets them; the embedded server and ``twister temporal setup`` register them)."""

COUNTED_STEPS = (ActivityName.DOWNLOAD, ActivityName.UPLOAD)
"""The steps whose attempts a job counts (``download_retries``, ``upload_retries``), across replays too."""

HOST_STEPS = (ActivityName.DOWNLOAD, ActivityName.MUX, ActivityName.UPLOAD)
"""The steps that run on the worker holding the job's files; their heartbeats carry progress."""

VideoFormat = Literal["mp4", "mkv", "webm", "mov"]
AudioFormat = Literal["m4a", "mp3", "ogg", "opus"]
OutputFormat = Literal[VideoFormat, AudioFormat]
Resolution = Literal["best", "2160", "1440", "1080", "720", "480", "360"]
VideoCodec = Literal["copy", "h264", "h265", "vp9", "av1"]
AudioCodec = Literal["copy", "aac", "opus", "mp3"]
AudioBitrate = Literal["64k", "128k", "192k", "256k", "320k"]
QualityPreset = Literal["highest", "high", "medium", "low", "lowest"]
AUDIO_FORMATS: tuple[str, ...] = get_args(AudioFormat)

QUALITY_PRESET_CRF: dict[QualityPreset, int] = {"highest": 18, "high": 20, "medium": 23, "low": 28, "lowest": 33}
"""The CRF (x264 scale, 0-51) each ``quality_preset`` stands for."""


@dataclass
class JobOptions:
    """The create parameters that shape the output file and name it."""

    format: OutputFormat = "mp4"
    audio_only: bool = False
    max_resolution: Resolution = "best"
    video_codec: VideoCodec = "copy"
    audio_codec: AudioCodec = "copy"
    audio_bitrate: AudioBitrate | None = None
    video_quality: int | None = None
    quality_preset: QualityPreset | None = None
    filename: str | None = None
    folder: str | None = None
    clip_start: float | None = None
    clip_end: float | None = None
    download_subtitles: bool = False
    subtitle_langs: list[str] | None = None
    download_thumbnail: bool = False
    live_recording: bool | None = None
    """None: record the source when it is live, download it otherwise."""
    live_from_start: bool = False
    max_duration: int | None = None
    """Seconds after which a live recording stops."""
    wait_for_video: bool = False
    storage_prefix: str | None = None
    """The key prefix of the job's own storage target (its ``folder_prefix``/``base_folder``)."""

    @property
    def subtitle_languages(self) -> list[str]:
        """The languages asked for, in order of preference (the first one found is delivered)."""
        return self.subtitle_langs or ["en"]

    @property
    def clipped(self) -> bool:
        return self.clip_start is not None or self.clip_end is not None

    @property
    def resolution_cap(self) -> int | None:
        return None if self.max_resolution == "best" else int(self.max_resolution)

    @property
    def crf(self) -> int:
        """The quality of a re-encode: the preset's, else ``video_quality``, else 23."""
        if self.quality_preset is not None:
            return QUALITY_PRESET_CRF[self.quality_preset]
        return 23 if self.video_quality is None else self.video_quality

    def object_key(self, job_id: str, suffix: str | None = None) -> str:
        """``folder/filename.format`` (the job id names the file when no filename is given); files that
        go with it (``suffix``: "en.vtt", "jpg") are named ``folder/filename.suffix``."""
        name = f"{self.filename or job_id}.{suffix or self.format}"
        return "/".join(part.strip("/") for part in (self.storage_prefix, self.folder, name) if part)


@dataclass
class StepPolicy:
    """Retry and timeout settings a job runs with, taken from ``Settings`` when it is created and
    recorded in its workflow history (so a replay uses the same ones)."""

    download_max_retries: int
    upload_max_retries: int
    retry_initial_interval: float
    retry_max_interval: float
    heartbeat_timeout: float
    host_schedule_to_start_timeout: float
    download_timeout: float
    webhook_max_attempts: int
    webhook_timeout: float


@dataclass
class JobLimits:
    """How big and how long a job's source may be; beyond either the job ends ``Warning`` with
    nothing uploaded (a live recording stops at the duration limit instead). Also how long a job with
    ``wait_for_video`` waits for its source to appear. Taken from ``Settings`` when the job is created."""

    max_file_size_bytes: int
    max_duration_seconds: int
    max_wait_for_video_seconds: int = 0
    """0 in the input of jobs made before this field existed, which could not ask to wait."""

    def recording_seconds(self, options: JobOptions) -> int:
        """How long a live recording of this job may run: ``max_duration``, at most the duration limit."""
        return min(options.max_duration or self.max_duration_seconds, self.max_duration_seconds)


@dataclass
class KeyLimits:
    """Caps an operator set on one API key (None: only the server's limits apply). Field names are
    the column names of ``api_keys`` and, dashed, the options of ``twister keys create/set``."""

    max_resolution: int | None = None
    max_duration_seconds: int | None = None
    max_filesize_bytes: int | None = None
    storage_limit_gb: float | None = None
    max_concurrent_jobs: int | None = None


@dataclass
class JobInput:
    job_id: str
    api_key_id: int
    url: str
    options: JobOptions
    created_at_ms: int
    policy: StepPolicy
    limits: JobLimits
    webhook_url: str | None = None
    progress_webhook: bool = False
    own_storage: bool = False
    """The file goes to the job's own storage target (kept sealed in its row), not the server's bucket."""
    batch_id: str | None = None


def assignment_queue(shared_queue: str) -> str:
    """The task queue of ``assign_worker``: polled by each worker only while it has a free job slot."""
    return f"{shared_queue}.assign"


@dataclass
class WorkerAssignment:
    task_queue: str


@dataclass
class StepRequest:
    job_id: str
    url: str
    options: JobOptions
    limits: JobLimits


@dataclass
class DownloadResult:
    title: str | None
    video_path: str | None
    audio_path: str | None
    native_video_codec: str | None
    native_audio_codec: str | None
    actual_quality: str
    extract_duration_ms: int
    download_duration_ms: int
    speed_mbps: float
    attempt: int
    clip_cut: bool = False
    """The streams hold only the asked clip (else the mux step cuts it)."""
    subtitle_path: str | None = None
    subtitle_lang: str | None = None
    thumbnail_path: str | None = None
    media_duration: float | None = None
    """Seconds of the downloaded video (else audio) file, as probed: the mux step's progress needs no
    second ffprobe. None from a download that did not tell (the mux step probes then)."""
    video_frame_rate: float | None = None
    """Average frames per second of the downloaded video, as probed: the mux step sizes an MP4's
    index from it."""


@dataclass
class MuxRequest:
    job_id: str
    options: JobOptions
    download: DownloadResult
    key: str = ""
    """The object key the upload step stores the file under: the mux step starts its multipart upload
    (empty in histories from before: no parts are sent while muxing)."""
    own_storage: bool = False


@dataclass
class SentPart:
    """One part of a multipart upload that storage acknowledged."""

    number: int
    etag: str
    offset: int
    length: int


@dataclass
class HandedOverUpload:
    """A multipart upload the mux step started and the upload step finishes: its parts are
    ``head_bytes`` from the start of the file (part 1, always the upload step's: ffmpeg rewrites the
    head when it ends), then ``part_bytes`` each."""

    upload_id: str
    file_size: int
    head_bytes: int
    part_bytes: int
    parts: list[SentPart] = field(default_factory=list)
    sending_ms: int = 0
    """Wall time the mux step had parts in flight."""


@dataclass
class MuxResult:
    path: str
    duration_ms: int
    handed_over: HandedOverUpload | None = None


@dataclass
class SideFile:
    """A file delivered beside the video (subtitles, thumbnail)."""

    path: str
    key: str


@dataclass
class UploadRequest:
    job_id: str
    path: str
    key: str
    side_files: list[SideFile] = field(default_factory=list)
    own_storage: bool = False
    handed_over: HandedOverUpload | None = None


@dataclass
class UploadResult:
    key: str
    file_size: int
    duration_ms: int
    """This step's own time."""
    speed_mbps: float
    """MB/s over the time the file's bytes were in flight: this step's sending and the parts the mux
    step sent while ffmpeg wrote."""
    attempt: int
    side_files: list[SideFile] = field(default_factory=list)


@dataclass
class JobOutcome:
    """The one list of a job's result fields: everything persisted on the job row once the job
    reaches a terminal status. Field names are the column names of ``jobs``; the status document
    and the schema check derive from this class."""

    status: JobStatus
    step: JobStep
    finished_at: int
    error: str | None = None
    error_type: ErrorKind | None = None
    s3_key: str | None = None
    subtitle_key: str | None = None
    thumbnail_key: str | None = None
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
    webhook_status: WebhookStatus | None = None


class ProgressStage(StrEnum):
    """The contract's progress events, each with its fixed percentage (``PROGRESS_PERCENT``)."""

    DOWNLOADING = "downloading"
    DOWNLOAD_COMPLETE = "download_complete"
    MUXING = "muxing"
    MUX_COMPLETE = "mux_complete"
    UPLOADING = "uploading"
    COMPLETED = "completed"


PROGRESS_PERCENT = {
    ProgressStage.DOWNLOADING: 0,
    ProgressStage.DOWNLOAD_COMPLETE: 33,
    ProgressStage.MUXING: 33,
    ProgressStage.MUX_COMPLETE: 66,
    ProgressStage.UPLOADING: 66,
    ProgressStage.COMPLETED: 100,
}


@dataclass
class ProgressWebhookRequest:
    job_id: str
    api_key_id: int
    webhook_url: str
    stage: ProgressStage

    @property
    def percent(self) -> int:
        return PROGRESS_PERCENT[self.stage]


@dataclass
class WebhookRequest:
    job_id: str
    api_key_id: int
    webhook_url: str
    url: str
    outcome: JobOutcome
    folder: str | None = None


@dataclass
class BatchCompletedRequest:
    """The ``batch_completed`` event, sent by the job that ended its batch last."""

    batch_id: str
    api_key_id: int
    webhook_url: str


SlackNotifyLevel = Literal["all", "errors_only", "warnings_only"]


def slack_wants(level: str, status: JobStatus) -> bool:
    """errors_only: Failed jobs; warnings_only: Warning and Skipped jobs; all: both."""
    if status == JobStatus.FAILED:
        return level in ("all", "errors_only")
    return status in (JobStatus.WARNING, JobStatus.SKIPPED) and level in ("all", "warnings_only")


@dataclass
class SlackAlertRequest:
    """A finished job that did not complete, for the key's Slack alerts (if it has them)."""

    job_id: str
    api_key_id: int
    url: str
    outcome: JobOutcome


@dataclass
class PlaylistEntry:
    url: str
    title: str | None = None


@dataclass
class UrlInfo:
    """What the downloader sees at a URL without downloading it: a video's metadata (the contract's
    ``POST /metadata`` fields), or a playlist's title and entries."""

    title: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    extractor: str | None = None
    uploader: str | None = None
    thumbnail: str | None = None
    description: str | None = None
    view_count: int | None = None
    like_count: int | None = None
    upload_date: str | None = None
    filesize_approx: int | None = None
    entries: list[PlaylistEntry] | None = None
    """Set for a playlist: one entry per video it lists."""
