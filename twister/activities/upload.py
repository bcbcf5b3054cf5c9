"""Upload step: boto3 multipart upload of the muxed file to the configured bucket."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from twister.media.containers import CONTAINERS
from twister.models import ActivityName, ErrorType, SideFile, UploadRequest, UploadResult
from twister.storage import S3Target, target_client
from twister.worker.heartbeat import Heartbeat
from twister.worker.metrics import count_bytes
from twister.worker.workdirs import WorkDirs, files_gone

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

SIDE_FILE_TYPES = {"vtt": "text/vtt", "jpg": "image/jpeg"}


@dataclass(frozen=True)
class _Bucket:
    client: S3Client
    name: str


class UploadActivities:
    """``own_storage`` reads a job's own (sealed) target from its row, through ``loop``, the worker's
    event loop that owns the pool; that target is reached through the egress proxy."""

    def __init__(
        self,
        workdirs: WorkDirs,
        s3: S3Client,
        bucket: str,
        part_bytes: int,
        own_storage: Callable[[str], Coroutine[Any, Any, S3Target | None]],
        loop: asyncio.AbstractEventLoop,
        egress_proxy_url: str,
    ) -> None:
        self._workdirs = workdirs
        self._server = _Bucket(s3, bucket)
        self._transfer = TransferConfig(multipart_threshold=part_bytes, multipart_chunksize=part_bytes)
        self._own_storage = own_storage
        self._loop = loop
        self._proxy = egress_proxy_url

    def _bucket(self, request: UploadRequest) -> _Bucket:
        if not request.own_storage:
            return self._server
        target = asyncio.run_coroutine_threadsafe(self._own_storage(request.job_id), self._loop).result(timeout=60)
        if target is None:
            raise ApplicationError("The job's storage target is gone from its row", type=ErrorType.STORAGE_FAILED)
        return _Bucket(target_client(target, proxy=self._proxy), target.bucket)

    @staticmethod
    def _abort_unfinished(bucket: _Bucket, key: str) -> None:
        """Best effort: drops multipart uploads of ``key`` left by an attempt that died (a killed worker,
        storage down), so their parts do not linger in the bucket. Run before a transfer and again
        after it: an earlier attempt whose heartbeat timed out may still be running and open one
        in between; once this attempt's object is complete, any upload of its key is stale."""
        try:
            listed = bucket.client.list_multipart_uploads(Bucket=bucket.name, Prefix=key)
            for upload in listed.get("Uploads", []):
                if upload.get("Key") == key and upload.get("UploadId"):
                    bucket.client.abort_multipart_upload(Bucket=bucket.name, Key=key, UploadId=upload["UploadId"])
        except (BotoCoreError, ClientError) as exc:
            log.warning("could not abort unfinished uploads of %s: %s", key, type(exc).__name__)

    @activity.defn(name=ActivityName.UPLOAD)
    def upload(self, request: UploadRequest) -> UploadResult:
        """boto3 reports progress from its own threads, outside the activity context: they only count
        bytes, while this thread waits for the transfer and passes a cancellation on (never raised into
        the thread at a random point, see the download step)."""
        with activity.shield_thread_cancel_exception():
            return self._upload(request)

    @staticmethod
    def _put_side_file(bucket: _Bucket, side: SideFile, attempt: int) -> None:
        path = Path(side.path)
        if not path.exists():
            raise files_gone(f"{path.suffix.lstrip('.')} file")
        content_type = SIDE_FILE_TYPES.get(path.suffix.lstrip("."), "application/octet-stream")
        try:
            bucket.client.upload_file(str(path), bucket.name, side.key, ExtraArgs={"ContentType": content_type})
        except (BotoCoreError, ClientError, OSError) as exc:
            raise ApplicationError(
                f"Storing {side.key} failed: {exc}. Check the storage endpoint and credentials.",
                attempt,
                type=ErrorType.STORAGE_FAILED,
            ) from None
        count_bytes("uploaded", path.stat().st_size)

    def _upload(self, request: UploadRequest) -> UploadResult:
        attempt = activity.info().attempt
        self._workdirs.hold(request.job_id)
        path = Path(request.path)
        if not path.exists():
            raise files_gone("muxed file")
        size = path.stat().st_size
        bucket = self._bucket(request)
        self._abort_unfinished(bucket, request.key)
        sent = [0]
        cancelled = threading.Event()

        def on_progress(chunk: int) -> None:
            if cancelled.is_set():
                raise CancelledError("upload cancelled")
            sent[0] += chunk

        container = CONTAINERS.get(path.suffix.lstrip("."))
        extra = {"ContentType": container.content_type} if container else {}
        started = time.monotonic()
        with Heartbeat(attempt=attempt, percent=0.0) as heartbeat, ThreadPoolExecutor(max_workers=1) as executor:
            transfer = executor.submit(
                bucket.client.upload_file,
                str(path),
                bucket.name,
                request.key,
                ExtraArgs=extra,
                Config=self._transfer,
                Callback=on_progress,
            )
            while True:
                heartbeat.update(percent=round(100 * sent[0] / max(size, 1), 1))
                if activity.is_cancelled():
                    cancelled.set()
                try:
                    transfer.result(timeout=0.5)
                    break
                except FutureTimeout:
                    continue
                except (BotoCoreError, ClientError, OSError) as exc:
                    self._abort_unfinished(bucket, request.key)
                    raise ApplicationError(
                        f"Storing the file failed: {exc}. Check the storage endpoint and credentials.",
                        attempt,
                        type=ErrorType.STORAGE_FAILED,
                    ) from None
        self._abort_unfinished(bucket, request.key)
        count_bytes("uploaded", size)
        for side in request.side_files:  # small files beside the video (subtitles, thumbnail)
            self._put_side_file(bucket, side, attempt)
        seconds = max(time.monotonic() - started, 1e-3)
        return UploadResult(
            key=request.key,
            file_size=size,
            duration_ms=int(seconds * 1000),
            speed_mbps=round(size / 1e6 / seconds, 3),
            attempt=attempt,
            side_files=request.side_files,
        )
