"""S3 clients: the server's bucket, or a job's own target (inline ``storage``). Presigned URLs need
SigV4 against custom endpoints."""

from __future__ import annotations

import json
import uuid
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
