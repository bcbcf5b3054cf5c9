"""Upload step: boto3 multipart upload of the muxed file to the configured bucket."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from twister.activities.containers import CONTAINERS
from twister.models import ErrorType, UploadRequest, UploadResult

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_TRANSFER = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024)


class UploadActivities:
    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    @activity.defn(name="upload")
    def upload(self, request: UploadRequest) -> UploadResult:
        attempt = activity.info().attempt
        path = Path(request.path)
        size = path.stat().st_size
        sent = 0

        def on_progress(chunk: int) -> None:
            nonlocal sent
            if activity.is_cancelled():
                raise CancelledError("upload cancelled")
            sent += chunk
            activity.heartbeat({"attempt": attempt, "percent": round(100 * sent / max(size, 1), 1)})

        container = CONTAINERS.get(path.suffix.lstrip("."))
        extra = {"ContentType": container.content_type} if container else {}
        started = time.monotonic()
        activity.heartbeat({"attempt": attempt, "percent": 0})
        try:
            self._s3.upload_file(
                str(path), self._bucket, request.key, ExtraArgs=extra, Config=_TRANSFER, Callback=on_progress
            )
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
