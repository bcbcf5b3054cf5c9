"""Postgres schema and queries (asyncpg)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import asyncpg

from twister.crypto import SecretBox, is_sealed
from twister.keys import hash_api_key, new_api_key, new_webhook_secret
from twister.models import JobOutcome, JobStatus, JobStep, WebhookStatus
from twister.storage import S3Target

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 7410442
_ADMISSION_LOCK = 7410443  # with the key id: one admission at a time per key

_OUTCOME_COLUMNS = [f.name for f in fields(JobOutcome)]
_SET_OUTCOME = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(_OUTCOME_COLUMNS))


def now_ms() -> int:
    return int(time.time() * 1000)


async def create_pool(database_url: str, timeout: float) -> asyncpg.Pool:
    """A pool that connects on first use, so a process starts even while Postgres is down; a connect
    or a query that takes longer than ``timeout`` seconds fails instead of waiting on a frozen server."""
    return await asyncpg.create_pool(database_url, min_size=0, max_size=10, timeout=timeout, command_timeout=timeout)


def migrations() -> list[tuple[int, Path]]:
    """The numbered SQL files (``0001_name.sql``), in the order they apply."""
    found = sorted((int(path.name.split("_", 1)[0]), path) for path in MIGRATIONS_DIR.glob("[0-9]*_*.sql"))
    versions = [version for version, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number in {MIGRATIONS_DIR}")
    return found


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Applies the migrations this database has not had yet, each in the one transaction that also
    records it; concurrent callers wait on an advisory lock. Returns the versions applied."""
    applied: list[int] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, path in migrations():
            if version in done:
                continue
            await conn.execute(path.read_text())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                version,
                path.stem,
                now_ms(),
            )
            applied.append(version)
    return applied


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str


def _webhook_secret_purpose(api_key_id: int) -> str:
    return f"api_keys.webhook_secret:{api_key_id}"


async def create_api_key(pool: asyncpg.Pool, box: SecretBox, name: str, key: str) -> ApiKey:
    """A new key (only its hash is stored) with a new webhook secret, sealed with the server key."""
    async with pool.acquire() as conn, conn.transaction():
        key_id = await conn.fetchval("SELECT nextval(pg_get_serial_sequence('api_keys', 'id'))")
        await conn.execute(
            "INSERT INTO api_keys (id, name, key_hash, webhook_secret, created_at) VALUES ($1, $2, $3, $4, $5)",
            key_id,
            name,
            hash_api_key(key),
            box.seal(new_webhook_secret(), _webhook_secret_purpose(key_id)),
            now_ms(),
        )
    return ApiKey(id=key_id, name=name)


async def dev_api_key(pool: asyncpg.Pool, box: SecretBox, key_file: Path) -> str:
    """The local dev key of ``twister up``, kept (mode 0600) beside the data so it survives restarts."""
    if key_file.exists():
        key = key_file.read_text().strip()
        if await find_api_key(pool, key):
            return key
    key = new_api_key()
    await create_api_key(pool, box, "dev", key)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_text(key + "\n")
    return key


async def find_api_key(pool: asyncpg.Pool, key: str) -> ApiKey | None:
    row = await pool.fetchrow(
        "SELECT id, name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash_api_key(key)
    )
    return ApiKey(id=row["id"], name=row["name"]) if row else None


async def webhook_secret(pool: asyncpg.Pool, box: SecretBox, api_key_id: int) -> str:
    """The key's webhook signing secret, opened; one stored in plain text (by twister before it
    sealed them) is sealed on the way."""
    stored = await pool.fetchval("SELECT webhook_secret FROM api_keys WHERE id = $1", api_key_id)
    if stored is None:
        raise LookupError(f"API key {api_key_id} does not exist")
    purpose = _webhook_secret_purpose(api_key_id)
    if is_sealed(stored):
        return box.open(stored, purpose)
    await pool.execute(
        "UPDATE api_keys SET webhook_secret = $2 WHERE id = $1 AND webhook_secret = $3",
        api_key_id,
        box.seal(stored, purpose),
        stored,
    )
    return str(stored)


@dataclass(frozen=True)
class Admission:
    """What ``insert_job`` did: made the job, found the earlier job of the idempotency key (with the
    hash of the request that made it), or neither because the key has too many unfinished jobs."""

    job_id: uuid.UUID | None
    earlier_request_hash: str | None = None

    @property
    def created(self) -> bool:
        return self.job_id is not None and self.earlier_request_hash is None


