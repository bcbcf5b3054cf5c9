"""Postgres schema and queries (asyncpg)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from twister.crypto import SecretBox, is_sealed
from twister.keys import hash_api_key, new_api_key, new_webhook_secret
from twister.models import (
    COUNTED_STEPS,
    ActivityName,
    JobLimits,
    JobOutcome,
    JobStatus,
    JobStep,
    KeyLimits,
    WebhookStatus,
)
from twister.storage import S3Target

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
Connection = asyncpg.Connection | PoolConnectionProxy
_MIGRATION_LOCK = 7410442
_ADMISSION_LOCK = 7410443  # with the key id: one admission at a time per key

_OUTCOME_COLUMNS = [f.name for f in fields(JobOutcome)]
_KEPT_WHEN_UNKNOWN = {"title"}  # a playlist entry's title stays when its download found none
EARLIER_ATTEMPTS = {f"{step}_retries": f"earlier_{step}_attempts" for step in COUNTED_STEPS}
"""Retry counts, and the column of attempts that earlier runs of the job made (set by a replay)."""


def _set_column(name: str, value: str) -> str:
    if name in _KEPT_WHEN_UNKNOWN:
        return f"{name} = COALESCE({value}, {name})"
    if name in EARLIER_ATTEMPTS:  # the run's retries + 1 are its attempts; with the earlier ones, less one
        earlier = EARLIER_ATTEMPTS[name]
        return (
            f"{name} = CASE WHEN {value}::int IS NULL AND {earlier} = 0 THEN NULL "
            f"ELSE COALESCE({value}::int + 1, 0) + {earlier} - 1 END"
        )
    return f"{name} = {value}"


_SET_OUTCOME = ", ".join(_set_column(name, f"${i + 2}") for i, name in enumerate(_OUTCOME_COLUMNS))


def now_ms() -> int:
    return int(time.time() * 1000)


async def create_pool(database_url: str, timeout: float) -> asyncpg.Pool:
    """A pool that connects on first use, so a process starts even while Postgres is down; a connect
    or a query that takes longer than ``timeout`` seconds fails instead of waiting on a frozen server."""
    return await asyncpg.create_pool(
        database_url, min_size=0, max_size=10, timeout=timeout, command_timeout=timeout, reset=_keep_session
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A connection back in the pool only has an open transaction rolled back (asyncpg always does
    that): twister keeps no session state (no LISTEN, SET, cursors or session advisory locks; its
    locks are transaction-scoped), so asyncpg's default reset query would be an extra round trip
    on every query for nothing."""


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
    limits: KeyLimits = field(default_factory=KeyLimits)


_KEY_LIMIT_COLUMNS = [f.name for f in fields(KeyLimits)]


def _api_key(row: asyncpg.Record | dict[str, Any]) -> ApiKey:
    return ApiKey(row["id"], row["name"], KeyLimits(**{name: row[name] for name in _KEY_LIMIT_COLUMNS}))


def _webhook_secret_purpose(api_key_id: int) -> str:
    return f"api_keys.webhook_secret:{api_key_id}"


async def create_api_key(
    pool: asyncpg.Pool, box: SecretBox, name: str, key: str, limits: KeyLimits | None = None
) -> ApiKey:
    """A new key (only its hash is stored) with a new webhook secret, sealed with the server key."""
    limits = limits or KeyLimits()
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
        await _set_limits(conn, key_id, {name: cap for name, cap in asdict(limits).items() if cap is not None})
    return ApiKey(id=key_id, name=name, limits=limits)


async def _set_limits(conn: Connection, key_id: int, limits: dict[str, Any]) -> bool:
    """Sets the given caps (a None value clears that cap); False when no key has this id."""
    if not limits:
        return True
    assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(limits) if name in _KEY_LIMIT_COLUMNS)
    return _updated_one(
        await conn.execute(f"UPDATE api_keys SET {assignments} WHERE id = $1", key_id, *limits.values())
    )


async def set_key_limits(pool: asyncpg.Pool, key_id: int, limits: dict[str, Any]) -> bool:
    """``limits``: KeyLimits field names to set (None clears one); False when no key has this id."""
    async with pool.acquire() as conn:
        return await _set_limits(conn, key_id, limits)


