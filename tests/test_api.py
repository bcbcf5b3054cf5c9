"""The contract's auth and error answers: JSON errors with the right status, never a traceback."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import create_key, fetch, ffprobe_json, submit, wait_terminal
from tests.media_site import MediaSite
from twister.config import Settings
from twister.embedded.s3 import internal_ports
from twister.storage import s3_client


def test_missing_key_is_401(gateway: str) -> None:
    response = httpx.post(f"{gateway}/jobs", json={"url": "http://127.0.0.1/a.mp4"})
    assert (response.status_code, response.json()) == (401, {"error": "Missing x-api-key header"})
    assert httpx.get(f"{gateway}/jobs/{uuid.uuid4()}").status_code == 401


def test_wrong_key_is_401(gateway: str) -> None:
    response = httpx.get(f"{gateway}/jobs/{uuid.uuid4()}", headers={"x-api-key": "tw_not-a-key"})
    assert (response.status_code, response.json()) == (401, {"error": "Invalid API Key"})


def test_bearer_key_is_accepted(gateway: str, api_key: str, api: httpx.Client, media: MediaSite) -> None:
    job_id = submit(api, url=media.progressive_url)
    response = httpx.get(f"{gateway}/jobs/{job_id}", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200 and response.json()["id"] == job_id


def test_another_tenants_job_is_404(gateway: str, settings: Settings, api: httpx.Client, media: MediaSite) -> None:
    job_id = submit(api, url=media.progressive_url)
    other = create_key(settings, "other-tenant")
    response = httpx.get(f"{gateway}/jobs/{job_id}", headers={"x-api-key": other})
    assert (response.status_code, response.json()) == (404, {"error": "Job not found"})


@pytest.mark.parametrize("job_id", ["not-a-uuid", "1234", str(uuid.uuid4())])
def test_malformed_or_unknown_id_is_404(api: httpx.Client, job_id: str) -> None:
    response = api.get(f"/jobs/{job_id}")
    assert (response.status_code, response.json()) == (404, {"error": "Job not found"})


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"url": "ftp://example.com/a.mp4"}, 400, "url"),
        ({"url": "http:///a.mp4"}, 400, "url"),
        ({}, 400, "url"),
        ({"url": "http://127.0.0.1/a.mp4", "format": "avi"}, 400, "format"),
        ({"url": "http://127.0.0.1/a.mp4", "max_resolution": "999"}, 400, "max_resolution"),
        ({"url": "http://127.0.0.1/a.mp4", "format": "mp3"}, 400, "audio_only"),
        ({"url": "http://127.0.0.1/a.mp4", "webhook_url": "gopher://x"}, 400, "webhook_url"),
        ({"url": "http://127.0.0.1/a.mp4", "subtitle_langs": ["en", "../x"]}, 400, "subtitle_langs"),
        ({"url": "http://127.0.0.1/a.mp4", "subtitle_langs": []}, 400, "subtitle_langs"),
        ({"url": "http://127.0.0.1/a.mp4", "colour": "red"}, 400, "colour"),
        ({"url": "http://127.0.0.1/a.mp4", "format": "webm", "video_codec": "h265"}, 400, "h265 cannot go in a webm"),
        ({"url": "http://127.0.0.1/a.mp4", "audio_only": True, "video_codec": "vp9"}, 400, "video_codec"),
        ({"url": "http://127.0.0.1/a.mp4", "format": "mp3", "audio_only": True, "audio_codec": "aac"}, 400, "aac"),
        ({"url": "http://127.0.0.1/a.mp4", "video_codec": "mpeg2"}, 400, "video_codec"),
        ({"url": "http://127.0.0.1/a.mp4", "audio_codec": "opus"}, 400, "opus cannot go in a mp4"),
        ({"url": "http://127.0.0.1/a.mp4", "audio_bitrate": "100k"}, 400, "audio_bitrate"),
        ({"url": "http://127.0.0.1/a.mp4", "video_quality": 52}, 400, "video_quality"),
        ({"url": "http://127.0.0.1/a.mp4", "video_quality": "20"}, 422, "video_quality"),
        ({"url": "http://127.0.0.1/a.mp4", "quality_preset": "ultra"}, 400, "quality_preset"),
        ({"url": "http://127.0.0.1/a.mp4", "filename": "../etc/passwd"}, 400, "filename"),
        ({"url": "http://127.0.0.1/a.mp4", "filename": "a\\b"}, 400, "filename"),
        ({"url": "http://127.0.0.1/a.mp4", "filename": "x\u0000"}, 400, "filename"),
        ({"url": "http://127.0.0.1/a.mp4", "filename": "x" * 256}, 400, "filename"),
        ({"url": "http://127.0.0.1/a.mp4", "folder": "/abs"}, 400, "folder"),
        ({"url": "http://127.0.0.1/a.mp4", "folder": "a/../b"}, 400, "folder"),
        ({"url": "http://127.0.0.1/a.mp4", "folder": "  "}, 400, "folder"),
        ({"url": "http://127.0.0.1/a.mp4", "folder": "f" * 201}, 400, "folder"),
        ({"url": 42}, 422, "url"),
        ({"url": "http://127.0.0.1/a.mp4", "audio_only": "yes"}, 422, "audio_only"),
    ],
)
def test_bad_values_name_the_field(api: httpx.Client, body: dict[str, Any], status: int, names: str) -> None:
    response = api.post("/jobs", json=body)
    assert response.status_code == status, response.text
    assert names in response.json()["error"]


def test_twisters_own_services_are_never_a_target(api: httpx.Client, settings: Settings, media: MediaSite) -> None:
    """The session allows 127.0.0.0/8, where the media site runs; Temporal, Postgres, S3 (and its
    internal ports) and the gateway on the same addresses stay out of reach."""
    own = [
        settings.temporal_port,
        settings.database_port,
        settings.s3_port,
        settings.api_port,
        *internal_ports(settings),
    ]
    for port in own:
        for field in ("url", "webhook_url"):
            body = {"url": media.progressive_url, field: f"http://localhost:{port}/x"}
            response = api.post("/jobs", json=body)
            assert response.status_code == 400 and "twister's own services" in response.json()["error"], (port, field)


def test_private_source_refused_without_allowed_network(api: httpx.Client) -> None:
    response = api.post("/jobs", json={"url": "http://10.0.0.1/video.mp4"})
    assert response.status_code == 400 and "TWISTER_ALLOWED_NETWORKS" in response.json()["error"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"url"'])
def test_malformed_json_is_422(api: httpx.Client, content: bytes) -> None:
    response = api.post("/jobs", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "error" in response.json()


def test_oversized_body_is_413(api: httpx.Client) -> None:
    response = api.post("/jobs", json={"url": "http://127.0.0.1/" + "a" * 100_000})
    assert response.status_code == 413 and "error" in response.json()


@pytest.mark.usefixtures("worker")
def test_options_reach_the_delivered_file_under_its_name(
    api: httpx.Client, media: MediaSite, settings: Settings, tmp_path: Path
) -> None:
    options = {"video_codec": "h265", "audio_codec": "mp3", "audio_bitrate": "128k", "quality_preset": "low"}
    names = {"filename": "holiday clip", "folder": "clients/acme/"}
    job = wait_terminal(api, submit(api, url=media.dash_url, **options, **names), timeout=120)
    assert job["status"] == "Completed", job["error"]
    assert {name: job[name] for name in [*options, *names]} == {**options, **names}  # echoed as given
    stored = s3_client(settings).list_objects_v2(Bucket=settings.s3_bucket, Prefix="clients/acme/")
    assert [item["Key"] for item in stored.get("Contents", [])] == ["clients/acme/holiday clip.mp4"]
    delivered = fetch(job["s3_url"], tmp_path / "delivered.mp4")
    streams = {s["codec_type"]: s for s in ffprobe_json(settings, delivered)["streams"]}
    assert (streams["video"]["codec_name"], streams["audio"]["codec_name"]) == ("hevc", "mp3")
    assert abs(int(streams["audio"]["bit_rate"]) - 128_000) <= 0.15 * 128_000


@pytest.mark.usefixtures("worker")
def test_max_resolution_accepts_numbers_and_is_echoed(api: httpx.Client, media: MediaSite) -> None:
    job = wait_terminal(api, submit(api, url=media.progressive_url, max_resolution=720))
    assert job["status"] == "Completed", job["error"]
    assert (job["max_resolution"], job["requested_quality"]) == ("720", "720")
