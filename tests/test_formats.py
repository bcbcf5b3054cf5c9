"""Format choice: max_resolution caps the shorter side; audio comes separately when needed."""

from twister.media.formats import choose_formats
from twister.models import JobOptions

DASH = [
    {"format_id": "v360", "vcodec": "avc1.64001e", "acodec": "none", "width": 640, "height": 360, "tbr": 500},
    {"format_id": "v720", "vcodec": "avc1.64001f", "acodec": "none", "width": 1280, "height": 720, "tbr": 1500},
    {"format_id": "a", "vcodec": "none", "acodec": "mp4a.40.2", "tbr": 128},
]
VERTICAL = [
    {"format_id": "p", "vcodec": "avc1", "acodec": "mp4a.40.2", "width": 720, "height": 1280, "tbr": 900},
    {"format_id": "s", "vcodec": "avc1", "acodec": "mp4a.40.2", "width": 360, "height": 640, "tbr": 300},
]


def ids(options: JobOptions, formats: list[dict[str, object]]) -> list[str]:
    return [str(f["format_id"]) for f in choose_formats(formats, options)]


def test_best_takes_largest_video_plus_separate_audio() -> None:
    assert ids(JobOptions(), DASH) == ["v720", "a"]


def test_cap_applies_to_shorter_side() -> None:
    assert ids(JobOptions(max_resolution="480"), DASH) == ["v360", "a"]
    assert ids(JobOptions(max_resolution="720"), VERTICAL) == ["p"]
    assert ids(JobOptions(max_resolution="480"), VERTICAL) == ["s"]


def test_nothing_fits_takes_next_best_above_cap() -> None:
    assert ids(JobOptions(max_resolution="360"), DASH[1:]) == ["v720", "a"]


def test_audio_only_takes_audio_stream_or_smallest_muxed() -> None:
    assert ids(JobOptions(format="m4a", audio_only=True), DASH) == ["a"]
    assert ids(JobOptions(format="m4a", audio_only=True), VERTICAL) == ["s"]
