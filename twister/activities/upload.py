"""Upload step: the muxed file to the job's bucket as a multipart upload. It finishes the upload the
mux step started (the parts that step could not send, then completion), else sends the whole file."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from twister.activities.multipart import (
    PARTS_IN_FLIGHT,
    STORAGE_ERRORS,
    Bucket,
    Buckets,
    OpenUpload,
    OpenUploads,
    PartLayout,
    PartRange,
    send_part,
)
from twister.media.containers import CONTAINERS
from twister.models import ActivityName, ErrorType, HandedOverUpload, SentPart, SideFile, UploadRequest, UploadResult
from twister.worker.heartbeat import Heartbeat
from twister.worker.metrics import count_bytes
from twister.worker.workdirs import WorkDirs, files_gone

log = logging.getLogger(__name__)

SIDE_FILE_TYPES = {"vtt": "text/vtt", "jpg": "image/jpeg"}


class _Progress:
    """Bytes sent, counted from the transfer's threads, which it stops once the step is cancelled."""

    def __init__(self) -> None:
        self.sent = 0
        self.cancelled = threading.Event()
        self._lock = threading.Lock()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise CancelledError("upload cancelled")

    def add(self, bytes_transferred: int) -> None:
        """boto3's progress callback (it names the argument)."""
        self.check()
        with self._lock:
            self.sent += bytes_transferred


class UploadActivities:
    def __init__(self, workdirs: WorkDirs, buckets: Buckets, part_bytes: int, uploads: OpenUploads) -> None:
        self._workdirs = workdirs
        self._buckets = buckets
        self._transfer = TransferConfig(
            multipart_threshold=part_bytes, multipart_chunksize=part_bytes, max_concurrency=PARTS_IN_FLIGHT
        )
        self._uploads = uploads

    @activity.defn(name=ActivityName.UPLOAD)
    def upload(self, request: UploadRequest) -> UploadResult:
        """boto3 reports progress from its own threads, outside the activity context: they only count
        bytes, while this thread waits for the transfer and passes a cancellation on (never raised into
        the thread at a random point, see the download step)."""
        with activity.shield_thread_cancel_exception():
            return self._upload(request)

    @staticmethod
    def _put_side_file(bucket: Bucket, side: SideFile, attempt: int) -> None:
        path = Path(side.path)
        if not path.exists():
            raise files_gone(f"{path.suffix.lstrip('.')} file")
        content_type = SIDE_FILE_TYPES.get(path.suffix.lstrip("."), "application/octet-stream")
        try:
            bucket.client.upload_file(str(path), bucket.name, side.key, ExtraArgs={"ContentType": content_type})
        except (*STORAGE_ERRORS, OSError) as exc:
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
        bucket = self._buckets.of_job_blocking(request.job_id, request.own_storage)
        handed_over = _usable(request.handed_over, size)
        _abort_unfinished(bucket, request.key, keep=handed_over.upload_id if handed_over else None)
        started = time.monotonic()
        with Heartbeat(attempt=attempt, percent=0.0) as heartbeat:
            sending = _Sending(bucket, request.key, path, size, attempt, heartbeat)
            resumed = False
            if handed_over is not None:
                try:
                    resumed = self._resume(sending, handed_over)
                except CancelledError:  # it aborted the handed-over upload: the job's clean-up need not
                    self._uploads.closed(request.job_id, handed_over.upload_id)
                    raise
            if not resumed:
                sending.watched(lambda progress: self._upload_whole(sending, progress))
        if request.handed_over is not None:
            self._uploads.closed(request.job_id, request.handed_over.upload_id)
        _abort_unfinished(bucket, request.key)
        count_bytes("uploaded", size)
        for side in request.side_files:  # small files beside the video (subtitles, thumbnail)
            self._put_side_file(bucket, side, attempt)
        seconds = max(time.monotonic() - started, 1e-3)
        sent_while_muxing = handed_over.sending_ms / 1000 if resumed and handed_over else 0.0
        return UploadResult(
            key=request.key,
            file_size=size,
            duration_ms=int(seconds * 1000),
            speed_mbps=round(size / 1e6 / (seconds + sent_while_muxing), 3),
            attempt=attempt,
            side_files=request.side_files,
        )

    def _resume(self, sending: _Sending, handed_over: HandedOverUpload) -> bool:
        return sending.watched(
            lambda progress: self._finish_handed_over(sending, handed_over, progress), keep=handed_over.upload_id
        )

    def _upload_whole(self, sending: _Sending, progress: _Progress) -> bool:
        container = CONTAINERS.get(sending.path.suffix.lstrip("."))
        sending.bucket.client.upload_file(
            str(sending.path),
            sending.bucket.name,
            sending.key,
            ExtraArgs={"ContentType": container.content_type} if container else {},
            Config=self._transfer,
            Callback=progress.add,
        )
        return True

    @staticmethod
    def _finish_handed_over(sending: _Sending, handed_over: HandedOverUpload, progress: _Progress) -> bool:
        """Sends the parts storage does not hold yet (the head, the last, any the mux step could not
        send or an earlier attempt did not) and completes the upload; False when it is gone. A part
        storage holds counts if it has the part's length (and the ETag the mux step was given)."""
        bucket, key, upload_id = sending.bucket, sending.key, handed_over.upload_id
        try:
            stored = _stored_part_etags(bucket, key, upload_id)
        except ClientError as exc:
            if _error_code(exc) != "NoSuchUpload":
                raise
            log.warning("the upload started while muxing is gone; sending the whole file")
            return False
        layout = PartLayout(handed_over.head_bytes, handed_over.part_bytes)
        told = {part.number: part.etag for part in handed_over.parts}
        held: list[SentPart] = []
        for part in layout.parts(sending.size):
            etag, length = stored.get(part.number, ("", -1))
            if length == part.length and told.get(part.number, etag) == etag:
                held.append(SentPart(part.number, etag, part.offset, part.length))
        progress.add(sum(part.length for part in held))
        missing = [part for part in layout.parts(sending.size) if part.number not in {p.number for p in held}]

        def send(part: PartRange) -> SentPart:
            progress.check()
            return send_part(bucket, key, upload_id, sending.path, part, on_read=progress.add)

        pool = ThreadPoolExecutor(max_workers=PARTS_IN_FLIGHT, thread_name_prefix="upload-part")
        try:
            parts = held + list(pool.map(send, missing))
        finally:
            pool.shutdown(cancel_futures=True)
        try:
            bucket.client.complete_multipart_upload(
                Bucket=bucket.name,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in sorted(parts, key=lambda p: p.number)]
                },
            )
        except ClientError as exc:
            if _error_code(exc) not in _PARTS_REFUSED:
                raise
            log.warning("storage refused the parts (%s); sending the whole file", _error_code(exc))
            OpenUpload(bucket, key, upload_id).abort()
            return False
        return True


