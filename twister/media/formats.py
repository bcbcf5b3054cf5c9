"""Which of a source's formats to download for the requested resolution and container."""

from __future__ import annotations

from typing import Any

from twister.media.containers import container_for
from twister.models import JobOptions

Format = dict[str, Any]


def _has(codec: object) -> bool:
    """yt-dlp uses "none" for an absent stream and None for an unknown one (assumed present)."""
    return codec != "none"


def shorter_side(fmt: Format) -> int:
    width, height = fmt.get("width"), fmt.get("height")
    if width and height:
        return int(min(width, height))
    return int(height or width or 0)


def _bitrate(fmt: Format) -> float:
    return float(fmt.get("tbr") or fmt.get("vbr") or fmt.get("abr") or 0)


def _best_audio(formats: list[Format], options: JobOptions) -> Format | None:
    container = container_for(options)
    audio = [f for f in formats if not _has(f.get("vcodec")) and _has(f.get("acodec"))]
    if not audio:
        return None
    return max(audio, key=lambda f: (container.fits_audio(f.get("acodec")), _bitrate(f)))


def choose_formats(formats: list[Format], options: JobOptions) -> list[Format]:
    """Returns the formats to download: one video (with or without audio) plus, when that
    video carries no audio, the best separate audio stream; or a single audio stream.

    ``max_resolution`` caps the shorter side of the picture, so vertical video works; when no
    format fits under the cap, the smallest one above it is taken.
    """
    audio = _best_audio(formats, options)
    if options.audio_only and audio is not None:
        return [audio]
    videos = [f for f in formats if _has(f.get("vcodec"))]
    if not videos:
        return [audio] if audio is not None else []
    if options.audio_only:
        with_audio = [f for f in videos if _has(f.get("acodec"))]
        return [min(with_audio or videos, key=lambda f: (shorter_side(f), _bitrate(f)))]

    container = container_for(options)
    cap = options.resolution_cap
    fitting = [f for f in videos if cap is None or shorter_side(f) <= cap]
    if fitting:
        video = max(
            fitting,
            key=lambda f: (shorter_side(f), container.fits_video(f.get("vcodec")), _bitrate(f)),
        )
    else:
        video = min(videos, key=lambda f: (shorter_side(f), -_bitrate(f)))
    if video.get("acodec") == "none" and audio is not None:
        return [video, audio]
    return [video]
