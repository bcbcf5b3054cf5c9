"""The ffmpeg command line that joins downloaded streams into the requested container.

Streams are copied when the container can hold their codecs and no other codec was asked for;
only a stream that does not fit, or whose codec the job names, is re-encoded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from twister.media.containers import (
    AUDIO_ENCODERS,
    DEFAULT_AUDIO_BITRATE,
    VIDEO_ENCODERS,
    Container,
    normalize_codec,
)
from twister.models import DownloadResult, MuxRequest


def ffmpeg_arguments(
    request: MuxRequest, container: Container, output: Path, *, reserve_moov: bool = True
) -> list[str]:
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
        copies = all(args[args.index(flag) + 1] == "copy" for flag in ("-c:v", "-c:a") if flag in args)
        reserve = _moov_reserve(download) if reserve_moov and want_video and copies else None
        args += ["-moov_size", str(reserve)] if reserve else ["-movflags", "+faststart"]
    return [*args, "-f", container.ffmpeg_format, str(output)]


_APPLE = ("mp4", "mov", "ipod")

MOOV_RESERVE_TOO_SMALL = "reserved_moov_size is too small"
"""ffmpeg's error when the index outgrew the room left for it; the output is unusable then."""

_MOOV_FIXED_BYTES = 64 * 1024
_MOOV_BYTES_PER_VIDEO_FRAME = 24
_MOOV_BYTES_PER_AUDIO_FRAME = 16
_AUDIO_FRAMES_PER_SECOND = 50


def moov_room(args: list[str]) -> int | None:
    """The bytes an ffmpeg command line from ``ffmpeg_arguments`` reserves for the index, if it does.
    Such an output is written front to back; when ffmpeg ends it rewrites only the reserved room
    and the media data's header right after it."""
    return int(args[args.index("-moov_size") + 1]) if "-moov_size" in args else None


def media_data_start(path: Path) -> int | None:
    """Where the media data (the ``mdat`` box's payload) of an MP4/MOV file begins, or None."""
    with path.open("rb") as f:
        while len(header := f.read(16)) >= 8:
            size, kind = int.from_bytes(header[:4]), header[4:8]
            header_size = 8
            if size == 1:  # a 64-bit size follows the type
                size, header_size = int.from_bytes(header[8:16]), 16
            if kind == b"mdat":
                return f.tell() - len(header) + header_size
            if size < 8:
                return None
            f.seek(f.tell() - len(header) + size)
    return None


def _moov_reserve(download: DownloadResult) -> int | None:
    """Room for an MP4's index (moov) before its media data, so players can start before they have
    the whole file. ``+faststart`` gets that layout by rewriting the whole file once it is written; a
    stream copy instead reserves the room up front (``-moov_size``), and the file can be uploaded
    while it is written. The index takes ~8-9 bytes per audio or video frame with ffmpeg (H.264 and
    AAC), up to ~17 for video with B-frames (composition offsets), plus ~1-2 KB of headers and tags:
    24 and 16 bytes a frame and 64 KiB leave room; audio is counted at 50 frames a second (AAC at
    48 kHz makes 47, Opus 50, MP3 38). Re-encodes keep ``+faststart``: beside an encode that pass is
    small, and an index that outgrew its room would mean encoding again."""
    if not (download.media_duration and download.video_frame_rate):
        return None
    video = math.ceil(download.media_duration * download.video_frame_rate) * _MOOV_BYTES_PER_VIDEO_FRAME
    audio_frames = download.media_duration * _AUDIO_FRAMES_PER_SECOND if download.audio_path else 0
    return _MOOV_FIXED_BYTES + video + math.ceil(audio_frames) * _MOOV_BYTES_PER_AUDIO_FRAME


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
