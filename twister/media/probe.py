"""Reads what a media file really contains with ffprobe."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MediaInfo:
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    duration: float | None
    frame_rate: float | None = None
    """Average frames per second of the video stream."""

    @property
    def quality(self) -> str:
        if self.width and self.height:
            return f"{min(self.width, self.height)}p"
        return "audio"


def probe(ffprobe: str, source: Path | str, proxy: str | None = None) -> MediaInfo:
    """``source``: a file, or a URL (read through ``proxy``, only as far as ffprobe needs)."""
    through = ["-http_proxy", proxy] if proxy else []
    completed = subprocess.run(
        [ffprobe, "-v", "error", *through, "-print_format", "json", "-show_streams", "-show_format", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data = json.loads(completed.stdout)
    streams = data.get("streams", [])
    video = next(
        (s for s in streams if s.get("codec_type") == "video" and s.get("disposition", {}).get("attached_pic") != 1),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = data.get("format", {}).get("duration")
    return MediaInfo(
        video_codec=video.get("codec_name") if video else None,
        audio_codec=audio.get("codec_name") if audio else None,
        width=video.get("width") if video else None,
        height=video.get("height") if video else None,
        duration=float(duration) if duration else None,
        frame_rate=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")) if video else None,
    )


def _rate(fraction: str | None) -> float | None:
    """ffprobe's ``"30000/1001"``; ``"0/0"`` (unknown) is None."""
    num, _, den = (fraction or "").partition("/")
    try:
        return float(num) / float(den or 1) or None
    except (ValueError, ZeroDivisionError):
        return None