async def list_api_keys(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Every key's id, name, dates and caps (never its hash)."""
    columns = ", ".join(["id", "name", "created_at", "revoked_at", *_KEY_LIMIT_COLUMNS])
    return [dict(row) for row in await pool.fetch(f"SELECT {columns} FROM api_keys ORDER BY id")]


async def revoke_api_key(pool: asyncpg.Pool, key_id: int) -> bool:
    """False when no unrevoked key has this id."""
    result = await pool.execute(
        "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", key_id, now_ms()
    )
    return _updated_one(result)


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
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash_api_key(key))
    return _api_key(row) if row else None


_KEY_AS = "api_key."  # the key's columns come as "api_key.<name>", beside the job's own
_KEY_AND_JOB = (
    "SELECT "
    + ", ".join(f'k.{name} AS "{_KEY_AS}{name}"' for name in ["id", "name", *_KEY_LIMIT_COLUMNS])
    + ", jobs.* FROM api_keys k LEFT JOIN jobs ON jobs.id = $2 AND jobs.api_key_id = k.id"
    + " WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
)


async def find_api_key_and_job(
    pool: asyncpg.Pool, key: str, job_id: uuid.UUID
) -> tuple[ApiKey | None, dict[str, Any] | None]:
    """``find_api_key``, and ``get_job`` of that key, in one round trip."""
    row = await pool.fetchrow(_KEY_AND_JOB, hash_api_key(key), job_id)
    if row is None:
        return None, None
    key_columns = {name[len(_KEY_AS) :]: value for name, value in row.items() if name.startswith(_KEY_AS)}
    job = {name: value for name, value in row.items() if not name.startswith(_KEY_AS)}
    return _api_key(key_columns), None if job["id"] is None else _job(job)


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


async def rotate_webhook_secret(pool: asyncpg.Pool, box: SecretBox, api_key_id: int) -> str:
    """A new signing secret for the key; webhooks are signed with it from now on."""
    secret = new_webhook_secret()
    await pool.execute(
        "UPDATE api_keys SET webhook_secret = $2 WHERE id = $1",
        api_key_id,
        box.seal(secret, _webhook_secret_purpose(api_key_id)),
    )
    return secret


def _slack_purpose(api_key_id: int) -> str:
    return f"api_keys.slack_webhook:{api_key_id}"


@dataclass(frozen=True)
class SlackAlerts:
    webhook_url: str
    notify_level: str


async def set_slack_alerts(pool: asyncpg.Pool, box: SecretBox, api_key_id: int, alerts: SlackAlerts | None) -> None:
    """Sets (or with None, removes) the key's Slack alerts; the webhook URL is kept sealed."""
    sealed = box.seal(alerts.webhook_url, _slack_purpose(api_key_id)) if alerts else None
    await pool.execute(
        "UPDATE api_keys SET slack_webhook = $2, slack_notify_level = $3 WHERE id = $1",
        api_key_id,
        sealed,
        alerts.notify_level if alerts else None,
    )


async def slack_alerts(pool: asyncpg.Pool, box: SecretBox, api_key_id: int) -> SlackAlerts | None:
    row = await pool.fetchrow("SELECT slack_webhook, slack_notify_level FROM api_keys WHERE id = $1", api_key_id)
    if row is None or row["slack_webhook"] is None:
        return None
    return SlackAlerts(box.open(row["slack_webhook"], _slack_purpose(api_key_id)), row["slack_notify_level"])


async def reseal_secrets(pool: asyncpg.Pool, box: SecretBox) -> int:
    """Seals every stored secret anew with the current server key (after a key rotation); returns how many."""
    sealed_columns: dict[tuple[str, str], Callable[[Any], str]] = {
        # table, column: the purpose its values are sealed for, from the row's id
        ("api_keys", "webhook_secret"): _webhook_secret_purpose,
        ("api_keys", "slack_webhook"): _slack_purpose,
        ("jobs", "storage"): _storage_purpose,
    }
    count = 0
    for (table, column), purpose_of in sealed_columns.items():
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(f"SELECT id, {column} AS sealed FROM {table} WHERE {column} IS NOT NULL FOR UPDATE")
            for row in rows:
                purpose = purpose_of(row["id"])
                opened = box.open(row["sealed"], purpose) if is_sealed(row["sealed"]) else row["sealed"]
                await conn.execute(
                    f"UPDATE {table} SET {column} = $2 WHERE id = $1", row["id"], box.seal(opened, purpose)
                )
            count += len(rows)
    return count


