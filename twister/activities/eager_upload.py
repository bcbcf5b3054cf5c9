"""Parts of the muxed file sent while ffmpeg still writes it, for the upload step to finish.

Only an output with a reserved index qualifies: ffmpeg writes it front to back and, when it ends,
rewrites nothing but its head (the reserved room and the media data's header). A part past the head
is final once the file has grown past its end, so it is sent then; the head and the last part are
the upload step's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from twister.activities.multipart import (
    PARTS_IN_FLIGHT,
    Bucket,
    OpenUpload,
    OpenUploads,
    PartLayout,
    send_part,
)
from twister.media.muxing import media_data_start
from twister.models import HandedOverUpload, SentPart

log = logging.getLogger(__name__)

FOLLOW_INTERVAL = 0.05
"""How often (s) the growing file's size is looked at."""

HEAD_MARGIN_BYTES = 64 * 1024
"""Room beside the reserved index for what precedes it (``ftyp``) and the media data's header."""


class _Dropped(Exception):
    """A part stopped in flight: its upload is being aborted."""


class EagerUpload:
    """A storage error stops the sending, never the mux: the upload step sends what is missing."""

    def __init__(self, job_id: str, upload: OpenUpload, path: Path, layout: PartLayout, uploads: OpenUploads) -> None:
        self._job_id = job_id
        self._upload = upload
        self._path = path
        self._layout = layout
        self._uploads = uploads
        self._executor = ThreadPoolExecutor(max_workers=PARTS_IN_FLIGHT, thread_name_prefix="eager-part")
        self._next_part = 2
        self._in_flight: set[asyncio.Future[SentPart]] = set()
        self._sent: list[SentPart] = []
        self._stopped = False
        self._dropping = threading.Event()
        self._busy_since = 0.0
        self._busy_seconds = 0.0

    @classmethod
    async def start(
        cls,
        job_id: str,
        bucket: Bucket,
        key: str,
        content_type: str,
        path: Path,
        layout: PartLayout,
        uploads: OpenUploads,
    ) -> EagerUpload:
        answer = await asyncio.to_thread(
            bucket.client.create_multipart_upload, Bucket=bucket.name, Key=key, ContentType=content_type
        )
        upload = OpenUpload(bucket, key, answer["UploadId"])
        uploads.add(job_id, upload)
        return cls(job_id, upload, path, layout, uploads)

    async def follow(self) -> None:
        """Until cancelled: sends each part once the file has grown past its end."""
        while True:
            self._send_complete_parts()
            await asyncio.sleep(FOLLOW_INTERVAL)

    def _send_complete_parts(self) -> None:
        try:
            size = self._path.stat().st_size
        except OSError:  # not there yet
            return
        loop = asyncio.get_running_loop()
        while not self._stopped and len(self._in_flight) < PARTS_IN_FLIGHT:
            part = self._layout.part(self._next_part)
            if part.offset + part.length >= size:
                return
            if not self._in_flight:
                self._busy_since = time.monotonic()
            future = loop.run_in_executor(
                self._executor,
                send_part,
                self._upload.bucket,
                self._upload.key,
                self._upload.upload_id,
                self._path,
                part,
                self._unless_dropped,
            )
            self._in_flight.add(future)
            future.add_done_callback(self._part_done)
            self._next_part += 1

    def _unless_dropped(self, bytes_transferred: int) -> None:
        """Stops a part in flight once the upload is being dropped."""
        if self._dropping.is_set():
            raise _Dropped

    def _part_done(self, future: asyncio.Future[SentPart]) -> None:
        self._in_flight.discard(future)
        if not self._in_flight:
            self._busy_seconds += time.monotonic() - self._busy_since
        if future.cancelled():
            return
        if (error := future.exception()) is not None:
            if not self._stopped and not isinstance(error, _Dropped):
                log.warning("sending parts while muxing stopped (%s); the upload step sends them", type(error).__name__)
            self._stopped = True
            return
        self._sent.append(future.result())

    async def _settle(self) -> None:
        """Waits for the parts in flight; no more are sent."""
        self._stopped = True
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._executor.shutdown(wait=False)

    async def finish(self) -> HandedOverUpload | None:
        """Once ffmpeg has ended: the upload and its parts sent, for the upload step. None (the upload
        aborted) when the file's media data does not start within the head part after all."""
        await self._settle()
        start = await asyncio.to_thread(media_data_start, self._path)
        if start is None or start > self._layout.head_bytes:
            log.warning("the muxed file's head is larger than expected; the upload step sends it whole")
            await self._abort()
            return None
        return HandedOverUpload(
            upload_id=self._upload.upload_id,
            file_size=self._path.stat().st_size,
            head_bytes=self._layout.head_bytes,
            part_bytes=self._layout.part_bytes,
            parts=sorted(self._sent, key=lambda part: part.number),
            sending_ms=int(self._busy_seconds * 1000),
        )

    async def abort(self) -> None:
        """The mux failed, was cancelled or starts again: the upload and its parts are dropped."""
        self._dropping.set()
        await self._settle()
        await self._abort()

    async def _abort(self) -> None:
        await asyncio.to_thread(self._upload.abort)
        self._uploads.closed(self._job_id, self._upload.upload_id)
