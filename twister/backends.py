"""The services a job operation needs (Postgres, Temporal, S3 and the server key), shared by the
gateway's request handlers and the operator's ``twister jobs`` commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from temporalio.client import Client

from twister import db
from twister.config import Settings
from twister.crypto import SecretBox
from twister.storage import PresignedUrls, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass
class Backends:
    settings: Settings
    pool: asyncpg.Pool
    temporal: Client
    s3: S3Client
    box: SecretBox
    presigned: PresignedUrls
    """Presigned URLs of the server bucket's objects, reused for a minute."""


@asynccontextmanager
async def open_backends(settings: Settings) -> AsyncIterator[Backends]:
    """Connects to each (Temporal at once: a command fails early when it is unreachable)."""
    temporal = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    pool = await db.create_pool(settings.database_url, settings.database_timeout)
    try:
        await db.migrate(pool)
        s3 = s3_client(settings)
        presigned = PresignedUrls(s3, settings.presign_ttl_seconds)
        yield Backends(settings, pool, temporal, s3, SecretBox.from_settings(settings), presigned)
    finally:
        await pool.close()