@dataclass(frozen=True)
class Admission:
    """What ``insert_job`` did: made the job, found the earlier job of the idempotency key (with the
    hash of the request that made it), or neither because the key has too many unfinished jobs."""

    job_id: uuid.UUID | None
    earlier_request_hash: str | None = None

    @property
    def created(self) -> bool:
        return self.job_id is not None and self.earlier_request_hash is None


@dataclass(frozen=True)
class NewJob:
    id: uuid.UUID
    url: str
    request: dict[str, Any]
    """The effective create parameters (echoed by GET, and the job's input when its workflow starts)."""
    storage: S3Target | None = None
    title: str | None = None
    """Known before the download for a playlist's entries."""
    retry_of: uuid.UUID | None = None
    limits: JobLimits | None = None


@dataclass(frozen=True)
class NewBatch:
    id: uuid.UUID
    show_url: str | None
    title: str | None
    folder: str | None
    webhook_url: str | None
    paused: bool


async def _lock_admissions(conn: Connection, api_key_id: int) -> None:
    """Serializes the admissions of one key until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _ADMISSION_LOCK, api_key_id)


async def _admits(conn: Connection, api_key_id: int, count: int, max_unfinished: int) -> bool:
    """Under the key's admission lock: may ``count`` more jobs join the key's unfinished ones?"""
    unfinished = await conn.fetchval(
        "SELECT count(*) FROM jobs WHERE api_key_id = $1 AND finished_at IS NULL", api_key_id
    )
    return bool(unfinished + count <= max_unfinished)


async def _insert_jobs(
    conn: Connection,
    jobs: list[NewJob],
    api_key_id: int,
    created_at: int,
    box: SecretBox | None,
    *,
    start_pending: bool = True,
    batch_id: uuid.UUID | None = None,
    idempotency: tuple[str, str] | None = None,
) -> None:
    idempotency_key, request_hash = idempotency or (None, None)
    await conn.executemany(
        "INSERT INTO jobs (id, api_key_id, url, request, created_at, status, step, workflow_start_pending, "
        "batch_id, idempotency_key, request_hash, storage, title, retry_of, limits) "
        "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb)",
        [
            (
                job.id,
                api_key_id,
                job.url,
                json.dumps(job.request),
                created_at,
                JobStatus.PENDING,
                JobStep.QUEUED,
                start_pending,
                batch_id,
                idempotency_key,
                request_hash,
                _seal_storage(box, job.id, job.storage),
                job.title,
                job.retry_of,
                json.dumps(asdict(job.limits)) if job.limits else None,
            )
            for job in jobs
        ],
    )


async def insert_job(
    pool: asyncpg.Pool,
    job: NewJob,
    api_key_id: int,
    created_at: int,
    max_unfinished: int,
    idempotency: tuple[str, str] | None = None,
    box: SecretBox | None = None,
) -> Admission:
    """A new job, its workflow not started yet (``workflow_start_pending``), unless ``idempotency``
    (key, request hash) names an earlier job of this API key, or the key already has
    ``max_unfinished`` unfinished jobs. Admissions of one key are serialized."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_admissions(conn, api_key_id)
        if idempotency is not None:
            earlier = await conn.fetchrow(
                "SELECT id, request_hash FROM jobs WHERE api_key_id = $1 AND idempotency_key = $2",
                api_key_id,
                idempotency[0],
            )
            if earlier is not None:
                return Admission(earlier["id"], earlier["request_hash"])
        if not await _admits(conn, api_key_id, 1, max_unfinished):
            return Admission(None)
        await _insert_jobs(conn, [job], api_key_id, created_at, box, idempotency=idempotency)
    return Admission(job.id)


