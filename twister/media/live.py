"""Live recording: ffmpeg reads a live HLS stream until it ends or the recording's time is up.

yt-dlp's own live download (its ffmpeg downloader) reports no progress and stops only by being
killed, so the download step runs ffmpeg itself for a live source. The recording is MPEG-TS: it stays
readable however ffmpeg stops, and the mux step makes the asked container from it as from any
download. ffmpeg reaches the source only through the egress proxy, so the SSRF guard sees every
playlist and segment request.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from twister.media.binaries import die_with_worker
from twister.net.egress import without_proxy_variables

WATCH_INTERVAL = 0.5
"""How often (s) the recording's progress is looked at, also while the stream stalls."""

_STOP_TIMEOUT = 10.0
_READ_TIMEOUT_US = 30_000_000
"""A source silent this long ends a read (as the downloader's socket timeout): a segment is skipped,
a playlist that stops answering ends the recording."""


class RecordingFailed(Exception):
    """ffmpeg ended the recording with an error (not the stream's end, not its time being up)."""


@dataclass
class RecordingProgress:
    seconds: float = 0.0
    bytes: int = 0

    def details(self, max_duration: int | None, elapsed: float) -> dict[str, Any]:
        """Heartbeat details: the recorded seconds, and percent and ETA towards ``max_duration`` when one
        was asked (a stream may end sooner)."""
        return {
            "recorded_seconds": round(self.seconds, 1),
            "downloaded_bytes": self.bytes,
            "percent": round(min(100.0, 100 * self.seconds / max_duration), 1) if max_duration else None,
            "eta_s": max(0, round(max_duration - self.seconds)) if max_duration else None,
            "speed_mbps": round(self.bytes / 1e6 / elapsed, 3) if elapsed > 0 else 0.0,
        }


def recording_arguments(formats: Sequence[dict[str, Any]], output: Path, from_start: bool, seconds: int) -> list[str]:
    """ffmpeg reads each chosen format (a video with or without audio, maybe a separate audio) and
    copies its streams, for at most ``seconds``. ``from_start``: from the oldest segment the playlist
    still lists, else from the live edge (ffmpeg's default: three segments before the newest). The
    headers the downloader would send (user agent, referer ...) go along, as yt-dlp's ffmpeg
    downloader passes them."""
    args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1"]
    for fmt in formats:
        args += ["-rw_timeout", str(_READ_TIMEOUT_US)]
        if headers := fmt.get("http_headers"):
            args += ["-headers", "".join(f"{name}: {value}\r\n" for name, value in headers.items())]
        if from_start and str(fmt.get("protocol", "")).startswith("m3u8"):
            args += ["-live_start_index", "0"]
        args += ["-i", fmt["url"]]
    for index in range(len(formats)):
        args += ["-map", f"{index}:v?", "-map", f"{index}:a?"]
    return [*args, "-c", "copy", "-t", str(seconds), "-f", "mpegts", "-y", str(output)]


def record(
    ffmpeg: str, args: list[str], proxy: str, log: Path, watch: Callable[[RecordingProgress], None]
) -> RecordingProgress:
    """Runs ffmpeg until it ends by itself: the stream ended, or its time is up. ``watch`` sees the
    progress every ``WATCH_INTERVAL`` and may raise to end the recording early (cancelled, too large):
    ffmpeg is then stopped gracefully, which leaves a readable file, and the exception passes on."""
    progress = RecordingProgress()
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [ffmpeg, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=_through_proxy(proxy),
            preexec_fn=die_with_worker,
        )
    assert process.stdout is not None
    reader = threading.Thread(target=_read_progress, args=(process.stdout, progress), name="recording", daemon=True)
    reader.start()
    try:
        while True:
            watch(progress)
            try:
                process.wait(timeout=WATCH_INTERVAL)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        _stop(process)
        reader.join()
    if process.returncode != 0:
        last = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise RecordingFailed(f"the live recording stopped with ffmpeg exit {process.returncode}: {last[0]}")
    watch(progress)  # the final size counts too
    return progress


def _through_proxy(proxy: str) -> dict[str, str]:
    """ffmpeg's environment: every HTTP(S) request through ``proxy``, with no bypass list."""
    return without_proxy_variables(os.environ) | {"http_proxy": proxy}


def _read_progress(stream: IO[bytes], progress: RecordingProgress) -> None:
    for line in stream:
        key, _, value = line.decode(errors="replace").strip().partition("=")
        if key == "out_time_us" and value.isdigit():
            progress.seconds = int(value) / 1e6
        elif key == "total_size" and value.isdigit():
            progress.bytes = int(value)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets ffmpeg finish the file; one that does not react is killed."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
