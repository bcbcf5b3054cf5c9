"""Mux step on real ffmpeg: stream copy when codecs fit, and a cancelled mux leaves no ffmpeg behind."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from tests.conftest import moov_before_mdat, mux_activities
from tests.media_site import FFMPEG
from twister.config import Settings
from twister.media.containers import container_for
from twister.media.muxing import ffmpeg_arguments
from twister.media.probe import probe
from twister.models import DownloadResult, ErrorType, JobOptions, MuxRequest
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


def ffmpeg_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]


async def test_missing_streams_send_the_job_back_to_the_download(tmp_path: Path, settings: Settings) -> None:
    workdirs = WorkDirs(tmp_path / "work")
    workdirs.fresh("job")
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


async def test_cancelled_mux_kills_its_ffmpeg(tmp_path: Path, settings: Settings, long_video: Path) -> None:
    workdirs = WorkDirs(tmp_path / "work")
    workdirs.fresh("job")
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


async def test_index_that_outgrows_its_reserved_room_still_comes_first(tmp_path: Path, settings: Settings) -> None:
    """A source with more frames than it told (here 3,000, told 1): the copy's index outgrows the
    room reserved for it, and the delivered file still has its index first and plays to the end."""
    video = tmp_path / "many-frames.mp4"
    source = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x36:rate=100:duration=30",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ]
    subprocess.run([FFMPEG, "-v", "error", *source, str(video)], check=True)
    told = dataclasses.replace(request(video, None, JobOptions()).download, media_duration=1.0, video_frame_rate=1.0)
    workdirs = WorkDirs(tmp_path / "work")
    workdirs.fresh("job")

    result = await ActivityEnvironment().run(
        mux_activities(settings, workdirs).mux, MuxRequest("job", JobOptions(), told)
    )

    output = Path(result.path)
    assert moov_before_mdat(output)
    assert probe(settings.ffprobe_path, output).duration == pytest.approx(30, abs=0.1)
