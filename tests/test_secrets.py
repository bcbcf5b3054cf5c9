"""No secret ends up where an operator's tools or a backup would show it: after a full job with a
signed webhook, no log file, no database table and no Temporal history holds the API key, the
webhook secret, the server key, the S3 secret key or a presigned URL's signature."""

from __future__ import annotations

import asyncio
import io
import json
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from tests.conftest import submit, wait_for
from tests.media_site import MediaSite
from tests.test_webhooks import settled, webhook_secret
from tests.webhook_receiver import webhook_receiver
from twister.config import Settings
from twister.crypto import key_file


async def database_dump(settings: Settings) -> bytes:
    """Every row of every table of twister's database, as COPY text."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert {row["tablename"] for row in tables} >= {"api_keys", "jobs"}
        dump = io.BytesIO()
        for row in tables:
            await conn.copy_from_table(row["tablename"], output=dump)
        return dump.getvalue()
    finally:
        await conn.close()


def signature(presigned_url: str) -> str:
    return parse_qs(urlsplit(presigned_url).query)["X-Amz-Signature"][0]


@pytest.mark.usefixtures("worker")
def test_no_secret_in_logs_database_or_workflow_history(
    api: httpx.Client, api_key: str, media: MediaSite, settings: Settings
) -> None:
    with webhook_receiver([200]) as receiver:
        job_id = submit(api, url=media.progressive_url, webhook_url=receiver.url)
        job = wait_for(api, job_id, settled)
    assert job["status"] == "Completed" and job["webhook_status"] == "delivered"
    delivered = json.loads(receiver.deliveries[0].body)

    secrets = {
        "API key": api_key,
        "webhook secret": webhook_secret(settings, api_key),
        "server key": settings.secret_key or key_file(settings).read_text().strip(),
        "S3 secret key": settings.s3_secret_key,
        "presigned URL signature (GET)": signature(job["s3_url"]),
        "presigned URL signature (webhook)": signature(delivered["s3_url"]),
    }
    places = {str(path): path.read_bytes() for path in sorted((settings.data_dir / "logs").glob("*.log"))}
    assert len(places) >= 5, places.keys()  # temporal, postgres, s3, worker, gateway at least
    places["database dump"] = asyncio.run(database_dump(settings))
    places["Temporal's database (workflow histories)"] = (settings.data_dir / "temporal" / "temporal.db").read_bytes()

    found = [
        (what, where) for what, value in secrets.items() for where, data in places.items() if value.encode() in data
    ]
    assert found == []
