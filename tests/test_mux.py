"""Mux step on real ffmpeg: stream copy when codecs fit, and a cancelled mux leaves no ffmpeg behind."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
import stat
import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from tests.conftest import moov_before_mdat, mux_activities, server_buckets
from tests.media_site import FFMPEG
from twister.activities.multipart import MIN_PART_BYTES, OpenUploads
from twister.activities.upload import UploadActivities
from twister.config import Settings
from twister.embedded.process import free_port
from twister.media.containers import container_for
from twister.media.muxing import ffmpeg_arguments
from twister.media.probe import probe
from twister.models import DownloadResult, ErrorType, JobOptions, MuxRequest, UploadRequest
from twister.storage import s3_client
from twister.worker.workdirs import WorkDirs


def request(video: Path, audio: Path | None, options: JobOptions) -> MuxRequest:
    download = DownloadResult(
        title="t",
        video_path=str(video),
        audio_path=str(audio) if audio else None,
        native_video_codec="h264",
        native_audio_codec="aac" if audio else None,
        actual_quality="360p",
        extract_duration_ms=1,
        download_duration_ms=1,
        speed_mbps=1.0,
        attempt=1,
    )
    return MuxRequest("job", options, download)


def test_fitting_codecs_are_copied_and_misfits_reencoded(tmp_path: Path) -> None:
    video, audio, out = tmp_path / "v.mp4", tmp_path / "a.m4a", tmp_path / "out"
    mp4 = ffmpeg_arguments(request(video, audio, JobOptions()), container_for(JobOptions()), out)
    assert mp4[mp4.index("-c:v") + 1] == "copy" and mp4[mp4.index("-c:a") + 1] == "copy"
    webm = JobOptions(format="webm")
    args = ffmpeg_arguments(request(video, audio, webm), container_for(webm), out)
    assert args[args.index("-c:v") + 1] == "libvpx-vp9" and args[args.index("-c:a") + 1] == "libopus"


@pytest.fixture
def workdirs(tmp_path: Path) -> WorkDirs:
    """The worker's work dirs, the test's job ("job") given a fresh one."""
    dirs = WorkDirs(tmp_path / "work")
    dirs.fresh("job")
    return dirs


def ffmpeg_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]


async def test_missing_streams_send_the_job_back_to_the_download(settings: Settings, workdirs: WorkDirs) -> None:
    gone = workdirs.path("job") / "stream-v.mp4"
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(mux_activities(settings, workdirs).mux, request(gone, None, JobOptions()))
    assert raised.value.type == ErrorType.STREAMS_MISSING and raised.value.non_retryable
    assert "downloads the source again" in raised.value.message


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=30",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(path),
        ],
        check=True,
    )
    return path


async def test_reencode_of_unknown_duration_keeps_heartbeating(
    tmp_path: Path, settings: Settings, long_video: Path
) -> None:
    """Without a duration there is no percentage to report, yet the step must not look dead."""
    beats: list[object] = []
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=timedelta(seconds=2))
    env.on_heartbeat = lambda *details: beats.append(details)
    mux = mux_activities(settings, WorkDirs(tmp_path / "work"))
    output = tmp_path / "out.webm"
    args = ["-nostdin", "-y", "-loglevel", "error", "-progress", "pipe:1", "-i", str(long_video)]
    task = asyncio.create_task(env.run(mux.run_ffmpeg, [*args, "-c:v", "libvpx-vp9", str(output)], None))
    for _ in range(100):
        if len(beats) >= 3:
            break
        await asyncio.sleep(0.1)
    env.cancel()
    with pytest.raises((asyncio.CancelledError, CancelledError)):
        await task
    assert len(beats) >= 3


async def test_cancelled_mux_kills_its_ffmpeg(settings: Settings, long_video: Path, workdirs: WorkDirs) -> None:
    mux = mux_activities(settings, workdirs)
    env = ActivityEnvironment()
    task = asyncio.create_task(env.run(mux.mux, request(long_video, None, JobOptions(format="webm"))))
    for _ in range(100):
        await asyncio.sleep(0.1)
        if ffmpeg_children():
            break
    assert ffmpeg_children(), "ffmpeg never started"

    env.cancel()
    with pytest.raises((asyncio.CancelledError, CancelledError)):
        await task

    assert ffmpeg_children() == []


@pytest.mark.usefixtures("stack")
async def test_index_that_outgrows_its_reserved_room_still_comes_first(
    tmp_path: Path, settings: Settings, workdirs: WorkDirs
) -> None:
    """A source with more frames than it told (here 24,000 in 15 MB, told 1): the copy's index
    outgrows the room reserved for it, and the delivered file still has its index first and plays
    to the end. The multipart upload started for it (5 MiB parts) is dropped: ffmpeg wrote the
    index past its room."""
    video = tmp_path / "many-frames.mp4"
    frames = "testsrc2=size=160x90:rate=400:duration=60,noise=alls=30:allf=t"
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2M"]
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", frames, *encode, str(video)], check=True)
    told = dataclasses.replace(request(video, None, JobOptions()).download, media_duration=1.0, video_frame_rate=1.0)
    small_parts = settings.model_copy(update={"upload_part_bytes": MIN_PART_BYTES})

    result = await ActivityEnvironment().run(
        mux_activities(small_parts, workdirs).mux,
        MuxRequest("job", JobOptions(), told, key="outgrown.mp4"),
    )

    output = Path(result.path)
    assert moov_before_mdat(output)
    assert probe(settings.ffprobe_path, output).duration == pytest.approx(60, abs=0.1)
    assert result.handed_over is None
    assert unfinished_uploads(settings, "outgrown.mp4") == []


def unfinished_uploads(settings: Settings, key: str) -> list[str]:
    listed = s3_client(settings).list_multipart_uploads(Bucket=settings.s3_bucket, Prefix=key)
    return [upload["UploadId"] for upload in listed.get("Uploads", [])]


@pytest.fixture(scope="module")
def big_streams(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """~39 MB of H.264 (5 s of lossless noise) and AAC: eight parts of 5 MiB."""
    folder = tmp_path_factory.mktemp("big")
    video, audio = folder / "video.mp4", folder / "audio.m4a"
    noise = "testsrc2=size=640x360:rate=25:duration=5,noise=alls=20:allf=t"
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"]
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", noise, *encode, str(video)], check=True)
    tone = "sine=frequency=440:sample_rate=48000:duration=5"
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", tone, "-c:a", "aac", str(audio)], check=True)
    return video, audio


def throttled(settings: Settings, folder: Path, *, stop_after: float | None = None) -> Settings:
    """Settings whose ffmpeg reads at twice real time (a 5 s source muxes in ~2.5 s, as a large one
    would), with a part size of 5 MiB; ``stop_after`` seconds it fails (exit 124)."""
    wrapper = folder / "ffmpeg-throttled"
    limit = f"timeout {stop_after} " if stop_after else ""
    wrapper.write_text(f'#!/bin/sh\nexec {limit}"{settings.ffmpeg_path}" -readrate 2 "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return settings.model_copy(update={"ffmpeg_path": str(wrapper), "upload_part_bytes": MIN_PART_BYTES})


def timed_request(streams: tuple[Path, Path], key: str) -> MuxRequest:
    download = dataclasses.replace(request(*streams, JobOptions()).download, media_duration=5.0, video_frame_rate=25.0)
    return MuxRequest("job", JobOptions(), download, key=key)


@pytest.mark.usefixtures("stack")
async def test_parts_sent_while_muxing_are_the_final_bytes(
    tmp_path: Path, settings: Settings, big_streams: tuple[Path, Path], workdirs: WorkDirs
) -> None:
    """Each part sent while ffmpeg wrote holds the bytes the finished file has there (its ETag is
    their MD5): ffmpeg rewrote nothing past the head. The upload step then stores a copy of the
    muxed file, index first, and leaves no unfinished upload."""
    slow = throttled(settings, tmp_path)
    uploads = OpenUploads()
    key = "eager/parts.mp4"

    muxed = await ActivityEnvironment().run(
        mux_activities(slow, workdirs, uploads).mux, timed_request(big_streams, key)
    )

    output = Path(muxed.path).read_bytes()
    handed_over = muxed.handed_over
    assert handed_over is not None and handed_over.file_size == len(output)
    assert len(handed_over.parts) >= 4, handed_over
    assert handed_over.parts[0].offset >= handed_over.head_bytes
    for part in handed_over.parts:
        assert part.etag.strip('"') == hashlib.md5(output[part.offset : part.offset + part.length]).hexdigest()

    upload = UploadActivities(workdirs, server_buckets(slow), MIN_PART_BYTES, uploads)
    request_ = UploadRequest("job", muxed.path, key, handed_over=handed_over)
    result = await asyncio.to_thread(ActivityEnvironment().run, upload.upload, request_)

    stored = s3_client(settings).get_object(Bucket=settings.s3_bucket, Key=key)
    assert stored["Body"].read() == output and stored["ContentType"] == "video/mp4"
    assert moov_before_mdat(Path(muxed.path))
    assert unfinished_uploads(settings, key) == []
    assert result.speed_mbps > 0


async def test_storage_unreachable_while_muxing_leaves_the_upload_to_its_step(
    tmp_path: Path, settings: Settings, big_streams: tuple[Path, Path], workdirs: WorkDirs
) -> None:
    unreachable = settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})

    muxed = await ActivityEnvironment().run(
        mux_activities(throttled(unreachable, tmp_path), workdirs).mux, timed_request(big_streams, "unreachable.mp4")
    )

    assert muxed.handed_over is None
    assert moov_before_mdat(Path(muxed.path))


async def test_a_silent_storage_does_not_hold_the_mux_up(
    tmp_path: Path, settings: Settings, big_streams: tuple[Path, Path], workdirs: WorkDirs
) -> None:
    """Storage that takes the connection and never answers (boto3 would wait 60 s per try): ffmpeg
    does not wait for the multipart upload to open, and the mux ends with the file, its upload left
    to the upload step."""
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    listening = threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True)
    listening.start()
    quiet = settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{silent.getsockname()[1]}"})
    try:
        muxed = await asyncio.wait_for(
            ActivityEnvironment().run(
                mux_activities(throttled(quiet, tmp_path), workdirs).mux, timed_request(big_streams, "silent.mp4")
            ),
            timeout=30,
        )
    finally:
        for connection in accepted:
            connection.close()
        silent.close()

    assert muxed.handed_over is None
    assert moov_before_mdat(Path(muxed.path))


async def sending_parts(settings: Settings, key: str) -> None:
    """Returns once the mux's multipart upload of ``key`` holds a part."""
    s3 = s3_client(settings)
    for _ in range(100):
        for upload_id in unfinished_uploads(settings, key):
            if s3.list_parts(Bucket=settings.s3_bucket, Key=key, UploadId=upload_id).get("Parts"):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("no part was sent while muxing")


@pytest.mark.usefixtures("stack")
async def test_cancelled_mux_leaves_no_unfinished_upload(
    tmp_path: Path, settings: Settings, big_streams: tuple[Path, Path], workdirs: WorkDirs
) -> None:
    env = ActivityEnvironment()
    key = "eager/cancelled.mp4"
    task = asyncio.create_task(
        env.run(mux_activities(throttled(settings, tmp_path), workdirs).mux, timed_request(big_streams, key))
    )
    await sending_parts(settings, key)

    env.cancel()
    with pytest.raises((asyncio.CancelledError, CancelledError)):
        await task

    assert unfinished_uploads(settings, key) == []


@pytest.mark.usefixtures("stack")
async def test_failed_mux_leaves_no_unfinished_upload(
    tmp_path: Path, settings: Settings, big_streams: tuple[Path, Path], workdirs: WorkDirs
) -> None:
    key = "eager/failed.mp4"
    failing = throttled(settings, tmp_path, stop_after=1.5)  # killed in the middle of the file

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(mux_activities(failing, workdirs).mux, timed_request(big_streams, key))

    assert raised.value.type == ErrorType.MUX_FAILED
    assert unfinished_uploads(settings, key) == []
