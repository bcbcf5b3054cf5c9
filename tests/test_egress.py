"""SSRF through the downloader: every connection it makes, redirects included, passes the guard."""

from __future__ import annotations

import ipaddress
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from tests.conftest import submit
from tests.media_site import MediaSite
from twister.activities.download import DownloadActivities
from twister.config import Settings
from twister.embedded.process import ManagedProcess
from twister.gateway.app import create_app
from twister.models import DownloadResult, ErrorType, JobOptions, StepRequest
from twister.net.egress import EgressProxy
from twister.worker.workdirs import WorkDirs

ONLY_127_0_0_1 = "127.0.0.1/32"


def test_proxy_refuses_forbidden_destinations(media: MediaSite) -> None:
    with EgressProxy([ipaddress.ip_network(ONLY_127_0_0_1)]) as proxy, httpx.Client(proxy=proxy.url) as client:
        allowed = client.get(media.progressive_url)
        # one request per proxied connection, and the client is told so (else it may reuse a closed one)
        assert allowed.status_code == 200 and allowed.headers["connection"] == "close"
        refused = client.get(media.progressive_url.replace("127.0.0.1", "127.0.0.2"))
        assert refused.status_code == 403 and "TWISTER_ALLOWED_NETWORKS" in refused.text


def download(settings: Settings, tmp_path: Path, url: str) -> DownloadResult:
    guarded = settings.model_copy(update={"allowed_networks": ONLY_127_0_0_1})
    with EgressProxy(guarded.allowed_network_list) as proxy:
        activities = DownloadActivities(guarded, WorkDirs(tmp_path / "work"), proxy.url)
        return ActivityEnvironment().run(
            activities.download, StepRequest("job", url, JobOptions(), settings.job_limits())
        )


def test_redirect_to_allowed_host_is_followed(settings: Settings, media: MediaSite, tmp_path: Path) -> None:
    target = f"{media.progressive_url}?via={uuid.uuid4().hex}"  # a URL only this test asks for
    result = download(settings, tmp_path, media.redirect_url(target))

    target_path = target.removeprefix(media.base_url)
    assert [status for _, path, status in media.requests if path == target_path][-1] in (200, 206)
    assert result.video_path is not None
    assert Path(result.video_path).read_bytes() == media.library.path(media.library.progressive).read_bytes()


def test_redirect_to_forbidden_network_is_refused(settings: Settings, media: MediaSite, tmp_path: Path) -> None:
    forbidden = media.progressive_url.replace("127.0.0.1", "127.0.0.2")
    with pytest.raises(ApplicationError) as raised:
        download(settings, tmp_path, media.redirect_url(forbidden))
    assert raised.value.type == ErrorType.FORBIDDEN_ADDRESS and raised.value.non_retryable, raised.value.message
    assert "127.0.0.2" in raised.value.message


def ffmpeg_environments(worker: ManagedProcess) -> list[dict[str, str]]:
    """The environments of the ffmpeg processes the worker runs now (they share its process group)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and os.getpgid(int(proc.name)) == worker.pid
                and b"ffmpeg" in (proc / "cmdline").read_bytes()
            ):
                pairs = (proc / "environ").read_bytes().split(b"\0")
                found.append(dict(pair.decode().partition("=")[::2] for pair in pairs if pair))
        except (OSError, ProcessLookupError):
            continue
    return found


def test_a_no_proxy_setting_does_not_open_a_way_around_the_guard(
    settings: Settings, start_worker: Callable[..., ManagedProcess], api_key: str, media: MediaSite
) -> None:
    """A clip is fetched by ffmpeg, which honours ``no_proxy``: a worker started with one must not pass
    it on, or the hosts it lists would be reached without the guard."""
    queue = "no-proxy-worker"
    worker = start_worker(queue, TWISTER_TEMPORAL_TASK_QUEUE=queue, no_proxy="127.0.0.1", NO_PROXY="127.0.0.1")
    app = create_app(settings.model_copy(update={"temporal_task_queue": queue}))
    with TestClient(app, headers={"x-api-key": api_key}) as api, media.slow_rate_of(20_000):
        job_id = submit(api, url=media.slow_url(media.library.hls), clip_start=0, clip_end=3)
        deadline, seen = time.monotonic() + 60, list[dict[str, str]]()
        while not seen and time.monotonic() < deadline:
            seen = ffmpeg_environments(worker)
            time.sleep(0.1)
        assert seen, "the clip's ffmpeg never ran"
        passed_on = sorted({name for env in seen for name in env if name.lower() == "no_proxy"})
        assert passed_on == [], passed_on
        assert all(env.get("http_proxy", "").startswith("http://127.0.0.1:") for env in seen)
        assert api.delete(f"/jobs/{job_id}").status_code == 200
