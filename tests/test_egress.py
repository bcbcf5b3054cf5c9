"""SSRF through the downloader: every connection it makes, redirects included, passes the guard."""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from tests.media_site import MediaSite
from twister.activities.download import DownloadActivities
from twister.config import Settings
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
