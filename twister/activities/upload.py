"""Upload step: boto3 multipart upload of the muxed file to the configured bucket."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from twister.media.containers import CONTAINERS
from twister.models import ActivityName, ErrorType, UploadRequest, UploadResult
from twister.worker.heartbeat import Heartbeat
from twister.worker.workdirs import files_gone

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_TRANSFER = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024)


class UploadActivities:
    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    @activity.defn(name=ActivityName.UPLOAD)
    def upload(self, request: UploadRequest) -> UploadResult:
        """boto3 reports progress from its own threads, outside the activity context: they only count
        bytes, while this thread waits for the transfer and passes a cancellation on."""
        attempt = activity.info().attempt
        path = Path(request.path)
        if not path.exists():
            raise files_gone("muxed file")
        size = path.stat().st_size
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
                self._s3.upload_file,
                str(path),
                self._bucket,
                request.key,
                ExtraArgs=extra,
                Config=_TRANSFER,
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
                    raise ApplicationError(
                        f"Storing the file failed: {exc}. Check the storage endpoint and credentials.",
                        attempt,
                        type=ErrorType.STORAGE_FAILED,
                    ) from None
        seconds = max(time.monotonic() - started, 1e-3)
        return UploadResult(
            key=request.key,
            file_size=size,
            duration_ms=int(seconds * 1000),
            speed_mbps=round(size / 1e6 / seconds, 3),
            attempt=attempt,
        )
