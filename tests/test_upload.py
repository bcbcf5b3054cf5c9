"""The upload step against the real S3 store: what it leaves in the bucket."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from tests.conftest import server_buckets
from tests.test_faults import PART_BYTES
from twister.activities.multipart import MIN_PART_BYTES, Bucket, Buckets, OpenUploads, PartLayout, send_part
from twister.activities.upload import UploadActivities
from twister.config import Settings
from twister.embedded.stack import EmbeddedStack
from twister.models import HandedOverUpload, UploadRequest
from twister.storage import s3_client
from twister.worker.workdirs import WorkDirs


class OverlappingAttempt:
    """An S3 client whose transfer starts while an earlier attempt of the same upload, still running
    (its heartbeat timed out under load), opens a multipart upload of the same key: after this
    attempt's sweep of unfinished uploads, so only a sweep at the end can drop it."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def upload_file(self, path: str, bucket: str, key: str, **kwargs: Any) -> None:
        self._client.create_multipart_upload(Bucket=bucket, Key=key)
        self._client.upload_file(path, bucket, key, **kwargs)


async def test_a_completed_upload_leaves_no_unfinished_multipart_upload_of_its_key(
    tmp_path: Path, settings: Settings, stack: EmbeddedStack
) -> None:
    client = s3_client(settings)
    workdirs = WorkDirs(tmp_path / "work")
    job_id = "overlapping-attempts"
    muxed = workdirs.fresh(job_id) / "video.mp4"
    muxed.write_bytes(os.urandom(2 * PART_BYTES))
    buckets = Buckets(
        Bucket(OverlappingAttempt(client), settings.s3_bucket),  # type: ignore[arg-type]
        lambda _job_id: asyncio.sleep(0, None),
        asyncio.get_running_loop(),
        "",
    )
    activities = UploadActivities(workdirs, buckets, PART_BYTES, OpenUploads())
    key = f"{job_id}.mp4"
    result = await asyncio.to_thread(
        ActivityEnvironment().run, activities.upload, UploadRequest(job_id, str(muxed), key)
    )
    assert result.file_size == 2 * PART_BYTES
    assert client.head_object(Bucket=settings.s3_bucket, Key=key)["ContentLength"] == 2 * PART_BYTES
    assert client.list_multipart_uploads(Bucket=settings.s3_bucket, Prefix=key).get("Uploads", []) == []


def handed_over_upload(client: Any, bucket: str, key: str, muxed: Path) -> HandedOverUpload:
    """A multipart upload of ``muxed`` whose part 2 was sent while muxing (part 1 is the head)."""
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    layout = PartLayout(MIN_PART_BYTES, MIN_PART_BYTES)
    sent = send_part(Bucket(client, bucket), key, upload_id, muxed, layout.part(2), on_read=lambda **_: None)
    return HandedOverUpload(upload_id, muxed.stat().st_size, layout.head_bytes, layout.part_bytes, [sent], 10)


@pytest.mark.parametrize("change", ["none", "upload gone", "file grew"])
async def test_the_upload_step_finishes_the_muxs_upload_or_sends_the_whole_file(
    tmp_path: Path, settings: Settings, stack: EmbeddedStack, change: str
) -> None:
    client = s3_client(settings)
    workdirs = WorkDirs(tmp_path / "work")
    job_id = f"handed-over-{change.replace(' ', '-')}"
    muxed = workdirs.fresh(job_id) / "video.mp4"
    muxed.write_bytes(os.urandom(3 * MIN_PART_BYTES + 1000))
    key = f"{job_id}.mp4"
    handed_over = handed_over_upload(client, settings.s3_bucket, key, muxed)
    if change == "upload gone":
        client.abort_multipart_upload(Bucket=settings.s3_bucket, Key=key, UploadId=handed_over.upload_id)
    if change == "file grew":
        with muxed.open("ab") as f:
            f.write(b"more")
    activities = UploadActivities(workdirs, server_buckets(settings), MIN_PART_BYTES, OpenUploads())

    result = await asyncio.to_thread(
        ActivityEnvironment().run, activities.upload, UploadRequest(job_id, str(muxed), key, handed_over=handed_over)
    )

    stored = client.get_object(Bucket=settings.s3_bucket, Key=key)["Body"].read()
    assert stored == muxed.read_bytes() and result.file_size == len(stored)
    assert client.list_multipart_uploads(Bucket=settings.s3_bucket, Prefix=key).get("Uploads", []) == []


def test_a_file_too_large_for_its_parts_is_not_sent_while_muxing() -> None:
    """Storage takes 10,000 parts at most: beyond that the upload step sends the file whole (boto3
    sizes the parts for it)."""
    layout = PartLayout.with_head_past(1, MIN_PART_BYTES)
    assert layout.fits(1024**3)
    assert not layout.fits(10_000 * MIN_PART_BYTES)
