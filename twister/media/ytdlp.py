"""What every yt-dlp run of twister shares: quiet logging, no cache, the bundled ffmpeg, the egress proxy."""

from __future__ import annotations

from typing import Any

from twister.config import Settings
from twister.media.binaries import ffmpeg_folder


class QuietLogger:
    """yt-dlp logger that keeps the worker's log readable; errors surface as exceptions."""

    def debug(self, msg: str) -> None: ...

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...

    def error(self, msg: str) -> None: ...


def base_params(settings: Settings, proxy: str) -> dict[str, Any]:
    """``proxy``: the egress proxy, so every connection passes the SSRF guard, redirects included."""
    return {
        "logger": QuietLogger(),
        "quiet": True,
        "noprogress": True,
        "cachedir": False,
        "socket_timeout": 30,
        "ffmpeg_location": ffmpeg_folder(settings.ffmpeg_path, settings.ffprobe_path),
        "proxy": proxy,
    }