async def insert_batch(
    pool: asyncpg.Pool,
    batch: NewBatch,
    jobs: list[NewJob],
    api_key_id: int,
    created_at: int,
    max_unfinished: int,
    box: SecretBox | None = None,
) -> bool:
    """A batch and its jobs, all or nothing: False when they would take the key past ``max_unfinished``
    unfinished jobs. A paused batch's jobs get no workflow until the batch is started."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_admissions(conn, api_key_id)
        if not await _admits(conn, api_key_id, len(jobs), max_unfinished):
            return False
        await conn.execute(
            "INSERT INTO batches (id, api_key_id, show_url, title, folder, webhook_url, paused, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            batch.id,
            api_key_id,
            batch.show_url,
            batch.title,
            batch.folder,
            batch.webhook_url,
            batch.paused,
            created_at,
        )
        await _insert_jobs(conn, jobs, api_key_id, created_at, box, start_pending=not batch.paused, batch_id=batch.id)
    return True


async def get_batch(pool: asyncpg.Pool, batch_id: uuid.UUID, api_key_id: int) -> dict[str, Any] | None:
    """The batch row with its jobs (oldest first) under ``jobs``."""
    row = await pool.fetchrow("SELECT * FROM batches WHERE id = $1 AND api_key_id = $2", batch_id, api_key_id)
    if row is None:
        return None
    jobs = await pool.fetch("SELECT * FROM jobs WHERE batch_id = $1 ORDER BY created_at, id", batch_id)
    return {**dict(row), "jobs": [_job(job) for job in jobs]}


async def start_batch(pool: asyncpg.Pool, batch_id: uuid.UUID, api_key_id: int) -> list[dict[str, Any]] | None:
    """Unpauses the batch; returns its unfinished jobs, now due to start (None: no paused batch of the key)."""
    async with pool.acquire() as conn, conn.transaction():
        started = await conn.fetchval(
            "UPDATE batches SET paused = false WHERE id = $1 AND api_key_id = $2 AND paused RETURNING id",
            batch_id,
            api_key_id,
        )
        if started is None:
            return None
        rows = await conn.fetch(
            "UPDATE jobs SET workflow_start_pending = true WHERE batch_id = $1 AND finished_at IS NULL RETURNING *",
            batch_id,
        )
    return [_job(row) for row in rows]


async def rename_batch_job(pool: asyncpg.Pool, batch_id: uuid.UUID, job_id: uuid.UUID, filename: str) -> bool:
    """Sets the filename of an unfinished job of a paused batch; False when there is no such job."""
    result = await pool.execute(
        "UPDATE jobs SET request = jsonb_set(request, '{filename}', to_jsonb($3::text)) "
        "WHERE id = $1 AND batch_id = $2 AND finished_at IS NULL "
        "AND (SELECT paused FROM batches WHERE id = $2)",
        job_id,
        batch_id,
        filename,
    )
    return _updated_one(result)


async def list_jobs(
    pool: asyncpg.Pool, api_key_id: int | None, status: JobStatus | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the key's jobs (every key's with None), newest first, and how many there are in all."""
    given = {name: value for name, value in {"api_key_id": api_key_id, "status": status}.items() if value is not None}
    where = " AND ".join(f"{name} = ${i + 1}" for i, name in enumerate(given)) or "true"
    args = list(given.values())
    page = len(args) + 1
    rows = await pool.fetch(
        f"SELECT * FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ${page} OFFSET ${page + 1}",
        *args,
        limit,
        offset,
    )
    total = await pool.fetchval(f"SELECT count(*) FROM jobs WHERE {where}", *args)
    return [_job(row) for row in rows], int(total)


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


async def get_job(pool: asyncpg.Pool, job_id: uuid.UUID, api_key_id: int | None) -> dict[str, Any] | None:
    """The job's row if it belongs to the key (whoever's it is with None, for operators)."""
    row = await pool.fetchrow(
        "SELECT * FROM jobs WHERE id = $1 AND ($2::bigint IS NULL OR api_key_id = $2)", job_id, api_key_id
    )
    return None if row is None else _job(row)


