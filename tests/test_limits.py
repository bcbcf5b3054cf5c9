"""Limits on what a client may ask: bodies, request rates, unfinished jobs, source size and length.

Gateways with small limits run in-process against the session's real Postgres, Temporal and worker.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import create_key, leftover_work_dirs, no_object_for, submit, wait_terminal
from tests.media_site import MediaSite
from twister.config import Settings
from twister.gateway.app import create_app

SMALL_FILE_LIMIT = 1_000_000  # below the DASH clip's video stream


def limited_gateway(settings: Settings, key: str, **limits: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=limits)), headers={"x-api-key": key}) as client:
        yield client


@pytest.fixture(scope="module")
def small_files(settings: Settings, worker: object) -> Iterator[TestClient]:
    key = create_key(settings, "small-files")
    yield from limited_gateway(settings, key, max_file_size_bytes=SMALL_FILE_LIMIT)


def assert_over_limit(settings: Settings, api: httpx.Client, job_id: str, reason: str) -> dict[str, Any]:
    job = wait_terminal(api, job_id, timeout=60)
    assert job["status"] == "Warning" and job["error_type"] == "warning", job
    assert reason in job["error"] and "limit" in job["error"], job["error"]
    assert job["s3_url"] is None and no_object_for(settings, job_id)
    assert leftover_work_dirs(settings, job_id) == []
    return job


@pytest.mark.parametrize("field", ["url", "webhook_url"])
def test_control_characters_in_urls_are_400(api: httpx.Client, media: MediaSite, field: str) -> None:
    body = {"url": media.progressive_url, field: "http://host.example/x#\u0000"}
    response = api.post("/jobs", json=body)
    assert response.status_code == 400 and field in response.json()["error"], response.text


def raw_request(gateway: str, head: str, body: bytes = b"", wait: float = 10) -> bytes:
    """Sends ``head`` and ``body`` (never ending the body) and returns what comes back in ``wait`` s."""
    host, port = httpx.URL(gateway).host, httpx.URL(gateway).port
    with socket.create_connection((host, port), timeout=wait) as conn:
        conn.sendall(head.encode() + b"\r\n" + body)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


def test_chunked_body_over_the_limit_is_refused_before_it_ends(gateway: str, api_key: str, settings: Settings) -> None:
    head = (
        f"POST /jobs HTTP/1.1\r\nHost: twister\r\nx-api-key: {api_key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    )
    size = settings.max_body_bytes + 1024
    chunk = f"{size:x}\r\n".encode() + b"[" * size + b"\r\n"  # the terminating chunk never comes
    answer = raw_request(gateway, head, chunk)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error"' in answer


def test_declared_oversized_body_is_refused_unread(gateway: str, api_key: str) -> None:
    head = f"POST /jobs HTTP/1.1\r\nHost: twister\r\nx-api-key: {api_key}\r\nContent-Length: 10000000000\r\n"
    answer = raw_request(gateway, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_unknown_paths_and_methods_answer_json(api: httpx.Client) -> None:
    slash = api.get("/jobs/", follow_redirects=False)
    assert slash.status_code == 404 and slash.json() == {"error": "Not found"}
    wrong_method = api.patch("/jobs/0b7c5a52-7c3f-4a43-9d53-0b0b0b0b0b0b")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["allow"]
    assert "error" in wrong_method.json()


def test_openapi_documents_the_create_body(api: httpx.Client) -> None:
    create = api.get("/openapi.json").json()["paths"]["/jobs"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["url"] and "webhook_url" in schema["properties"]
    assert {"201", "400", "401", "413", "422", "429", "503"} <= set(create["responses"])


def test_requests_over_the_rate_limit_get_429_with_retry_after(settings: Settings) -> None:
    key = create_key(settings, "rate-limited")
    for client in limited_gateway(settings, key, rate_limit_per_minute=3):
        statuses = [client.get("/jobs/0b7c5a52-7c3f-4a43-9d53-0b0b0b0b0b0b").status_code for _ in range(4)]
        assert statuses == [404, 404, 404, 429]
        limited = client.get("/jobs/0b7c5a52-7c3f-4a43-9d53-0b0b0b0b0b0b")
        assert limited.status_code == 429 and "Rate limit" in limited.json()["error"]
        assert 1 <= int(limited.headers["retry-after"]) <= 20


@pytest.mark.usefixtures("worker")
def test_unfinished_jobs_per_key_are_capped(settings: Settings, media: MediaSite) -> None:
    key = create_key(settings, "one-at-a-time")
    for client in limited_gateway(settings, key, max_unfinished_jobs_per_key=1):
        first = submit(client, url=media.slow_dash_url)
        refused = client.post("/jobs", json={"url": media.progressive_url})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0, refused.text
        assert "unfinished" in refused.json()["error"]
        assert wait_terminal(client, first, timeout=120)["status"] == "Completed"
        assert wait_terminal(client, submit(client, url=media.progressive_url))["status"] == "Completed"


def test_endless_source_stops_at_the_size_limit(small_files: TestClient, settings: Settings, media: MediaSite) -> None:
    url = media.endless_url()
    assert_over_limit(settings, small_files, submit(small_files, url=url), "File too large")
    # the download stopped, it did not just stop counting: the source soon sends no more (what the
    # socket buffers and the egress proxy's reads still take just after the end may trickle in)
    deadline, sent = time.monotonic() + 15, -1
    while media.endless_sent(url) != sent:
        assert time.monotonic() < deadline, f"the source was still being read: {media.endless_sent(url)} bytes"
        sent = media.endless_sent(url)
        time.sleep(1)
    assert sent < SMALL_FILE_LIMIT + 32 * 1024**2


def test_announced_size_over_the_limit_is_refused_before_the_body(
    small_files: TestClient, settings: Settings, media: MediaSite
) -> None:
    url = media.endless_url(announced=5 * 1024**3)
    assert_over_limit(settings, small_files, submit(small_files, url=url), "announced as 5368709120 bytes")
    # at most what the socket buffers and the egress proxy's 1 MiB reads took before the refusal
    assert media.endless_sent(url) < 32 * 1024**2


def test_segmented_source_over_the_size_limit_is_counted(
    small_files: TestClient, settings: Settings, media: MediaSite
) -> None:
    assert_over_limit(settings, small_files, submit(small_files, url=media.hls_url), "File too large")


@pytest.mark.usefixtures("worker")
def test_source_longer_than_the_limit_ends_warning(settings: Settings, media: MediaSite) -> None:
    key = create_key(settings, "short-videos")
    for client in limited_gateway(settings, key, max_duration_seconds=2):  # the clip lasts 4 s
        job = assert_over_limit(settings, client, submit(client, url=media.dash_url), "4 s long")
        assert "limit of 2 s" in job["error"]
