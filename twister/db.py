"""Postgres schema and queries (asyncpg)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import asyncpg

from twister.keys import hash_api_key, new_api_key, new_webhook_secret
from twister.models import JobOutcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    webhook_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE IF NOT EXISTS jobs (
    id UUID PRIMARY KEY,
    api_key_id BIGINT NOT NULL REFERENCES api_keys(id),
    url TEXT NOT NULL,
    request JSONB NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    step TEXT NOT NULL,
    finished_at BIGINT,
    error TEXT,
    error_type TEXT,
    s3_key TEXT,
    title TEXT,
    file_size BIGINT,
    download_speed_mbps DOUBLE PRECISION,
    upload_speed_mbps DOUBLE PRECISION,
    extract_duration_ms BIGINT,
    download_duration_ms BIGINT,
    mux_duration_ms BIGINT,
    upload_duration_ms BIGINT,
    total_duration_ms BIGINT,
    download_retries INTEGER,
    upload_retries INTEGER,
    queue_wait_ms BIGINT,
    requested_quality TEXT,
    actual_quality TEXT,
    native_video_codec TEXT,
    native_audio_codec TEXT,
    webhook_status TEXT
);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (api_key_id, created_at DESC);
"""

_OUTCOME_COLUMNS = [f.name for f in fields(JobOutcome)]
_SET_OUTCOME = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(_OUTCOME_COLUMNS))


def now_ms() -> int:
    return int(time.time() * 1000)


async def create_pool(database_url: str) -> asyncpg.Pool:
    """A pool that connects on first use, so a process starts even while Postgres is down."""
    return await asyncpg.create_pool(database_url, min_size=0, max_size=10, timeout=5, command_timeout=15)


async def ensure_schema(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7410442)")
        await conn.execute(_SCHEMA)


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str


async def create_api_key(pool: asyncpg.Pool, name: str, key: str) -> ApiKey:
    row = await pool.fetchrow(
        "INSERT INTO api_keys (name, key_hash, webhook_secret, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        name,
        hash_api_key(key),
        new_webhook_secret(),
        now_ms(),
    )
    assert row is not None
    return ApiKey(id=row["id"], name=name)


async def dev_api_key(pool: asyncpg.Pool, key_file: Path) -> str:
    """The local dev key of ``twister up``, kept (mode 0600) beside the data so it survives restarts."""
    if key_file.exists():
        key = key_file.read_text().strip()
        if await find_api_key(pool, key):
            return key
    key = new_api_key()
    await create_api_key(pool, "dev", key)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_text(key + "\n")
    return key


async def find_api_key(pool: asyncpg.Pool, key: str) -> ApiKey | None:
    row = await pool.fetchrow(
        "SELECT id, name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash_api_key(key)
    )
    return ApiKey(id=row["id"], name=row["name"]) if row else None


async def webhook_secret(pool: asyncpg.Pool, api_key_id: int) -> str:
    secret = await pool.fetchval("SELECT webhook_secret FROM api_keys WHERE id = $1", api_key_id)
    if secret is None:
        raise LookupError(f"API key {api_key_id} does not exist")
    return str(secret)


async def insert_job(
    pool: asyncpg.Pool, job_id: uuid.UUID, api_key_id: int, url: str, request: dict[str, Any], created_at: int
) -> None:
    await pool.execute(
        "INSERT INTO jobs (id, api_key_id, url, request, created_at, status, step) "
        "VALUES ($1, $2, $3, $4::jsonb, $5, 'Pending', 'Queued')",
        job_id,
        api_key_id,
        url,
        json.dumps(request),
        created_at,
    )


async def delete_job(pool: asyncpg.Pool, job_id: uuid.UUID) -> None:
    await pool.execute("DELETE FROM jobs WHERE id = $1", job_id)


async def get_job(pool: asyncpg.Pool, job_id: uuid.UUID, api_key_id: int) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM jobs WHERE id = $1 AND api_key_id = $2", job_id, api_key_id)
    if row is None:
        return None
    job = dict(row)
    job["request"] = json.loads(job["request"])
    return job


async def record_outcome(pool: asyncpg.Pool, job_id: uuid.UUID, outcome: JobOutcome) -> None:
    values = asdict(outcome)
    await pool.execute(
        f"UPDATE jobs SET {_SET_OUTCOME} WHERE id = $1", job_id, *(values[name] for name in _OUTCOME_COLUMNS)
    )


async def record_webhook_status(pool: asyncpg.Pool, job_id: uuid.UUID, status: str) -> None:
    await pool.execute("UPDATE jobs SET webhook_status = $2 WHERE id = $1", job_id, status)
