"""Download step on the real downloader: it keeps heartbeating while the source is slow to answer."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment

from tests.media_site import MediaSite
from twister.activities.download import DownloadActivities
from twister.config import Settings
from twister.models import JobOptions, StepRequest
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
