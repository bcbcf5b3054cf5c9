"""Download step: yt-dlp fetches the chosen video and audio streams as separate files; a live source
is recorded instead (``media/live.py``)."""

from __future__ import annotations

import contextvars
import dataclasses
import math
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor
from yt_dlp.utils import DownloadError

from twister.config import Settings
from twister.media.download_errors import classify_download_error, downloader_message, may_appear
from twister.media.formats import Format, choose_formats
from twister.media.live import RecordingProgress, record, recording_arguments
from twister.media.probe import MediaInfo, probe
from twister.media.ytdlp import YoutubeDL, base_params
from twister.models import ActivityName, DownloadResult, ErrorType, JobLimits, JobOptions, StepRequest
from twister.worker.heartbeat import Heartbeat
from twister.worker.metrics import count_bytes
from twister.worker.workdirs import WorkDirs


@dataclass
class _Progress:
    """Download progress over all chosen streams, sent as heartbeat details."""

    expected_total: int = 0
    finished_bytes: int = 0
    current_bytes: int = 0
    started: float = 0.0

    @property
    def done(self) -> int:
        return self.finished_bytes + self.current_bytes

    def details(self, speed: float | None) -> dict[str, Any]:
        total = max(self.expected_total, self.done)
        speed_mbps = round((speed or 0) / 1e6, 3)
        eta = round((total - self.done) / speed) if speed and total else None
        return {
            "percent": round(100 * self.done / total, 1) if total else None,
            "downloaded_bytes": self.done,
            "total_bytes": total or None,
            "speed_mbps": speed_mbps,
            "eta_s": eta,
        }


def over_limit(what: str, limit: str) -> ApplicationError:
    """The source is beyond this server's limits: the job ends Warning and nothing is uploaded."""
    return ApplicationError(
        f"{what}, over this job's limit of {limit} (the server's or its API key's); "
        "ask the operator to raise it if this job is intended",
        type=ErrorType.OVER_LIMIT,
        non_retryable=True,
    )


def check_duration(duration: float | None, limits: JobLimits) -> None:
    if duration and duration > limits.max_duration_seconds:
        raise over_limit(f"The video is {duration:.0f} s long", f"{limits.max_duration_seconds} s")


def check_size(size: int, how: str, limits: JobLimits) -> None:
    if size > limits.max_file_size_bytes:
        raise over_limit(f"File too large: the source {how} {size} bytes", f"{limits.max_file_size_bytes} bytes")


def content_unavailable(message: str, attempt: int) -> ApplicationError:
    return ApplicationError(message, attempt, type=ErrorType.CONTENT_UNAVAILABLE, non_retryable=True)


class _LiveSource(Exception):
    """The format choice met a live source. yt-dlp's own live download can neither be bounded nor
    followed, so it stops there and the job records the stream itself."""

    def __init__(self, info: dict[str, Any], formats: list[Format]) -> None:
        super().__init__("live source")
        self.info, self.formats = info, formats


_FIRST_WAIT = 1.0
_LONGEST_WAIT = 30.0
"""wait_for_video asks again after 1, 2, 4 ... and then every 30 seconds."""


_FRAGMENTS_AT_ONCE = 4
"""HLS and DASH segments fetched at a time, each in a thread of yt-dlp's."""

SUBTITLES = "subtitles"
THUMBNAIL = "thumbnail"


def _subtitle(workdir: Path, lang: str) -> Path:
    return workdir / f"{SUBTITLES}.{lang}.vtt"


