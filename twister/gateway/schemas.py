"""The body of ``POST /jobs`` and its checks, mapped onto the contract's status codes:
400 for a value the contract does not allow (naming the field), 422 for malformed JSON or a
wrong type."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from typing import Annotated, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from twister.config import Settings
from twister.gateway.errors import ApiError
from twister.gateway.status import STORED_FILES
from twister.media.clips import parse_timestamp
from twister.media.containers import CONTAINERS, normalize_codec
from twister.models import (
    AUDIO_FORMATS,
    AudioBitrate,
    AudioCodec,
    JobInput,
    JobLimits,
    JobOptions,
    JobOutcome,
    JobStatus,
    JobStep,
    OutputFormat,
    QualityPreset,
    Resolution,
    VideoCodec,
)
from twister.storage import S3Target


def has_control_characters(value: str) -> bool:
    """NUL and the other C0 controls, and DEL: never valid in a URL, a name or a header value here."""
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)


class ErrorBody(BaseModel):
    """Every error response: ``{"error": "..."}``."""

    error: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "A value the contract does not allow (the message names the field)",
        401: "Missing or unknown API key",
        404: "No such job for this key",
        413: "Request body too large",
        409: "The x-idempotency-key was used with a different body",
        422: "Malformed JSON or a wrong type",
        429: "Rate limited; retry after the Retry-After header's seconds",
        503: "A dependency (Temporal, database) is unreachable; try again shortly",
    }.items()
}


class S3StorageRequest(BaseModel):
    """An inline ``storage`` target with ``provider: "s3"`` (AWS, R2, MinIO, Spaces, SeaweedFS ...)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    endpoint: str = Field(min_length=1, max_length=2048)
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")
    region: str = Field(default="us-east-1", min_length=1, max_length=64)
    access_key: str = Field(min_length=1, max_length=1024)
    secret_key: str = Field(min_length=1, max_length=1024)
    folder_prefix: str | None = Field(default=None, min_length=1, max_length=200)
    base_folder: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("endpoint", "region", "access_key", "secret_key", "folder_prefix", "base_folder")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        if value is not None and has_control_characters(value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("folder_prefix", "base_folder")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        return _relative_path(value)


STORAGE_ECHOED = ("provider", "endpoint", "bucket", "region", "folder_prefix", "base_folder")
"""What GET shows of a job's storage target: everything but its keys."""

_DERIVED_OPTIONS = ("format", "storage_prefix")
"""JobOptions fields that are not create fields of the same name."""


def _relative_path(value: str | None) -> str | None:
    if value is not None and (".." in value.split("/") or value.startswith(("/", "\\")) or not value.strip()):
        raise ValueError("must be a relative path: no '..', not starting with '/' or '\\', not blank")
    return value


class JobCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"url": "https://example.com/watch/clip", "max_resolution": "720"},
                {
                    "url": "https://example.com/show/episode-1",
                    "format": "mkv",
                    "video_codec": "h265",
                    "quality_preset": "high",
                    "clip_start": "00:01:00",
                    "clip_end": "02:30",
                    "folder": "shows/first",
                    "filename": "episode-1",
                    "download_subtitles": True,
                    "subtitle_langs": ["en", "de"],
                    "webhook_url": "https://hooks.example.com/twister",
                    "enable_progress_webhook": True,
                },
                {
                    "url": "https://example.com/podcast.mp3",
                    "audio_only": True,
                    "format": "mp3",
                    "audio_bitrate": "128k",
                },
            ]
        },
    )

    url: str = Field(min_length=1, max_length=4096)
    format: OutputFormat | None = None
    audio_only: bool = False
    max_resolution: Resolution = "best"
    video_codec: VideoCodec = "copy"
    audio_codec: AudioCodec = "copy"
    audio_bitrate: AudioBitrate | None = None
    video_quality: int | None = Field(default=None, ge=0, le=51)
    quality_preset: QualityPreset | None = None
    filename: str | None = Field(default=None, min_length=1, max_length=255)
    folder: str | None = Field(default=None, min_length=1, max_length=200)
    download_subtitles: bool = False
    subtitle_langs: list[Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]] | None = Field(
        default=None, min_length=1, max_length=10
    )
    download_thumbnail: bool = False
    live_recording: bool | None = Field(default=None, description="Left out: record the source when it is live")
    live_from_start: bool = False
    max_duration: int | None = Field(default=None, ge=1, description="Seconds after which a live recording stops")
    wait_for_video: bool = False
    clip_start: float | None = Field(default=None, description='"HH:MM:SS", "MM:SS" or seconds')
    clip_end: float | None = Field(default=None, description='"HH:MM:SS", "MM:SS" or seconds')
    webhook_url: str | None = Field(default=None, min_length=1, max_length=4096)
    enable_progress_webhook: bool = False
    storage: dict[str, Any] | None = None
    paused: bool = Field(default=False, description="For a playlist URL: create its batch paused")

    @field_validator("url", "webhook_url", "filename", "folder")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        if value is not None and has_control_characters(value):
            raise ValueError("must not contain control characters (percent-encode them)")
        return value

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and (".." in value or "/" in value or "\\" in value or not value.strip()):
            raise ValueError("must be a plain name: no '..', '/' or '\\', not blank")
        return value

    @field_validator("folder")
    @classmethod
    def _relative_folder(cls, value: str | None) -> str | None:
        return _relative_path(value)

    @field_validator("clip_start", "clip_end", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        return value if value is None else parse_timestamp(value)

    @field_validator("max_resolution", mode="before")
    @classmethod
    def _resolution_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def options(self) -> JobOptions:
        default: OutputFormat = "m4a" if self.audio_only else "mp4"
        given = {f.name: getattr(self, f.name) for f in fields(JobOptions) if f.name not in _DERIVED_OPTIONS}
        storage = self.storage or {}
        prefix = "/".join(
            str(storage[name]).strip("/") for name in ("folder_prefix", "base_folder") if storage.get(name)
        )
        return JobOptions(format=self.format or default, storage_prefix=prefix or None, **given)

    def storage_target(self) -> S3Target | None:
        """The job's own storage target, checked; a provider other than s3 is a 400 naming it."""
        if self.storage is None:
            return None
        provider = self.storage.get("provider")
        if provider != "s3":
            raise ApiError(
                400, f"Invalid value for 'storage.provider': {provider!r} is not supported by this server yet (s3 is)"
            )
        try:
            given = S3StorageRequest.model_validate({k: v for k, v in self.storage.items() if k != "provider"})
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            raise ApiError(400, f"Invalid value for 'storage.{field}': {error['msg']}") from None
        return S3Target(given.endpoint, given.bucket, given.region, given.access_key, given.secret_key)

    def job_input(
        self,
        job_id: str,
        api_key_id: int,
        created_at_ms: int,
        settings: Settings,
        limits: JobLimits,
        batch_id: str | None = None,
    ) -> JobInput:
        """What the job's workflow runs with: these options and limits, and this server's retry policy."""
        return JobInput(
            job_id,
            api_key_id,
            self.url,
            self.options(),
            created_at_ms,
            settings.step_policy(),
            limits,
            self.webhook_url,
            self.enable_progress_webhook,
            self.storage is not None,
            batch_id,
        )

    def request_hash(self) -> str:
        """Tells two requests apart for idempotency: the same URL and effective options hash the same."""
        canonical = json.dumps({"url": self.url, **self.echo()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def echo(self) -> dict[str, Any]:
        """The effective create parameters, echoed back on the finished job."""
        options = asdict(self.options())
        echoed = {name: value for name, value in options.items() if value is not None and name != "storage_prefix"}
        if self.storage is not None:  # never its secrets
            echoed["storage"] = {k: v for k, v in self.storage.items() if k in STORAGE_ECHOED}
        if self.webhook_url:
            echoed["webhook_url"] = self.webhook_url
        if self.enable_progress_webhook:
            echoed["enable_progress_webhook"] = True
        return echoed


JOB_CREATE_SCHEMA = JobCreate.model_json_schema()


class JobCreated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"job_id": "550e8400-e29b-41d4-a716-446655440000"}]})

    job_id: str
    cached: bool = Field(default=False, description="True when an x-idempotency-key repeat returns an earlier job")


