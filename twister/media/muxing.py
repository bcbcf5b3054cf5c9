"""The ffmpeg command line that joins downloaded streams into the requested container.

Streams are copied when the container can hold their codecs; only a stream that does not fit
is re-encoded (audio to the container's usual codec, e.g. aac for mp4).
"""

from __future__ import annotations

from pathlib import Path

from twister.media.containers import Container
from twister.models import MuxRequest


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