def _abort_unfinished(bucket: Bucket, key: str, keep: str | None = None) -> None:
    """Best effort: drops multipart uploads of ``key`` left by an attempt that died (a killed worker,
    storage down), so their parts do not linger in the bucket; ``keep`` is the one this step is
    finishing. Run before a transfer and again after it: an earlier attempt whose heartbeat timed
    out may still be running and open one in between; once this attempt's object is complete, any
    upload of its key is stale."""
    try:
        listed = bucket.client.list_multipart_uploads(Bucket=bucket.name, Prefix=key)
        for upload in listed.get("Uploads", []):
            if upload.get("Key") == key and upload.get("UploadId") not in (None, keep):
                bucket.client.abort_multipart_upload(Bucket=bucket.name, Key=key, UploadId=upload["UploadId"])
    except STORAGE_ERRORS as exc:
        log.warning("could not abort unfinished uploads of %s: %s", key, type(exc).__name__)


_PARTS_REFUSED = frozenset({"NoSuchUpload", "InvalidPart", "InvalidPartOrder", "EntityTooSmall"})
"""Storage's answers to a completion whose parts will never do: the whole file is sent instead."""


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _usable(handed_over: HandedOverUpload | None, size: int) -> HandedOverUpload | None:
    """The mux step's upload, if the file is still the one its parts came from."""
    if handed_over is None:
        return None
    layout = PartLayout(handed_over.head_bytes, handed_over.part_bytes)
    fits = handed_over.file_size == size and all(
        (part.offset, part.length) == (layout.part(part.number).offset, layout.part(part.number).length)
        for part in handed_over.parts
    )
    if not fits:
        log.warning("the muxed file is not the one whose parts were sent while muxing; sending the whole file")
        return None
    return handed_over


def _stored_part_etags(bucket: Bucket, key: str, upload_id: str) -> dict[int, tuple[str, int]]:
    """Part number → (ETag, size) of the parts storage holds for the upload."""
    stored: dict[int, tuple[str, int]] = {}
    for page in bucket.client.get_paginator("list_parts").paginate(Bucket=bucket.name, Key=key, UploadId=upload_id):
        for part in page.get("Parts", []):
            stored[part["PartNumber"]] = (part["ETag"], part["Size"])
    return stored


class _Sending:
    """One attempt's transfer of the file, watched from the step's thread: progress into heartbeats,
    a cancellation into the transfer's threads, a storage error into the step's failure."""

    def __init__(self, bucket: Bucket, key: str, path: Path, size: int, attempt: int, heartbeat: Heartbeat) -> None:
        self.bucket, self.key, self.path, self.size = bucket, key, path, size
        self._attempt = attempt
        self._heartbeat = heartbeat

    def watched(self, transfer: Callable[[_Progress], bool], keep: str | None = None) -> bool:
        """Runs ``transfer`` in a thread of its own until it ends; ``keep``: the multipart upload it
        finishes, kept on a storage error (the next attempt resumes it), aborted on cancellation."""
        progress = _Progress()
        with ThreadPoolExecutor(max_workers=1) as executor:
            running = executor.submit(transfer, progress)
            while True:
                self._heartbeat.update(percent=round(100 * progress.sent / max(self.size, 1), 1))
                if activity.is_cancelled():
                    progress.cancelled.set()
                try:
                    return running.result(timeout=0.5)
                except FutureTimeout:
                    continue
                except CancelledError:
                    if keep is not None:
                        OpenUpload(self.bucket, self.key, keep).abort()
                    raise
                except (*STORAGE_ERRORS, OSError) as exc:
                    _abort_unfinished(self.bucket, self.key, keep)
                    raise ApplicationError(
                        f"Storing the file failed: {exc}. Check the storage endpoint and credentials.",
                        self._attempt,
                        type=ErrorType.STORAGE_FAILED,
                    ) from None
