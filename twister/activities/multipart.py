"""Multipart uploads of a job's file, shared by the mux step (parts sent while ffmpeg writes) and the
upload step (the rest, then completion): where a job's files go, how the file is cut into parts,
sending one part, and the uploads a worker has open."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.utils import MAX_PARTS, MIN_UPLOAD_CHUNKSIZE, ReadFileChunk
from temporalio.exceptions import ApplicationError

from twister.models import ErrorType, SentPart
from twister.storage import S3Target, target_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

PARTS_IN_FLIGHT = 10
"""Parts one job sends at once (boto3's own transfers send as many)."""

STORAGE_ERRORS = (BotoCoreError, ClientError)

MIN_PART_BYTES = MIN_UPLOAD_CHUNKSIZE
"""Storage refuses a smaller part but the last (boto3's transfers raise a smaller part size to it too)."""


@dataclass(frozen=True)
class Bucket:
    client: S3Client
    name: str


class Buckets:
    """Where a job's files go: the server's bucket, or the job's own target, read (sealed) from its row
    through ``own_storage`` on ``loop``, the worker's event loop that owns the pool, and reached
    through the egress proxy."""

    def __init__(
        self,
        server: Bucket,
        own_storage: Callable[[str], Coroutine[Any, Any, S3Target | None]],
        loop: asyncio.AbstractEventLoop,
        egress_proxy_url: str,
    ) -> None:
        self._server = server
        self._own_storage = own_storage
        self._loop = loop
        self._proxy = egress_proxy_url

    async def of_job(self, job_id: str, own_storage: bool) -> Bucket:
        """On the worker's event loop (an async step)."""
        if not own_storage:
            return self._server
        target = await self._own_storage(job_id)
        if target is None:
            raise ApplicationError("The job's storage target is gone from its row", type=ErrorType.STORAGE_FAILED)
        client = await asyncio.to_thread(target_client, target, proxy=self._proxy)
        return Bucket(client, target.bucket)

    def of_job_blocking(self, job_id: str, own_storage: bool) -> Bucket:
        """From a step's own thread."""
        if not own_storage:
            return self._server
        return asyncio.run_coroutine_threadsafe(self.of_job(job_id, own_storage), self._loop).result(timeout=60)


@dataclass(frozen=True)
class PartRange:
    number: int
    offset: int
    length: int


@dataclass(frozen=True)
class PartLayout:
    """Part 1 is the file's first ``head_bytes`` (a multiple of ``part_bytes``), each later part
    ``part_bytes``, the last one what is left."""

    head_bytes: int
    part_bytes: int

    @classmethod
    def with_head_past(cls, head_end: int, part_bytes: int) -> PartLayout:
        """The layout whose part 1 holds at least the first ``head_end`` bytes, with parts of
        ``part_bytes`` or storage's smallest, if larger."""
        part_bytes = max(part_bytes, MIN_PART_BYTES)
        return cls(max(1, math.ceil(head_end / part_bytes)) * part_bytes, part_bytes)

    def part(self, number: int) -> PartRange:
        """Part ``number`` at its full length (the file may end before)."""
        if number == 1:
            return PartRange(1, 0, self.head_bytes)
        return PartRange(number, self.head_bytes + (number - 2) * self.part_bytes, self.part_bytes)

    def fits(self, file_size: int) -> bool:
        """Whether a file of about ``file_size`` bytes stays well within storage's 10,000 parts (a
        larger one goes up whole, in parts boto3 sizes for it)."""
        return file_size < 0.9 * MAX_PARTS * self.part_bytes

    def parts(self, file_size: int) -> list[PartRange]:
        """Every part of a file of ``file_size`` bytes."""
        ranges = [PartRange(1, 0, min(self.head_bytes, file_size))]
        number = 2
        while (offset := self.part(number).offset) < file_size:
            ranges.append(PartRange(number, offset, min(self.part_bytes, file_size - offset)))
            number += 1
        return ranges


def send_part(
    bucket: Bucket, key: str, upload_id: str, path: Path, part: PartRange, on_read: Callable[[int], None]
) -> SentPart:
    """Blocking: uploads one part straight from the file, without holding it in memory. ``on_read``
    gets ``bytes_transferred=`` as the body is read (negative when it is read again) and stops the
    part by raising."""
    with ReadFileChunk.from_filename(str(path), part.offset, part.length, callbacks=[on_read]) as body:
        answer = bucket.client.upload_part(
            Bucket=bucket.name,
            Key=key,
            UploadId=upload_id,
            PartNumber=part.number,
            Body=body,  # type: ignore[arg-type]  # file-like: read, seek, tell, len
        )
    return SentPart(part.number, answer["ETag"], part.offset, part.length)


@dataclass(frozen=True)
class OpenUpload:
    bucket: Bucket
    key: str
    upload_id: str

    def abort(self) -> None:
        """Blocking, best effort: drops the upload and its parts."""
        try:
            self.bucket.client.abort_multipart_upload(Bucket=self.bucket.name, Key=self.key, UploadId=self.upload_id)
        except STORAGE_ERRORS as exc:
            log.warning("could not abort a multipart upload of %s: %s", self.key, type(exc).__name__)


class OpenUploads:
    """The multipart uploads this worker's mux steps started and no upload step has completed or
    dropped yet. A job that leaves the worker (finished, failed, or cancelled between its steps) has
    what is left of its uploads aborted."""

    def __init__(self) -> None:
        self._uploads: dict[str, list[OpenUpload]] = {}
        self._lock = threading.Lock()

    def add(self, job_id: str, upload: OpenUpload) -> None:
        with self._lock:
            self._uploads.setdefault(job_id, []).append(upload)

    def closed(self, job_id: str, upload_id: str) -> None:
        """The upload was completed or aborted."""
        with self._lock:
            left = [u for u in self._uploads.pop(job_id, []) if u.upload_id != upload_id]
            if left:
                self._uploads[job_id] = left

    def abort_all(self, job_id: str) -> None:
        """Blocking: aborts the job's uploads still open."""
        with self._lock:
            uploads = self._uploads.pop(job_id, [])
        for upload in uploads:
            upload.abort()