class DownloadActivities:
    def __init__(self, settings: Settings, workdirs: WorkDirs, egress_proxy_url: str) -> None:
        self._settings = settings
        self._workdirs = workdirs
        self._proxy = egress_proxy_url

    @activity.defn(name=ActivityName.DOWNLOAD)
    def download(self, request: StepRequest) -> DownloadResult:
        """Cancellation is taken at the progress hook, never raised into the thread at a random
        point: landing in one of yt-dlp's lazy imports, it would leave that module half-initialized
        and break every later download in this worker."""
        attempt = activity.info().attempt
        with activity.shield_thread_cancel_exception():
            try:
                return self._download(request, attempt)
            except Exception as exc:  # every downloader failure is classified, none escapes raw
                if activity.is_cancelled():
                    raise CancelledError("download cancelled") from None
                wrapped = getattr(exc, "exc_info", None)
                inner = wrapped[1] if wrapped and len(wrapped) > 1 else exc
                if isinstance(inner, ApplicationError):
                    raise inner from None
                raise classify_download_error(exc, attempt) from None

    def _download(self, request: StepRequest, attempt: int) -> DownloadResult:
        workdir = self._workdirs.fresh(request.job_id)
        progress = _Progress()
        chosen: list[Format] = []

        limits = request.limits

        options = request.options

        looked: list[dict[str, Any]] = []  # the source as the filter saw it, right before its formats are chosen

        def within_duration(info: dict[str, Any], *, incomplete: object) -> None:
            looked[:] = [info]
            duration = info.get("duration")
            if duration and options.clipped:  # only the clip is downloaded
                duration = min(duration, options.clip_end or duration) - (options.clip_start or 0)
            check_duration(duration, limits)

        def select(ctx: dict[str, Any]) -> Any:
            chosen[:] = choose_formats(ctx["formats"], request.options)  # anew on each wait_for_video attempt
            if looked and looked[0].get("is_live") and chosen:
                raise _LiveSource(looked[0], list(chosen))
            progress.expected_total = sum(int(f.get("filesize") or f.get("filesize_approx") or 0) for f in chosen)
            check_size(progress.expected_total, "is announced as", limits)
            progress.started = time.monotonic()
            yield from chosen

        heartbeat = Heartbeat(attempt=attempt)
        # yt-dlp calls the hook from its fragment threads too, outside the activity's context
        context, counting = contextvars.copy_context(), threading.Lock()

        def hook(update: dict[str, Any]) -> None:
            if context.copy().run(activity.is_cancelled):
                raise CancelledError("download cancelled")
            with counting:
                if update["status"] == "finished":
                    progress.finished_bytes += int(update.get("total_bytes") or update.get("downloaded_bytes") or 0)
                    progress.current_bytes = 0
                else:
                    progress.current_bytes = int(update.get("downloaded_bytes") or 0)
                    # Content-Length first (refused before the body is read), then the bytes counted so far
                    announced = progress.finished_bytes + int(update.get("total_bytes") or 0)
                    check_size(announced, "is announced as", limits)
                check_size(progress.done, "passed", limits)
                heartbeat.update(**progress.details(update.get("speed")))

        params = base_params(self._settings, self._proxy) | {
            "format": select,
            "match_filter": within_duration,
            "outtmpl": {
                "default": str(workdir / "stream-%(format_id)s.%(ext)s"),
                "subtitle": str(workdir / f"{SUBTITLES}.%(ext)s"),
                "thumbnail": str(workdir / f"{THUMBNAIL}.%(ext)s"),
            },
            "restrictfilenames": True,
            "noplaylist": True,
            "progress_hooks": [hook],
            "retries": 2,
            "fragment_retries": 3,
            "concurrent_fragment_downloads": _FRAGMENTS_AT_ONCE,
            "skip_unavailable_fragments": False,
            "overwrites": True,
        }
        cut: list[bool] = []

        def clip_ranges(info: dict[str, Any], ydl: Any) -> list[dict[str, float]]:
            """Only the segments (or byte ranges) of the clip are fetched, through ffmpeg, which re-encodes
            at the cuts to make them exact. ffmpeg here has no DASH reader: DASH comes whole, the mux cuts."""
            if any(f.get("protocol") == "http_dash_segments" for f in chosen):
                return [{}]
            cut.append(True)
            return [{"start_time": options.clip_start or 0.0, "end_time": options.clip_end or math.inf}]

        if options.clipped:
            params |= {"download_ranges": clip_ranges, "force_keyframes_at_cuts": True}
        converters = []
        if options.download_subtitles:
            params |= {"writesubtitles": True, "subtitleslangs": options.subtitle_languages}
            converters.append({"key": "FFmpegSubtitlesConvertor", "format": "vtt", "when": "before_dl"})
        if options.download_thumbnail:
            params["writethumbnail"] = True
            converters.append({"key": "FFmpegThumbnailsConvertor", "format": "jpg", "when": "before_dl"})
        params["postprocessors"] = converters
        # yt-dlp asks "is ffmpeg there?" (for clips) without its params, from this context variable
        FFmpegPostProcessor._ffmpeg_location.set(params["ffmpeg_location"])
        started = time.monotonic()
        with heartbeat:
            try:
                info = self._fetch(params, request, attempt)
            except _LiveSource as live:
                return self._record(live.info, live.formats, request, workdir, heartbeat, attempt, started)
            if not info or not chosen:
                raise content_unavailable(
                    "The downloader found no video or audio stream at this URL. Check that it is a media page.", attempt
                )
            finished = time.monotonic()
            extract_ms = int(((progress.started or finished) - started) * 1000)
            download_ms = int((finished - (progress.started or started)) * 1000)
            files = {d["format_id"]: Path(d["filepath"]) for d in info.get("requested_downloads", [])}
            paths = [files[f["format_id"]] for f in chosen]
            probes = [probe(self._settings.ffprobe_path, path) for path in paths]
            # sources that do not tell their length up front (plain files, many DASH manifests)
            check_duration(max((m.duration or 0 for m in probes), default=None), limits)
            result = self._result(info.get("title"), paths, probes, extract_ms, download_ms, attempt)
            lang = self._subtitle_lang(workdir, options)
            return dataclasses.replace(
                result,
                clip_cut=bool(cut),
                subtitle_path=str(_subtitle(workdir, lang)) if lang else None,
                subtitle_lang=lang,
                thumbnail_path=self._thumbnail(workdir, options, result),
            )

    @staticmethod
    def _fetch(params: dict[str, Any], request: StepRequest, attempt: int) -> dict[str, Any] | None:
        """yt-dlp's extraction and download. With wait_for_video, a source that is not there yet is asked
        for again, at growing intervals, until the job's wait limit has passed."""
        limit, waited, pause = request.limits.max_wait_for_video_seconds, 0.0, _FIRST_WAIT
        while True:
            try:
                with YoutubeDL(params) as ydl:
                    info: dict[str, Any] | None = ydl.extract_info(request.url, download=True)
                    return info
            except DownloadError as exc:
                if not (request.options.wait_for_video and may_appear(exc)):
                    raise
                if waited >= limit:
                    raise content_unavailable(
                        f"The source did not appear within {limit} s (this server's limit for wait_for_video): "
                        f"{downloader_message(exc)}",
                        attempt,
                    ) from None
            pause = min(pause, limit - waited)
            activity.wait_for_cancelled_sync(timedelta(seconds=pause))
            if activity.is_cancelled():
                raise CancelledError("download cancelled")
            waited, pause = waited + pause, min(2 * pause, _LONGEST_WAIT)

    def _record(
        self,
        info: dict[str, Any],
        chosen: list[Format],
        request: StepRequest,
        workdir: Path,
        heartbeat: Heartbeat,
        attempt: int,
        started: float,
    ) -> DownloadResult:
        """Records the live stream until it ends, ``max_duration`` passes or the duration limit is reached
        (a recording stops there rather than failing); past the size limit the job ends Warning."""
        options, limits = request.options, request.limits
        if options.live_recording is False:
            raise content_unavailable(
                "The source is a live stream and live_recording is false, so nothing was recorded; "
                "leave live_recording out (or set it to true) to record it.",
                attempt,
            )
        if options.clipped:
            raise content_unavailable(
                "The source is a live stream, which cannot be clipped; bound the recording with max_duration instead.",
                attempt,
            )
        output = workdir / "recording.ts"
        began = time.monotonic()

        def watch(progress: RecordingProgress) -> None:
            if activity.is_cancelled():
                raise CancelledError("recording cancelled")
            check_size(progress.bytes, "recording passed", limits)
            heartbeat.update(**progress.details(options.max_duration, time.monotonic() - began))

        args = recording_arguments(chosen, output, options.live_from_start, limits.recording_seconds(options))
        record(self._settings.ffmpeg_path, args, self._proxy, workdir / "recording.log", watch)
        probed = probe(self._settings.ffprobe_path, output)
        extract_ms, download_ms = int((began - started) * 1000), int((time.monotonic() - began) * 1000)
        result = self._result(info.get("title"), [output], [probed], extract_ms, download_ms, attempt)
        return dataclasses.replace(result, thumbnail_path=self._thumbnail(workdir, options, result))

    @staticmethod
    def _subtitle_lang(workdir: Path, options: JobOptions) -> str | None:
        """The first asked language whose subtitles were found (as WebVTT); none found is no error."""
        if not options.download_subtitles:
            return None
        return next((lang for lang in options.subtitle_languages if _subtitle(workdir, lang).exists()), None)

    def _thumbnail(self, workdir: Path, options: JobOptions, result: DownloadResult) -> str | None:
        """A JPEG: the source's thumbnail, else a frame of the video."""
        if not options.download_thumbnail:
            return None
        thumbnail = workdir / f"{THUMBNAIL}.jpg"
        if not thumbnail.exists() and result.video_path:
            frame = ["-v", "error", "-y", "-i", result.video_path, "-frames:v", "1", str(thumbnail)]
            subprocess.run([self._settings.ffmpeg_path, *frame], check=False, timeout=60)
        return str(thumbnail) if thumbnail.exists() else None

    @staticmethod
    def _result(
        title: str | None,
        paths: list[Path],
        probes: list[MediaInfo],
        extract_ms: int,
        download_ms: int,
        attempt: int,
    ) -> DownloadResult:
        video_path = next((p for p, m in zip(paths, probes, strict=True) if m.video_codec), None)
        audio_path = next((p for p, m in zip(paths, probes, strict=True) if m.audio_codec), None)
        video = next((m for m in probes if m.video_codec), None)
        audio = next((m for m in probes if m.audio_codec), None)
        size = sum(path.stat().st_size for path in paths)
        count_bytes("downloaded", size)
        return DownloadResult(
            title=title,
            video_path=str(video_path) if video_path else None,
            audio_path=str(audio_path) if audio_path else None,
            native_video_codec=video.video_codec if video else None,
            native_audio_codec=audio.audio_codec if audio else None,
            actual_quality=video.quality if video else "audio",
            extract_duration_ms=extract_ms,
            download_duration_ms=download_ms,
            speed_mbps=round(size / 1e6 / max(download_ms / 1000, 1e-3), 3),
            attempt=attempt,
            media_duration=next((m.duration for m in (video, audio) if m is not None), None),
            video_frame_rate=video.frame_rate if video else None,
        )
