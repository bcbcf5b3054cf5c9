"""What each output container can hold without re-encoding, and what to encode to when it cannot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twister.models import JobOptions

_CODEC_PREFIXES = {
    "avc": "h264",
    "h264": "h264",
    "hev": "hevc",
    "hvc": "hevc",
    "hevc": "hevc",
    "h265": "hevc",
    "vp09": "vp9",
    "vp9": "vp9",
    "vp8": "vp8",
    "av01": "av1",
    "av1": "av1",
    "mp4a": "aac",
    "aac": "aac",
    "opus": "opus",
    "vorbis": "vorbis",
    "mp3": "mp3",
    "ac-3": "ac3",
    "ac3": "ac3",
    "ec-3": "eac3",
    "eac3": "eac3",
    "flac": "flac",
    "alac": "alac",
}


def normalize_codec(codec: str | None) -> str | None:
    """Maps yt-dlp codec strings ("avc1.64001f", "mp4a.40.2") and ffprobe names to one name."""
    if not codec or codec == "none":
        return None
    lowered = codec.lower()
    for prefix in sorted(_CODEC_PREFIXES, key=len, reverse=True):
        if lowered.startswith(prefix):
            return _CODEC_PREFIXES[prefix]
    return lowered.split(".", 1)[0]


def _crf63(crf: int) -> str:
    """x264's 0-51 quality scale on the 0-63 scale of VP9 and AV1 encoders."""
    return str(round(crf * 63 / 51))


VIDEO_ENCODERS: dict[str, Callable[[int], list[str]]] = {
    "h264": lambda crf: ["libx264", "-preset", "veryfast", "-crf", str(crf)],
    "hevc": lambda crf: ["libx265", "-preset", "veryfast", "-crf", str(crf), "-x265-params", "log-level=error"],
    "vp9": lambda crf: ["libvpx-vp9", "-b:v", "0", "-crf", _crf63(crf), "-deadline", "realtime", "-cpu-used", "8"],
    "av1": lambda crf: ["libsvtav1", "-crf", _crf63(crf), "-preset", "10"],
}
"""The encoder command of each video codec twister can make, at a CRF on x264's scale."""

AUDIO_ENCODERS = {"aac": "aac", "opus": "libopus", "mp3": "libmp3lame"}
DEFAULT_AUDIO_BITRATE = "192k"


@dataclass(frozen=True)
class Container:
    """``video_codecs``/``audio_codecs`` it can hold; a stream that must be re-encoded without a
    requested codec becomes ``video_default``/``audio_default``."""

    extension: str
    ffmpeg_format: str
    video_codecs: frozenset[str]
    audio_codecs: frozenset[str]
    video_default: str | None
    audio_default: str
    content_type: str

    def fits_video(self, codec: str | None) -> bool:
        return normalize_codec(codec) in self.video_codecs

    def fits_audio(self, codec: str | None) -> bool:
        return normalize_codec(codec) in self.audio_codecs


_MP4_VIDEO = frozenset({"h264", "hevc", "av1", "vp9"})
_MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3"})
_OPUS = frozenset({"opus"})

CONTAINERS = {
    c.extension: c
    for c in (
        Container("mp4", "mp4", _MP4_VIDEO, _MP4_AUDIO, "h264", "aac", "video/mp4"),  # opus in mp4 plays in few players
        Container(
            "mov",
            "mov",
            frozenset({"h264", "hevc"}),
            frozenset({"aac", "mp3", "alac"}),
            "h264",
            "aac",
            "video/quicktime",
        ),
        Container(
            "mkv", "matroska", _MP4_VIDEO | {"vp8"}, _MP4_AUDIO | _OPUS | {"vorbis"}, "h264", "aac", "video/x-matroska"
        ),
        Container("webm", "webm", frozenset({"vp8", "vp9", "av1"}), _OPUS | {"vorbis"}, "vp9", "opus", "video/webm"),
        Container("m4a", "ipod", frozenset(), frozenset({"aac", "alac"}), None, "aac", "audio/mp4"),
        Container("mp3", "mp3", frozenset(), frozenset({"mp3"}), None, "mp3", "audio/mpeg"),
        Container("ogg", "ogg", frozenset(), _OPUS | {"vorbis"}, None, "opus", "audio/ogg"),
        Container("opus", "opus", frozenset(), _OPUS, None, "opus", "audio/ogg"),
    )
}


def container_for(options: JobOptions) -> Container:
    return CONTAINERS[options.format]
