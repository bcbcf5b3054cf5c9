"""Presigned URLs of finished jobs are reused for a short while instead of signed on every GET."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from twister.storage import PresignedUrls, S3Target, target_client


def _urls(
    monkeypatch: pytest.MonkeyPatch, ttl: int, max_entries: int = 4096
) -> tuple[PresignedUrls, list[str], list[float]]:
    """PresignedUrls on a clock the test moves, and the keys it signed, in order."""
    client = target_client(S3Target("http://127.0.0.1:9", "bucket", "us-east-1", "access", "secret"))
    signed: list[str] = []
    original = client.generate_presigned_url

    def counting(*args: Any, **kwargs: Any) -> str:
        signed.append(kwargs["Params"]["Key"])
        return str(original(*args, **kwargs))

    monkeypatch.setattr(client, "generate_presigned_url", counting)
    now = [1000.0]
    monkeypatch.setattr("twister.storage.time.monotonic", lambda: now[0])
    return PresignedUrls(client, ttl_seconds=ttl, reuse_seconds=60, max_entries=max_entries), signed, now


def test_a_url_is_reused_within_the_window_then_signed_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    urls, signed, now = _urls(monkeypatch, ttl=3600, max_entries=2)
    first = urls.url("bucket", "a.mp4")
    assert parse_qs(urlsplit(first).query)["X-Amz-Expires"] == ["3600"]
    assert urlsplit(first).path == "/bucket/a.mp4"
    now[0] += 59
    assert urls.url("bucket", "a.mp4") == first
    assert signed == ["a.mp4"]
    now[0] += 2  # older than the window: signed again
    urls.url("bucket", "a.mp4")
    assert signed == ["a.mp4", "a.mp4"]
    # bounded: beyond max_entries the least recently signed is dropped
    urls.url("bucket", "b.mp4")
    urls.url("bucket", "c.mp4")
    urls.url("bucket", "a.mp4")
    assert signed == ["a.mp4", "a.mp4", "b.mp4", "c.mp4", "a.mp4"]


def test_the_window_is_at_most_a_tenth_of_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    urls, signed, now = _urls(monkeypatch, ttl=100)
    urls.url("bucket", "a.mp4")
    now[0] += 9
    urls.url("bucket", "a.mp4")
    now[0] += 2
    urls.url("bucket", "a.mp4")
    assert signed == ["a.mp4", "a.mp4"]
