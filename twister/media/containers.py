"""What each output container can hold without re-encoding, and what to encode to when it cannot."""

from __future__ import annotations

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


@dataclass(frozen=True)
class Container:
    extension: str
    ffmpeg_format: str
    video_codecs: frozenset[str]
    audio_codecs: frozenset[str]
    video_encoder: tuple[str, ...]
    audio_encoder: tuple[str, ...]
    content_type: str

    def fits_video(self, codec: str | None) -> bool:
        return normalize_codec(codec) in self.video_codecs

    def fits_audio(self, codec: str | None) -> bool:
        return normalize_codec(codec) in self.audio_codecs


_MP4_VIDEO = frozenset({"h264", "hevc", "av1", "vp9"})
_MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3"})
_H264 = ("libx264", "-preset", "veryfast", "-crf", "23")
_AAC = ("aac", "-b:a", "192k")

CONTAINERS = {
    c.extension: c
    for c in (
        Container("mp4", "mp4", _MP4_VIDEO, _MP4_AUDIO, _H264, _AAC, "video/mp4"),
        Container(
            "mov", "mov", frozenset({"h264", "hevc"}), frozenset({"aac", "mp3", "alac"}), _H264, _AAC, "video/quicktime"
        ),
        Container("mkv", "matroska", _MP4_VIDEO | {"vp8"}, _MP4_AUDIO | {"vorbis"}, _H264, _AAC, "video/x-matroska"),
        Container(
            "webm",
            "webm",
            frozenset({"vp8", "vp9", "av1"}),
            frozenset({"opus", "vorbis"}),
            ("libvpx-vp9", "-b:v", "0", "-crf", "32", "-deadline", "realtime", "-cpu-used", "8"),
            ("libopus", "-b:a", "192k"),
            "video/webm",
        ),
        Container("m4a", "ipod", frozenset(), frozenset({"aac", "alac"}), (), _AAC, "audio/mp4"),
        Container("mp3", "mp3", frozenset(), frozenset({"mp3"}), (), ("libmp3lame", "-b:a", "192k"), "audio/mpeg"),
        Container(
            "ogg", "ogg", frozenset(), frozenset({"vorbis", "opus"}), (), ("libopus", "-b:a", "192k"), "audio/ogg"
        ),
        Container("opus", "opus", frozenset(), frozenset({"opus"}), (), ("libopus", "-b:a", "192k"), "audio/ogg"),
    )
}


def container_for(options: JobOptions) -> Container:
    return CONTAINERS[options.format]