class VideoJob(BaseModel):
    job_id: str
    url: str
    title: str | None = None


class PlaylistCreated(BaseModel):
    """``POST /jobs`` with a playlist URL: a batch, one job per video."""

    batch_id: str
    total_videos: int
    video_jobs: list[VideoJob]
    paused: bool


class BulkCreated(BaseModel):
    batch_id: str
    total_jobs: int
    job_ids: list[str]


MAX_PAGE = 100


class JobSummary(BaseModel):
    """A job in ``GET /jobs``."""

    id: str
    url: str
    status: str
    step: str
    created_at: int
    error: str | None = None
    s3_key: str | None = None
    finished_at: int | None = None
    file_size: int | None = None
    batch_id: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> JobSummary:
        return cls(
            id=str(row["id"]),
            url=row["url"],
            status=row["status"],
            step=row["step"],
            error=row["error"],
            created_at=row["created_at"],
            s3_key=row["s3_key"],
            finished_at=row["finished_at"],
            file_size=row["file_size"],
            batch_id=str(row["batch_id"]) if row["batch_id"] else None,
        )


class JobPage(BaseModel):
    jobs: list[JobSummary]
    total: int
    limit: int
    offset: int


class JobCancelled(BaseModel):
    message: str = "Job cancelled successfully"
    job_id: str


