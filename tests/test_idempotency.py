"""x-idempotency-key: a repeat returns the first job (cached), a different body under the same key is
a 409, and concurrent repeats still make one job and one workflow."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import count_jobs, wait_terminal
from tests.media_site import MediaSite
from twister.config import Settings


@pytest.mark.usefixtures("worker")
def test_repeat_returns_the_first_job(api: httpx.Client, media: MediaSite, settings: Settings) -> None:
    key = {"x-idempotency-key": f"order-{uuid.uuid4()}"}
    first = api.post("/jobs", json={"url": media.progressive_url}, headers=key)
    assert first.status_code == 201 and "cached" not in first.json()
    repeat = api.post("/jobs", json={"url": media.progressive_url}, headers=key)
    assert repeat.status_code == 200 and repeat.json() == {"job_id": first.json()["job_id"], "cached": True}

    other_body = api.post("/jobs", json={"url": media.progressive_url, "format": "mkv"}, headers=key)
    assert other_body.status_code == 409 and "x-idempotency-key" in other_body.json()["error"]
    assert count_jobs(settings, "idempotency_key = $1", key["x-idempotency-key"]) == 1
    assert wait_terminal(api, first.json()["job_id"])["status"] == "Completed"


@pytest.mark.usefixtures("worker")
def test_concurrent_repeats_make_one_job(api: httpx.Client, media: MediaSite, settings: Settings) -> None:
    key = {"x-idempotency-key": f"burst-{uuid.uuid4()}"}

    def post(_: int) -> httpx.Response:
        return api.post("/jobs", json={"url": media.progressive_url}, headers=key)

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(post, range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["job_id"] for r in responses}) == 1
    assert count_jobs(settings, "idempotency_key = $1", key["x-idempotency-key"]) == 1
    assert wait_terminal(api, responses[0].json()["job_id"])["status"] == "Completed"


def test_bad_idempotency_key_is_400(api: httpx.Client, media: MediaSite) -> None:
    response = api.post("/jobs", json={"url": media.progressive_url}, headers={"x-idempotency-key": "k" * 256})
    assert response.status_code == 400 and "x-idempotency-key" in response.json()["error"]
