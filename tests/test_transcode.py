"""The create options that shape the file (codecs, bitrate, quality, audio formats), each proven on
the file the real mux step makes from separate video and audio streams (as the downloader leaves them)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from tests.conftest import ffprobe_json, mux_activities
from tests.media_site import FFMPEG, MediaSite
from tests.test_mux import request
from twister.config import Settings
from twister.media.containers import container_for
from twister.media.muxing import ffmpeg_arguments
from twister.models import AudioBitrate, JobOptions, MuxRequest
from twister.worker.workdirs import WorkDirs


@dataclass(frozen=True)
class Streams:
    video: Path  # h264
    audio: Path  # aac


@pytest.fixture(scope="module")
def streams(media: MediaSite, tmp_path_factory: pytest.TempPathFactory) -> Streams:
    source = media.library.path(media.library.progressive)
    folder = tmp_path_factory.mktemp("streams")
    found = Streams(folder / "video.mp4", folder / "audio.m4a")
    for flag, path in (("-an", found.video), ("-vn", found.audio)):
        subprocess.run([FFMPEG, "-v", "error", "-i", str(source), flag, "-c", "copy", str(path)], check=True)
    return found


def mux_request(streams: Streams, options: JobOptions) -> MuxRequest:
    return request(streams.video, streams.audio, options)


async def mux(settings: Settings, tmp_path: Path, streams: Streams, options: JobOptions) -> dict[str, Any]:
    workdirs = WorkDirs(tmp_path / "work")
    workdirs.fresh("job")
    result = await ActivityEnvironment().run(mux_activities(settings, workdirs).mux, mux_request(streams, options))
    probed = ffprobe_json(settings, Path(result.path))
    probed["size"] = Path(result.path).stat().st_size
    return probed


def codecs(probed: dict[str, Any]) -> dict[str, str]:
    return {s["codec_type"]: s["codec_name"] for s in probed["streams"]}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (JobOptions(video_codec="h265"), {"video": "hevc", "audio": "aac"}),
        (JobOptions(format="webm", video_codec="vp9", audio_codec="opus"), {"video": "vp9", "audio": "opus"}),
        (JobOptions(format="mkv", video_codec="av1"), {"video": "av1", "audio": "aac"}),
        (JobOptions(format="mov", audio_codec="mp3"), {"video": "h264", "audio": "mp3"}),
        (JobOptions(format="mp3", audio_only=True), {"audio": "mp3"}),
        (JobOptions(format="ogg", audio_only=True), {"audio": "opus"}),
        (JobOptions(format="opus", audio_only=True), {"audio": "opus"}),
        (JobOptions(format="m4a", audio_only=True), {"audio": "aac"}),
    ],
    ids=lambda value: (
        value.format + "-" + value.video_codec + "-" + value.audio_codec if isinstance(value, JobOptions) else ""
    ),
)
async def test_codecs_and_containers(
    settings: Settings, tmp_path: Path, streams: Streams, options: JobOptions, expected: dict[str, str]
) -> None:
    probed = await mux(settings, tmp_path, streams, options)
    assert codecs(probed) == expected
    assert abs(float(probed["format"]["duration"]) - 4.0) < 0.2


async def test_hevc_in_mp4_is_tagged_for_apple_players(settings: Settings, tmp_path: Path, streams: Streams) -> None:
    probed = await mux(settings, tmp_path, streams, JobOptions(video_codec="h265"))
    video = next(s for s in probed["streams"] if s["codec_type"] == "video")
    assert video["codec_tag_string"] == "hvc1"


@pytest.mark.parametrize("bitrate", ["64k", "320k"])
async def test_audio_bitrate(settings: Settings, tmp_path: Path, streams: Streams, bitrate: AudioBitrate) -> None:
    probed = await mux(settings, tmp_path, streams, JobOptions(format="mp3", audio_only=True, audio_bitrate=bitrate))
    measured = int(probed["streams"][0]["bit_rate"])
    assert abs(measured - int(bitrate[:-1]) * 1000) <= 0.15 * int(bitrate[:-1]) * 1000


async def test_quality_preset_and_crf_set_the_quality_of_a_reencode(
    settings: Settings, tmp_path: Path, streams: Streams
) -> None:
    sizes = {
        name: (await mux(settings, tmp_path / name, streams, options))["size"]
        for name, options in {
            "highest": JobOptions(video_codec="h265", quality_preset="highest"),
            "lowest": JobOptions(video_codec="h265", quality_preset="lowest"),
            "crf 45": JobOptions(video_codec="h265", video_quality=45),
        }.items()
    }
    assert sizes["highest"] > 1.5 * sizes["lowest"] > 1.5 * sizes["crf 45"], sizes


def test_asked_codec_equal_to_the_source_stays_a_copy(tmp_path: Path, streams: Streams) -> None:
    options = JobOptions(video_codec="h264", audio_codec="aac", audio_bitrate="64k")
    args = ffmpeg_arguments(mux_request(streams, options), container_for(options), tmp_path / "out.mp4")
    assert args[args.index("-c:v") + 1] == "copy" and args[args.index("-c:a") + 1] == "copy"
