"""Running the ffmpeg binaries: as children that die with the worker, and found by yt-dlp.

yt-dlp finds ffmpeg and ffprobe only under those names; the configured binaries may be named
otherwise (the bundled ones are ``ffmpeg-linux-x64``), so it gets a folder of links to them."""

from __future__ import annotations

import atexit
import ctypes
import shutil
import signal
import tempfile
from functools import cache
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_worker() -> None:
    """``preexec_fn`` of an ffmpeg child: the kernel kills it if the worker dies, even by kill -9."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@cache
def ffmpeg_folder(ffmpeg: str, ffprobe: str) -> str:
    """A private folder holding ``ffmpeg`` and ``ffprobe`` links to the given binaries."""
    folder = Path(tempfile.mkdtemp(prefix="twister-ffmpeg-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for name, target in (("ffmpeg", ffmpeg), ("ffprobe", ffprobe)):
        (folder / name).symlink_to(Path(target).resolve())
    return str(folder)
