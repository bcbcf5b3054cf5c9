"""The ffmpeg command line that joins downloaded streams into the requested container.

Streams are copied when the container can hold their codecs and no other codec was asked for;
only a stream that does not fit, or whose codec the job names, is re-encoded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from twister.media.containers import (
    AUDIO_ENCODERS,
    DEFAULT_AUDIO_BITRATE,
    VIDEO_ENCODERS,
    Container,
    normalize_codec,
)
from twister.models import MuxRequest


def ffmpeg_arguments(request: MuxRequest, container: Container, output: Path) -> list[str]:
    download, options = request.download, request.options
    inputs = list(dict.fromkeys(p for p in (download.video_path, download.audio_path) if p))
    args = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats", "-progress", "pipe:1"]
    for path in inputs:
        args += ["-i", path]
    # a clip the downloader could not cut is cut here; exact cuts need a re-encode
    exact_cut = options.clipped and not download.clip_cut
    want_video = bool(download.video_path) and bool(container.video_codecs) and not options.audio_only
    if want_video:
        args += ["-map", f"{inputs.index(download.video_path or '')}:v:0"]
        video_default = container.video_default or "h264"
        codec = _target(options.video_codec, download.native_video_codec, container.video_codecs, video_default)
        args += _stream(
            "-c:v",
            codec,
            download.native_video_codec,
            exact_cut,
            lambda codec: (VIDEO_ENCODERS.get(codec) or VIDEO_ENCODERS[video_default])(options.crf),
        )
        if codec == "hevc" and container.ffmpeg_format in _APPLE:
            args += ["-tag:v", "hvc1"]  # the tag Apple players want for HEVC
    if download.audio_path:
        args += ["-map", f"{inputs.index(download.audio_path)}:a:0"]
        bitrate = options.audio_bitrate or DEFAULT_AUDIO_BITRATE
        args += _stream(
            "-c:a",
            _target(options.audio_codec, download.native_audio_codec, container.audio_codecs, container.audio_default),
            download.native_audio_codec,
            exact_cut,
            lambda codec: [AUDIO_ENCODERS.get(codec) or AUDIO_ENCODERS[container.audio_default], "-b:a", bitrate],
        )
    if exact_cut:
        args += ["-ss", str(options.clip_start or 0.0)]
        if options.clip_end is not None:
            args += ["-to", str(options.clip_end)]
    if container.ffmpeg_format in _APPLE:
        args += ["-movflags", "+faststart"]
    return [*args, "-f", container.ffmpeg_format, str(output)]


_APPLE = ("mp4", "mov", "ipod")


def _target(requested: str, native_codec: str | None, fits: frozenset[str], default: str) -> str:
    """The codec a stream leaves in: the requested one, else the source's when the container holds it
    (stream copy), else the container's usual one."""
    if requested != "copy":
        return normalize_codec(requested) or requested
    native = normalize_codec(native_codec)
    return native if native in fits else default


def _stream(
    flag: str, codec: str, native_codec: str | None, recut: bool, encoder: Callable[[str], list[str]]
) -> list[str]:
    """The ffmpeg options that give a stream ``codec``: a copy when the source has it already and no
    cut needs a re-encode."""
    if codec == normalize_codec(native_codec) and not recut:
        return [flag, "copy"]
    return [flag, *encoder(codec)]
