"""The S3 client every part shares; presigned URLs need SigV4 against custom endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from twister.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def s3_client(settings: Settings, *, timeout: float = 60.0, attempts: int = 3) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=min(timeout, 10),
            read_timeout=timeout,
        ),
    )


def presigned_url(client: S3Client, bucket: str, key: str, ttl_seconds: int) -> str:
    return client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl_seconds)
