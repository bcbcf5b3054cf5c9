"""Downloader errors: content problems are final (Warning/Skipped), the rest retried."""

import pytest
from yt_dlp.utils import DownloadError, GeoRestrictedError

from twister.media.download_errors import classify_download_error
from twister.models import ErrorType


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "ERROR: [generic] missing: Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError>)",
            ErrorType.CONTENT_UNAVAILABLE,
        ),
        ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access", ErrorType.CONTENT_UNAVAILABLE),
        (
            "ERROR: [youtube] abc: Join this channel to get access to members-only content",
            ErrorType.CONTENT_UNAVAILABLE,
        ),
        ("ERROR: [generic] x: Unsupported URL: https://example.com/", ErrorType.CONTENT_UNAVAILABLE),
        ("ERROR: [foo] x: This video is DRM protected", ErrorType.DRM_PROTECTED),
        (
            "ERROR: [generic] p: Unable to download webpage: [Errno 111] Connection refused (caused by TransportError)",
            ErrorType.SOURCE_FAILED,
        ),
        ("ERROR: [generic] p: Unable to download webpage: HTTP Error 429: Too Many Requests", ErrorType.SOURCE_FAILED),
        ("ERROR: [youtube] abc: Sign in to confirm you're not a bot", ErrorType.SOURCE_FAILED),
        ("ERROR: [generic] p: HTTP Error 503: Service Unavailable", ErrorType.SOURCE_FAILED),
    ],
)
def test_classification_by_message(message: str, expected: ErrorType) -> None:
    error = classify_download_error(DownloadError(message), attempt=2)
    assert error.type == expected
    assert error.non_retryable == (expected != ErrorType.SOURCE_FAILED)
    assert error.details == (2,)
    assert "ERROR:" not in error.message and "caused by" not in error.message and "[generic]" not in error.message


def test_classification_by_class_and_no_library_name() -> None:
    error = classify_download_error(GeoRestrictedError("yt-dlp says: not here"), attempt=1)
    assert error.type == ErrorType.CONTENT_UNAVAILABLE
    assert "yt-dlp" not in error.message and "the downloader" in error.message
