"""What an operator watches: the gateway's and the worker's Prometheus metrics after a real job, JSON
log lines that name the job, and /ready naming the dependency that does not answer, quickly.

The module runs a gateway and a worker of its own on a task queue of their own (so the job and every
count are theirs alone), logging JSON; the gateway reaches Temporal, Postgres and S3 through fault
proxies.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import submit, wait_terminal
from tests.fault_proxy import FaultProxy, Mode, via
from tests.media_site import MediaSite
from twister.config import Settings
from twister.embedded.children import twister_process, wait_gateway_ready
from twister.embedded.process import ManagedProcess, free_port
from twister.logs import JsonFormatter

READY_TIMEOUT = 1.0


@dataclass
class Observed:
    api: httpx.Client
    gateway: ManagedProcess
    worker: ManagedProcess
    worker_metrics_url: str
    proxies: dict[str, FaultProxy]


@pytest.fixture(scope="module")
def observed(settings: Settings, api_key: str, start_worker: Callable[..., ManagedProcess]) -> Iterator[Observed]:
    queue = f"observed-{uuid.uuid4().hex[:8]}"
    metrics_address = f"127.0.0.1:{free_port()}"
    worker = start_worker(
        "worker-observed",
        TWISTER_TEMPORAL_TASK_QUEUE=queue,
        TWISTER_LOG_FORMAT="json",
        TWISTER_WORKER_METRICS_ADDRESS=metrics_address,
    )
    with (
        FaultProxy(settings.temporal_port) as temporal,
        FaultProxy(settings.database_port) as postgres,
        FaultProxy(settings.s3_port) as s3,
    ):
        port = free_port()
        gateway = twister_process(
            settings,
            "gateway-observed",
            "gateway",
            TWISTER_API_PORT=str(port),
            TWISTER_TEMPORAL_TASK_QUEUE=queue,
            TWISTER_LOG_FORMAT="json",
            TWISTER_TEMPORAL_ADDRESS=f"127.0.0.1:{temporal.port}",
            TWISTER_DATABASE_URL=via(settings.database_url, postgres),
            TWISTER_S3_ENDPOINT_URL=via(settings.s3_endpoint_url, s3),
            TWISTER_READY_TIMEOUT=str(READY_TIMEOUT),
        ).start()
        try:
            url = f"http://127.0.0.1:{port}"
            wait_gateway_ready(gateway, url)
            with httpx.Client(base_url=url, headers={"x-api-key": api_key}, timeout=30) as api:
                yield Observed(
                    api,
                    gateway,
                    worker,
                    f"http://{metrics_address}/metrics",
                    {"Temporal": temporal, "Postgres": postgres, "S3": s3},
                )
        finally:
            gateway.stop()


@pytest.fixture(scope="module")
def job(observed: Observed, media: MediaSite) -> dict[str, Any]:
    """A job whose first download attempt fails (a 503), then completes."""
    url = media.flaky_url(1, media.library.progressive) + "?observed"  # a flaky counter of its own
    finished = wait_terminal(observed.api, submit(observed.api, url=url))
    assert finished["status"] == "Completed" and finished["download_retries"] == 1, finished
    return finished


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text as ``{sample name: [(labels, value)]}``."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    """The sum of the ``name`` samples that have these labels (0 when there are none)."""
    return sum(v for have, v in found.get(name, []) if labels.items() <= have.items())


def test_gateway_metrics_count_requests_by_route_template_and_jobs_by_status(
    observed: Observed, job: dict[str, Any]
) -> None:
    assert observed.api.get(f"/jobs/{uuid.uuid4()}").status_code == 404
    unknown_path = f"/files/{uuid.uuid4()}"
    assert observed.api.get(unknown_path).status_code == 404
    assert observed.api.post("/jobs", content=b"x" * 100_000).status_code == 413
    response = httpx.get(f"{observed.api.base_url}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)

    requests = "twister_http_requests_total"
    assert value(found, requests, method="POST", route="/jobs", status="201") == 1
    assert value(found, requests, method="GET", route="/jobs/{job_id}", status="200") >= 1
    assert value(found, requests, method="GET", route="/jobs/{job_id}", status="404") == 1
    assert value(found, requests, method="POST", route="unrouted", status="413") == 1  # refused before routing
    assert value(found, requests, method="GET", route="unrouted", status="404") == 1
    assert value(found, "twister_http_request_duration_seconds_count", method="POST", route="/jobs") == 1
    assert job["id"] not in response.text and unknown_path not in response.text  # no path with an id as label
    assert value(found, "twister_jobs", status="Completed") >= 1


def test_worker_metrics_have_activity_durations_retries_bytes_and_the_sdks(
    observed: Observed, job: dict[str, Any], media: MediaSite
) -> None:
    response = httpx.get(observed.worker_metrics_url, timeout=10)
    assert response.status_code == 200
    found = samples(response.text)

    durations = "twister_activity_duration_seconds_count"
    assert value(found, durations, activity_type="download", outcome="failed") == 1
    assert value(found, durations, activity_type="download", outcome="completed") == 1
    assert value(found, durations, activity_type="upload", outcome="completed") == 1
    assert value(found, "twister_activity_retries_total", activity_type="download") == 1
    source_size = media.library.path(media.library.progressive).stat().st_size
    assert value(found, "twister_downloaded_bytes_total") == source_size
    assert value(found, "twister_uploaded_bytes_total") == job["file_size"]
    assert any(name.startswith("temporal_") for name in found), sorted(found)


def test_a_workflows_log_line_names_its_job() -> None:
    """The workflow's own lines (its logger, in the sandbox) carry the job id too: the workflow id."""
    record = logging.LogRecord("temporalio.workflow", logging.WARNING, __file__, 1, "worker gone", None, None)
    record.temporal_workflow = {"workflow_id": "job-1", "workflow_type": "DownloadJob"}
    assert json.loads(JsonFormatter().format(record))["job_id"] == "job-1"


def ready_answer(observed: Observed) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = observed.api.get("/ready")
    return response, time.monotonic() - started


def wait_ready(observed: Observed, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (response := ready_answer(observed)[0]).status_code != 200:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.3)
    assert response.json() == {"status": "ready"}


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
@pytest.mark.parametrize("dependency", ["Postgres", "S3", "Temporal"])
def test_ready_names_the_dependency_that_does_not_answer(observed: Observed, dependency: str, mode: Mode) -> None:
    wait_ready(observed)
    proxy = observed.proxies[dependency]
    proxy.set_mode(mode)
    try:
        response, seconds = ready_answer(observed)
    finally:
        proxy.set_mode("pass")
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert f"{dependency} unreachable" in error and error.count("unreachable") == 1, error
    assert seconds < 5
    wait_ready(observed)


def json_lines(process: ManagedProcess) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in process.log_path.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    return lines


def test_json_logs_name_the_job(observed: Observed, job: dict[str, Any]) -> None:
    """Last in the module: the lines logged while /ready's dependencies were down are JSON too."""
    gateway = [line for line in json_lines(observed.gateway) if line.get("job_id") == job["id"]]
    assert any("created" in line["message"] for line in gateway), gateway

    worker = [line for line in json_lines(observed.worker) if line.get("job_id") == job["id"]]
    messages = " | ".join(line["message"] for line in worker)
    for step in ("download failed", "download completed", "mux completed", "upload completed"):
        assert step in messages, messages
