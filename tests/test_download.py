"""Download step on the real downloader: it keeps heartbeating while the source is slow to answer."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from tests.media_site import MediaSite
from twister.activities.download import DownloadActivities
from twister.config import Settings
from twister.models import DownloadResult, JobOptions, StepRequest
from twister.net.egress import EgressProxy
from twister.worker.workdirs import WorkDirs

HEARTBEAT_TIMEOUT = timedelta(seconds=1)


def test_slow_extraction_keeps_heartbeating(settings: Settings, media: MediaSite, tmp_path: Path) -> None:
    """yt-dlp's info step reports no progress; a source that takes two heartbeat timeouts to
    answer must not look like a dead step."""
    beats: list[dict[str, Any]] = []
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    env.on_heartbeat = lambda *details: beats.append(details[0])
    delay = 2 * int(HEARTBEAT_TIMEOUT.total_seconds())
    url = media.delayed_url(delay, media.library.progressive)

    with EgressProxy(settings.allowed_network_list) as proxy:
        activities = DownloadActivities(settings, WorkDirs(tmp_path / "work"), proxy.url)
        result = env.run(activities.download, StepRequest("job", url, JobOptions(), settings.job_limits()))

    assert result.title and result.native_video_codec == "h264"
    before_any_progress = [beat for beat in beats if "downloaded_bytes" not in beat]
    # at least one heartbeat per timeout while the source kept the downloader waiting
    assert len(before_any_progress) >= delay / HEARTBEAT_TIMEOUT.total_seconds()


class CountingDownload(DownloadActivities):
    """The downloader's work stood in for by a plain Python loop, where an exception raised into the
    thread from outside would land."""

    steps = 0

    def _download(self, request: StepRequest, attempt: int) -> DownloadResult:
        for self.steps in range(1, 21):
            time.sleep(0.05)
        raise AssertionError("a cancelled download does not return")


def test_cancel_never_interrupts_the_downloader_mid_step(settings: Settings, tmp_path: Path) -> None:
    """Cancellation waits for the step's own check (the progress hook): raised into the thread at a
    random point it can land in one of yt-dlp's lazy imports and break that module for good."""
    env = ActivityEnvironment()
    activities = CountingDownload(settings, WorkDirs(tmp_path), "http://127.0.0.1:9")
    threading.Timer(0.2, env.cancel).start()
    with pytest.raises(CancelledError):
        env.run(activities.download, StepRequest("job", "https://example.com/v", JobOptions(), settings.job_limits()))
    assert activities.steps == 20