async def insert_job(
    pool: asyncpg.Pool,
    job_id: uuid.UUID,
    api_key_id: int,
    url: str,
    request: dict[str, Any],
    created_at: int,
    max_unfinished: int,
    idempotency: tuple[str, str] | None = None,
    storage: S3Target | None = None,
    box: SecretBox | None = None,
) -> Admission:
    """A new job, its workflow not started yet (``workflow_start_pending``), unless ``idempotency``
    (key, request hash) names an earlier job of this API key, or the key already has
    ``max_unfinished`` unfinished jobs. Admissions of one key are serialized."""
    idempotency_key, request_hash = idempotency or (None, None)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _ADMISSION_LOCK, api_key_id)
        if idempotency_key is not None:
            earlier = await conn.fetchrow(
                "SELECT id, request_hash FROM jobs WHERE api_key_id = $1 AND idempotency_key = $2",
                api_key_id,
                idempotency_key,
            )
            if earlier is not None:
                return Admission(earlier["id"], earlier["request_hash"])
        result = await conn.execute(
            "INSERT INTO jobs (id, api_key_id, url, request, created_at, status, step, workflow_start_pending, "
            "idempotency_key, request_hash, storage) "
            "SELECT $1, $2, $3, $4::jsonb, $5, $6, $7, true, $9, $10, $11 "
            "WHERE (SELECT count(*) FROM jobs WHERE api_key_id = $2 AND finished_at IS NULL) < $8",
            job_id,
            api_key_id,
            url,
            json.dumps(request),
            created_at,
            JobStatus.PENDING,
            JobStep.QUEUED,
            max_unfinished,
            idempotency_key,
            request_hash,
            _seal_storage(box, job_id, storage),
        )
    return Admission(job_id if _updated_one(result) else None)


def _storage_purpose(job_id: uuid.UUID) -> str:
    return f"jobs.storage:{job_id}"


def _seal_storage(box: SecretBox | None, job_id: uuid.UUID, storage: S3Target | None) -> str | None:
    if storage is None:
        return None
    assert box is not None, "a job's storage target is only ever stored sealed"
    return box.seal(storage.to_json(), _storage_purpose(job_id))


async def job_storage(pool: asyncpg.Pool, box: SecretBox, job_id: uuid.UUID) -> S3Target | None:
    """The job's own storage target, opened; None when it uses the server's bucket."""
    sealed = await pool.fetchval("SELECT storage FROM jobs WHERE id = $1", job_id)
    return None if sealed is None else S3Target.from_json(box.open(sealed, _storage_purpose(job_id)))


async def mark_workflow_started(pool: asyncpg.Pool, job_id: uuid.UUID) -> None:
    await pool.execute("UPDATE jobs SET workflow_start_pending = false WHERE id = $1", job_id)


async def jobs_awaiting_start(pool: asyncpg.Pool, created_before: int, limit: int) -> list[dict[str, Any]]:
    """Jobs whose workflow start failed or was never confirmed, oldest first."""
    rows = await pool.fetch(
        "SELECT * FROM jobs WHERE workflow_start_pending AND created_at < $1 ORDER BY created_at LIMIT $2",
        created_before,
        limit,
    )
    return [_job(row) for row in rows]


async def delete_job(pool: asyncpg.Pool, job_id: uuid.UUID) -> None:
    await pool.execute("DELETE FROM jobs WHERE id = $1", job_id)


async def get_job(pool: asyncpg.Pool, job_id: uuid.UUID, api_key_id: int) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM jobs WHERE id = $1 AND api_key_id = $2", job_id, api_key_id)
    return None if row is None else _job(row)


UNFINISHED = "Unfinished"
"""How ``count_jobs_by_status`` counts a job without an outcome yet: its row cannot tell pending from
processing."""


async def count_jobs_by_status(pool: asyncpg.Pool) -> dict[str, int]:
    """All jobs by their status, the unfinished ones as ``UNFINISHED``."""
    rows = await pool.fetch(
        "SELECT CASE WHEN finished_at IS NULL THEN $1 ELSE status END AS status, count(*) AS count "
        "FROM jobs GROUP BY 1",
        UNFINISHED,
    )
    return {row["status"]: row["count"] for row in rows}


def _job(row: asyncpg.Record) -> dict[str, Any]:
    job = dict(row)
    job["request"] = json.loads(job["request"])
    return job


def _updated_one(result: str) -> bool:
    """asyncpg returns the command tag, e.g. ``UPDATE 1`` or ``INSERT 0 1``."""
    return result.rsplit(" ", 1)[-1] == "1"


async def record_outcome(
    pool: asyncpg.Pool, job_id: uuid.UUID, outcome: JobOutcome, *, only_unfinished: bool = False
) -> bool:
    """False when no row has this id (or, with ``only_unfinished``, none that is unfinished)."""
    values = asdict(outcome)
    condition = " AND finished_at IS NULL" if only_unfinished else ""
    result = await pool.execute(
        f"UPDATE jobs SET {_SET_OUTCOME}, workflow_start_pending = false WHERE id = $1{condition}",
        job_id,
        *(values[name] for name in _OUTCOME_COLUMNS),
    )
    return _updated_one(result)


async def record_webhook_status(pool: asyncpg.Pool, job_id: uuid.UUID, status: WebhookStatus) -> bool:
    """False when no row has this id."""
    return _updated_one(await pool.execute("UPDATE jobs SET webhook_status = $2 WHERE id = $1", job_id, status))
