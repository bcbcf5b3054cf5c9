"""S3 clients: the server's bucket, or a job's own target (inline ``storage``). Presigned URLs need
SigV4 against custom endpoints."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from twister.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class S3Target:
    endpoint: str
    bucket: str
    region: str
    access_key: str
    secret_key: str = field(repr=False)  # never in a log line

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> S3Target:
        return cls(**json.loads(text))


def server_target(settings: Settings) -> S3Target:
    return S3Target(
        settings.s3_endpoint_url, settings.s3_bucket, settings.s3_region, settings.s3_access_key, settings.s3_secret_key
    )


def target_client(target: S3Target, *, timeout: float = 60.0, attempts: int = 3, proxy: str | None = None) -> S3Client:
    """``proxy``: the worker's egress proxy, which checks every address a tenant's endpoint leads to."""
    return boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name=target.region,
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=min(timeout, 10),
            read_timeout=timeout,
            proxies={"http": proxy, "https": proxy} if proxy else None,
        ),
    )


def s3_client(settings: Settings, *, timeout: float = 60.0, attempts: int = 3) -> S3Client:
    return target_client(server_target(settings), timeout=timeout, attempts=attempts)


def presigned_url(client: S3Client, bucket: str, key: str, ttl_seconds: int) -> str:
    return client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl_seconds)


class PresignedUrls:
    """Presigned GET URLs of one client's objects, each reused for ``reuse_seconds`` (at most a tenth of
    the TTL) instead of signed anew on every read: signing costs ~0.7 ms of CPU, a large part of a
    ``GET /jobs/{id}`` of a finished job. A URL handed out is thus valid for at least TTL minus
    ``reuse_seconds``. The least recently signed go first beyond ``max_entries``."""

    def __init__(self, client: S3Client, ttl_seconds: int, reuse_seconds: float = 60.0, max_entries: int = 4096):
        self._client = client
        self._ttl = ttl_seconds
        self._reuse = min(reuse_seconds, ttl_seconds / 10)
        self._max = max_entries
        self._signed: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def url(self, bucket: str, key: str) -> str:
        now = time.monotonic()
        with self._lock:
            found = self._signed.get((bucket, key))
            if found is not None and now - found[0] < self._reuse:
                return found[1]
        signed = presigned_url(self._client, bucket, key, self._ttl)
        with self._lock:
            self._signed[(bucket, key)] = (now, signed)
            self._signed.move_to_end((bucket, key))
            while len(self._signed) > self._max:
                self._signed.popitem(last=False)
        return signed


class StorageRefused(Exception):
    """A tenant's storage target failed the probe; the message is the storage's reason (no secret)."""


def probe_target(target: S3Target, prefix: str) -> None:
    """Blocking: writes and deletes a small object, as the job's upload will."""
    client = target_client(target, timeout=10.0, attempts=1)
    key = "/".join(part for part in (prefix.strip("/"), f".twister-probe-{uuid.uuid4().hex}") if part)
    try:
        client.put_object(Bucket=target.bucket, Key=key, Body=b"twister storage probe")
        client.delete_object(Bucket=target.bucket, Key=key)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise StorageRefused(f"{error.get('Code', 'error')}: {error.get('Message', 'refused')}") from None
    except BotoCoreError as exc:
        raise StorageRefused(type(exc).__name__ + ": " + str(exc)) from None
