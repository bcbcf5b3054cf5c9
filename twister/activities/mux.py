"""Mux step: ffmpeg joins the downloaded streams into the requested container.

Streams are copied when the container can hold their codecs; only a stream that does not fit
is re-encoded (audio to the container's usual codec, e.g. aac for mp4).
"""

from __future__ import annotations

import asyncio
import ctypes
import signal
import time
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from twister.activities.containers import Container, container_for
from twister.activities.probe import probe
from twister.activities.workdir import WorkDirs
from twister.config import Settings
from twister.models import ErrorType, MuxRequest, MuxResult

_PR_SET_PDEATHSIG = 1


def _die_with_worker() -> None:
    """Runs in the forked child: the kernel kills ffmpeg if the worker dies, even by kill -9."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def ffmpeg_arguments(request: MuxRequest, container: Container, output: Path) -> list[str]:
    download = request.download
    inputs = list(dict.fromkeys(p for p in (download.video_path, download.audio_path) if p))
    args = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats", "-progress", "pipe:1"]
    for path in inputs:
        args += ["-i", path]
    want_video = bool(download.video_path) and bool(container.video_codecs) and not request.options.audio_only
    if want_video:
        args += ["-map", f"{inputs.index(download.video_path or '')}:v:0"]
        if container.fits_video(download.native_video_codec):
            args += ["-c:v", "copy"]
        else:
            args += ["-c:v", *container.video_encoder]
    if download.audio_path:
        args += ["-map", f"{inputs.index(download.audio_path)}:a:0"]
        if container.fits_audio(download.native_audio_codec):
            args += ["-c:a", "copy"]
        else:
            args += ["-c:a", *container.audio_encoder]
    if container.ffmpeg_format in ("mp4", "mov", "ipod"):
        args += ["-movflags", "+faststart"]
    return [*args, "-f", container.ffmpeg_format, str(output)]


class MuxActivities:
    def __init__(self, settings: Settings, workdirs: WorkDirs) -> None:
        self._settings = settings
        self._workdirs = workdirs

    @activity.defn(name="mux")
    async def mux(self, request: MuxRequest) -> MuxResult:
        container = container_for(request.options)
        output = self._workdirs.path(request.job_id) / f"output.{container.extension}"
        source = request.download.video_path or request.download.audio_path
        if source is None or not Path(source).exists():
            raise ApplicationError(
                "The downloaded streams are gone from the worker; the job restarts from the download.",
                type=ErrorType.MUX_FAILED,
            )
        info = await asyncio.to_thread(probe, self._settings.ffprobe_path, Path(source))
        started = time.monotonic()
        await self._run_ffmpeg(ffmpeg_arguments(request, container, output), info.duration)
        return MuxResult(
            path=str(output),
            file_size=output.stat().st_size,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    async def _run_ffmpeg(self, args: list[str], duration: float | None) -> None:
        process = await asyncio.create_subprocess_exec(
            self._settings.ffmpeg_path,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_worker,
        )
        assert process.stdout is not None and process.stderr is not None
        stderr_task = asyncio.create_task(process.stderr.read())
        try:
            activity.heartbeat({"percent": 0})
            async for line in process.stdout:
                key, _, value = line.decode(errors="replace").strip().partition("=")
                if key == "out_time_us" and value.isdigit() and duration:
                    activity.heartbeat({"percent": min(100.0, round(int(value) / 1e4 / duration, 1))})
            code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        stderr = (await stderr_task).decode(errors="replace").strip()
        if code != 0:
            raise ApplicationError(f"Muxing failed (ffmpeg exit {code}): {stderr[-500:]}", type=ErrorType.MUX_FAILED)