async def finished_jobs(
    pool: asyncpg.Pool, status: JobStatus, finished_since: int, api_key_id: int | None
) -> list[dict[str, Any]]:
    """Jobs that ended with ``status`` since then (of one key, or all), oldest first; cancelled ones
    are left out (someone stopped them on purpose)."""
    rows = await pool.fetch(
        "SELECT * FROM jobs WHERE status = $1 AND finished_at >= $2 AND step <> $3 "
        "AND ($4::bigint IS NULL OR api_key_id = $4) ORDER BY finished_at, id",
        status,
        finished_since,
        JobStep.CANCELLED,
        api_key_id,
    )
    return [_job(row) for row in rows]


async def set_earlier_attempts(pool: asyncpg.Pool, job_id: uuid.UUID, attempts: dict[ActivityName, int]) -> None:
    """The attempts of each counted step that the job's next run will not see in its own history (a
    replay sets them before it starts that run; the next outcome adds them to its retry counts)."""
    columns = [EARLIER_ATTEMPTS[f"{step}_retries"] for step in COUNTED_STEPS]
    assignments = ", ".join(f"{column} = ${i + 2}" for i, column in enumerate(columns))
    await pool.execute(f"UPDATE jobs SET {assignments} WHERE id = $1", job_id, *(attempts[s] for s in COUNTED_STEPS))


async def reopen_job(pool: asyncpg.Pool, job_id: uuid.UUID, finished_at: int) -> bool:
    """Makes a finished job pending again once a replay has started its next run, which answers for
    it until it writes its outcome. False when the row no longer ended at ``finished_at`` (that run has
    already written a newer outcome)."""
    result = await pool.execute(
        "UPDATE jobs SET finished_at = NULL, status = $3, step = $4, error = NULL, error_type = NULL "
        "WHERE id = $1 AND finished_at = $2",
        job_id,
        finished_at,
        JobStatus.PENDING,
        JobStep.QUEUED,
    )
    return _updated_one(result)


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


def _job(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    job = dict(row)
    job["request"] = json.loads(job["request"])
    job["limits"] = JobLimits(**json.loads(job["limits"])) if job.get("limits") else None
    return job


async def jobs_created(pool: asyncpg.Pool, api_key_id: int) -> int:
    """The key's jobs; a retry is the same job asked again, not another one."""
    return int(await pool.fetchval("SELECT count(*) FROM jobs WHERE api_key_id = $1 AND retry_of IS NULL", api_key_id))


async def stored_bytes(pool: asyncpg.Pool, api_key_id: int) -> int:
    """The bytes of the key's files still stored (a deleted file no longer counts)."""
    total = await pool.fetchval(
        "SELECT coalesce(sum(file_size), 0) FROM jobs WHERE api_key_id = $1 AND s3_key IS NOT NULL", api_key_id
    )
    return int(total)


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


async def claim_batch_end(pool: asyncpg.Pool, job_id: uuid.UUID, finished_at: int) -> bool:
    """True for the one job whose end finished its batch (asked again, that job still gets True).
    Called after the job's own outcome is written: of the batch's last jobs to finish, the one that
    asks last sees them all finished, and the row lock lets only one claim."""
    claimed = await pool.fetchval(
        "UPDATE batches b SET finished_at = $2, finished_by = $1 "
        "FROM jobs j WHERE j.id = $1 AND b.id = j.batch_id AND (b.finished_by = $1 OR (b.finished_at IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.batch_id = b.id AND o.finished_at IS NULL))) RETURNING b.id",
        job_id,
        finished_at,
    )
    return claimed is not None


async def forget_files(pool: asyncpg.Pool, job_id: uuid.UUID) -> None:
    """The job's stored files were deleted: it has no file to serve any more."""
    await pool.execute("UPDATE jobs SET s3_key = NULL, subtitle_key = NULL, thumbnail_key = NULL WHERE id = $1", job_id)


async def record_webhook_status(pool: asyncpg.Pool, job_id: uuid.UUID, status: WebhookStatus) -> bool:
    """False when no row has this id."""
    return _updated_one(await pool.execute("UPDATE jobs SET webhook_status = $2 WHERE id = $1", job_id, status))