class JobRetried(BaseModel):
    job_id: str
    original_job_id: str
    message: str = "Job re-queued successfully"


class FileDeleted(BaseModel):
    message: str = "File deleted successfully"
    job_id: str
    deleted_key: str


MAX_IDEMPOTENCY_KEY = 255


def idempotency_key(value: str) -> str:
    if not 0 < len(value) <= MAX_IDEMPOTENCY_KEY or has_control_characters(value):
        raise ApiError(400, f"Invalid x-idempotency-key: 1 to {MAX_IDEMPOTENCY_KEY} characters, no control characters")
    return value


def _is_type_error(error_type: str) -> bool:
    return error_type.endswith("_type") or error_type in {"missing_argument", "json_invalid"}


def _json_object(body: bytes) -> dict[str, Any]:
    """The body's JSON object, nulls dropped (an omitted field and a null one both take the default)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "Malformed JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(422, "The body must be a JSON object")
    return {name: value for name, value in data.items() if value is not None}


def _validated_create(data: dict[str, Any], where: str = "") -> JobCreate:
    """``where``: the position of these fields in the body (e.g. ``jobs[2].``), for the error message."""
    unknown = sorted(set(data) - set(JobCreate.model_fields))
    if unknown:
        raise ApiError(400, f"Unknown field '{where}{unknown[0]}'")
    try:
        job = JobCreate.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = where + (".".join(str(part) for part in error["loc"]) or "body")
        if error["type"] == "missing":
            raise ApiError(400, f"Field '{field}' is required") from None
        status = 422 if _is_type_error(error["type"]) else 400
        raise ApiError(status, f"Invalid value for '{field}': {error['msg']}") from None
    if job.format in AUDIO_FORMATS and not job.audio_only:
        raise ApiError(400, f"Invalid value for 'format': {job.format} is an audio format; set audio_only to true")
    if job.enable_progress_webhook and not job.webhook_url:
        raise ApiError(400, "Invalid value for 'enable_progress_webhook': it needs a webhook_url")
    if job.clip_start is not None and job.clip_end is not None and job.clip_end <= job.clip_start:
        raise ApiError(400, "Invalid value for 'clip_end': it must be after clip_start")
    _check_codecs(job.options())
    _check_live(job.options())
    return job


def _check_live(options: JobOptions) -> None:
    """The live options need a recording: none of them goes with ``live_recording: false``, and a
    recording is bounded by ``max_duration``, not cut like a clip."""
    if options.live_recording is False:
        for name in ("live_from_start", "max_duration"):
            if getattr(options, name):
                raise ApiError(
                    400, f"Invalid value for '{name}': it applies to live recordings, and live_recording is false"
                )
    if options.live_recording and options.clipped:
        name = "clip_start" if options.clip_start is not None else "clip_end"
        raise ApiError(400, f"Invalid value for '{name}': a live recording cannot be clipped; use max_duration")


def parse_job_create(body: bytes) -> JobCreate:
    return _validated_create(_json_object(body))


MAX_BULK_JOBS = 100
BULK_REFUSED = ("storage", "paused")
"""Shared options ``POST /jobs/bulk`` does not take (per contract); ``webhook_url`` it does, beyond it."""


class BulkEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str
    filename: str | None = None


BULK_CREATE_SCHEMA = {
    **JOB_CREATE_SCHEMA,
    "description": "Up to 100 URLs (each with an optional filename) and the create options they share.",
    "properties": {
        "jobs": {"type": "array", "minItems": 1, "maxItems": MAX_BULK_JOBS, "items": BulkEntry.model_json_schema()},
        **{
            name: spec
            for name, spec in JOB_CREATE_SCHEMA["properties"].items()
            if name not in ("url", "filename", *BULK_REFUSED)
        },
    },
    "required": ["jobs"],
}


def parse_bulk_create(body: bytes) -> list[JobCreate]:
    """One checked create per entry: the shared options with the entry's url and filename."""
    shared = _json_object(body)
    entries = shared.pop("jobs", None)
    for name in BULK_REFUSED:
        if name in shared:
            raise ApiError(400, f"Field '{name}' is not accepted by /jobs/bulk")
    if not isinstance(entries, list) or not entries:
        raise ApiError(400, "Field 'jobs' is required: a list of 1 to 100 {url, filename?} objects")
    if len(entries) > MAX_BULK_JOBS:
        raise ApiError(400, f"Invalid value for 'jobs': at most {MAX_BULK_JOBS} jobs, got {len(entries)}")
    creates = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ApiError(422, f"Invalid value for 'jobs[{i}]': each job is an object {{url, filename?}}")
        unknown = sorted(set(entry) - set(BulkEntry.model_fields))
        if unknown:
            raise ApiError(400, f"Unknown field 'jobs[{i}].{unknown[0]}'")
        creates.append(_validated_create({**shared, **entry}, f"jobs[{i}]."))
    return creates


