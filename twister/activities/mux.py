"""Mux step: ffmpeg joins the downloaded streams into the requested container, and sends the parts of
the output it has finished to storage while it writes, where the container allows it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from twister.activities.eager_upload import HEAD_MARGIN_BYTES, EagerUpload
from twister.activities.multipart import Buckets, OpenUploads, PartLayout
from twister.config import Settings
from twister.media.binaries import die_with_worker
from twister.media.containers import Container, container_for
from twister.media.muxing import MOOV_RESERVE_TOO_SMALL, ffmpeg_arguments, moov_room
from twister.media.probe import probe
from twister.models import ActivityName, ErrorType, HandedOverUpload, MuxRequest, MuxResult
from twister.worker.heartbeat import Heartbeat
from twister.worker.workdirs import WorkDirs, files_gone


class MuxActivities:
    def __init__(self, settings: Settings, workdirs: WorkDirs, buckets: Buckets, uploads: OpenUploads) -> None:
        self._settings = settings
        self._workdirs = workdirs
        self._buckets = buckets
        self._uploads = uploads

    @activity.defn(name=ActivityName.MUX)
    async def mux(self, request: MuxRequest) -> MuxResult:
        """A stream copy to MP4/MOV with a reserved index also starts the job's multipart upload and
        sends the parts ffmpeg has finished (see ``eager_upload``), handed over to the upload step."""
        container = container_for(request.options)
        output = self._workdirs.hold(request.job_id) / f"output.{container.extension}"
        inputs = [Path(p) for p in (request.download.video_path, request.download.audio_path) if p]
        if not inputs or not all(path.exists() for path in inputs):
            raise files_gone("downloaded streams")
        duration = request.download.media_duration
        if duration is None:
            duration = (await asyncio.to_thread(probe, self._settings.ffprobe_path, inputs[0])).duration
        started = time.monotonic()
        args = ffmpeg_arguments(request, container, output)
        handed_over = None
        try:
            handed_over = await self._mux_sending_parts(request, container, inputs, output, args, duration)
        except ApplicationError as exc:
            if MOOV_RESERVE_TOO_SMALL not in exc.message:
                raise
            activity.logger.warning("The MP4 index outgrew the room reserved for it; muxing again with +faststart")
            await self.run_ffmpeg(ffmpeg_arguments(request, container, output, reserve_moov=False), duration)
        return MuxResult(
            path=str(output), duration_ms=int((time.monotonic() - started) * 1000), handed_over=handed_over
        )

    async def _mux_sending_parts(
        self,
        request: MuxRequest,
        container: Container,
        inputs: list[Path],
        output: Path,
        args: list[str],
        duration: float | None,
    ) -> HandedOverUpload | None:
        # ffmpeg does not wait for storage: an upload that is not open by the time it ends is left to
        # the upload step (whose sweeps drop one opened late)
        starting = asyncio.create_task(self._start_eager_upload(request, container, inputs, output, moov_room(args)))
        follower = asyncio.create_task(_follow(starting))
        try:
            await self.run_ffmpeg(args, duration)
            follower.cancel()
            eager = starting.result() if starting.done() else None
            if eager is None:
                return None
            async with Heartbeat(percent=100.0):
                return await eager.finish()
        except BaseException:
            if starting.done() and (eager := starting.result()) is not None:
                await eager.abort()
            raise
        finally:
            starting.cancel()
            follower.cancel()

    async def _start_eager_upload(
        self, request: MuxRequest, container: Container, inputs: list[Path], output: Path, room: int | None
    ) -> EagerUpload | None:
        """None when the output is not written front to back, the request has no key (a history from
        before), no part past the head could be sent (the streams are smaller than the head and one
        part), the file would need too many parts, or storage does not answer: the upload step then
        sends the whole file, as before."""
        if room is None or not request.key:
            return None
        layout = PartLayout.with_head_past(room + HEAD_MARGIN_BYTES, self._settings.upload_part_bytes)
        try:
            size = sum(path.stat().st_size for path in inputs)
            if size <= layout.head_bytes + layout.part_bytes or not layout.fits(size):
                return None
            bucket = await self._buckets.of_job(request.job_id, request.own_storage)
            return await EagerUpload.start(
                request.job_id, bucket, request.key, container.content_type, output, layout, self._uploads
            )
        except Exception as exc:  # storage, or the job's own target from the database: never the mux's failure
            activity.logger.warning("no parts sent while muxing: storage did not answer (%s)", type(exc).__name__)
            return None

    async def run_ffmpeg(self, args: list[str], duration: float | None) -> None:
        process = await asyncio.create_subprocess_exec(
            self._settings.ffmpeg_path,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=die_with_worker,
        )
        assert process.stdout is not None and process.stderr is not None
        stderr_task = asyncio.create_task(process.stderr.read())
        try:
            async with Heartbeat(percent=0.0 if duration else None) as heartbeat:
                async for line in process.stdout:
                    key, _, value = line.decode(errors="replace").strip().partition("=")
                    if key == "out_time_us" and value.isdigit() and duration:
                        heartbeat.update(percent=min(100.0, round(int(value) / 1e4 / duration, 1)))
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        stderr = (await stderr_task).decode(errors="replace").strip()
        if code != 0:
            raise ApplicationError(f"Muxing failed (ffmpeg exit {code}): {stderr[-500:]}", type=ErrorType.MUX_FAILED)


async def _follow(starting: asyncio.Task[EagerUpload | None]) -> None:
    """Sends the parts ffmpeg finishes once the upload is open."""
    if (eager := await starting) is not None:
        await eager.follow()
