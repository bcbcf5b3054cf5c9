"""yt-dlp finds ffmpeg and ffprobe only under those names; the configured binaries may be named
otherwise (the bundled ones are ``ffmpeg-linux-x64``), so it gets a folder of links to them."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path


@cache
def ffmpeg_folder(ffmpeg: str, ffprobe: str) -> str:
    """A private folder holding ``ffmpeg`` and ``ffprobe`` links to the given binaries."""
    folder = Path(tempfile.mkdtemp(prefix="twister-ffmpeg-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for name, target in (("ffmpeg", ffmpeg), ("ffprobe", ffprobe)):
        (folder / name).symlink_to(Path(target).resolve())
    return str(folder)