def _check_codecs(options: JobOptions) -> None:
    """A requested codec must fit the container, before any workflow starts."""
    container = CONTAINERS[options.format]
    if options.video_codec != "copy":
        if options.audio_only:
            raise ApiError(400, "Invalid value for 'video_codec': an audio_only job has no video stream")
        if normalize_codec(options.video_codec) not in container.video_codecs:
            raise ApiError(
                400, f"Invalid value for 'video_codec': {options.video_codec} cannot go in a {options.format} file"
            )
    if options.audio_codec != "copy" and normalize_codec(options.audio_codec) not in container.audio_codecs:
        raise ApiError(
            400, f"Invalid value for 'audio_codec': {options.audio_codec} cannot go in a {options.format} file"
        )


class Progress(BaseModel):
    """(beyond) A running job's progress: the running step's last heartbeat."""

    percent: float | None = None
    downloaded_bytes: int | None = None
    total_bytes: int | None = None
    speed_mbps: float | None = None
    eta_s: int | None = None


def _optional(hint: Any) -> Any:
    return hint | None


_OUTCOME_HINTS = get_type_hints(JobOutcome)
_BASE_DOCUMENT: dict[str, Any] = {
    "id": (str, ...),
    "url": (str, ...),
    "status": (JobStatus, ...),
    "step": (JobStep, ...),
    "created_at": (int, Field(description="ms since the epoch")),
    "s3_url": (str | None, Field(description="Presigned GET URL of the file, once Completed")),
    "subtitle_url": (str | None, Field(description="Presigned URL of the WebVTT subtitles, if asked and found")),
    "error": (str | None, Field(description="What went wrong, for Failed, Warning and Skipped jobs")),
}
JobDocument = create_model(  # type: ignore[call-overload]
    "JobDocument",
    __doc__="GET /jobs/{id}: the base fields always (null when empty), the rest only when they have a value; "
    "a finished job's result fields, and every create parameter that was given, echoed.",
    __config__=ConfigDict(extra="allow"),
    **_BASE_DOCUMENT,
    thumbnail_url=(str | None, None),
    batch_id=(str | None, None),
    progress=(Progress | None, None),
    **{
        name: (_optional(hint), None)
        for name, hint in _OUTCOME_HINTS.items()
        if name not in _BASE_DOCUMENT and name not in STORED_FILES
    },
    **{
        name: (_optional(field.annotation), None)
        for name, field in JobCreate.model_fields.items()
        if name not in _BASE_DOCUMENT and name != "storage"
    },
    storage=(dict[str, Any] | None, Field(default=None, description="The job's own target, without its keys")),
)
