"""A finished job's stored files: where they are, presigned links to them, deleting them."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from twister import db
from twister.backends import Backends
from twister.gateway.status import STORED_FILES
from twister.storage import presigned_url, target_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


async def job_bucket(svc: Backends, row: dict[str, Any]) -> tuple[S3Client, str]:
    """The client and bucket holding the job's files: its own storage target, else the server's bucket."""
    own = await db.job_storage(svc.pool, svc.box, row["id"]) if row["storage"] else None
    return (target_client(own), own.bucket) if own else (svc.s3, svc.settings.s3_bucket)


async def presigned_files(svc: Backends, row: dict[str, Any]) -> dict[str, str]:
    """Presigned GET URLs by document field (``s3_url``, ``subtitle_url``, ``thumbnail_url``)."""
    keys = {url_field: row[key_field] for key_field, url_field in STORED_FILES.items() if row[key_field]}
    if not keys:
        return {}
    if not row["storage"]:  # the server's bucket: URLs signed a moment ago are reused
        return {url_field: svc.presigned.url(svc.settings.s3_bucket, key) for url_field, key in keys.items()}
    client, bucket = await job_bucket(svc, row)
    ttl = svc.settings.presign_ttl_seconds
    return {url_field: presigned_url(client, bucket, key, ttl) for url_field, key in keys.items()}


async def delete_files(svc: Backends, row: dict[str, Any]) -> None:
    """Deletes the video and the files beside it, then forgets them on the row."""
    client, bucket = await job_bucket(svc, row)
    for key in (row[key_field] for key_field in STORED_FILES if row[key_field]):
        await asyncio.to_thread(client.delete_object, Bucket=bucket, Key=key)
    await db.forget_files(svc.pool, uuid.UUID(str(row["id"])))
