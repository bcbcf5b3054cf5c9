"""The by-hand baseline's second half: what a user would script after ``yt-dlp``: a boto3 multipart
upload of the merged file and a presigned URL for it. Run as its own process (its start is part of
the by-hand time), with the S3 endpoint and keys in TWISTER_S3_* variables.

    python -m bench.byhand_upload FILE KEY
"""

from __future__ import annotations

import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

PART_BYTES = 16 * 1024**2  # twister's default TWISTER_UPLOAD_PART_BYTES


def main() -> None:
    path, key = sys.argv[1], sys.argv[2]
    env = os.environ
    s3 = boto3.client(
        "s3",
        endpoint_url=env["TWISTER_S3_ENDPOINT_URL"],
        region_name=env.get("TWISTER_S3_REGION", "us-east-1"),
        aws_access_key_id=env["TWISTER_S3_ACCESS_KEY"],
        aws_secret_access_key=env["TWISTER_S3_SECRET_KEY"],
        config=Config(signature_version="s3v4"),
    )
    bucket = env.get("TWISTER_S3_BUCKET", "twister")
    s3.upload_file(
        path,
        bucket,
        key,
        ExtraArgs={"ContentType": "video/mp4"},
        Config=TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES),
    )
    print(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=86400))


if __name__ == "__main__":
    main()
