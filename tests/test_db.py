"""The database: numbered migrations upgrade what users already have, and the jobs table holds
every field of the outcome model."""

from __future__ import annotations

import typing
import uuid
from collections.abc import AsyncIterator
from dataclasses import fields
from enum import StrEnum
from urllib.parse import urlsplit

import asyncpg
import pytest

from twister import db
from twister.config import Settings
from twister.crypto import SecretBox, SecretKeyError, new_secret_key
from twister.embedded.postgres import superuser_dsn
from twister.embedded.stack import EmbeddedStack
from twister.models import ActivityName, ErrorKind, JobOutcome, JobStatus, JobStep, WebhookStatus
from twister.storage import S3Target

COLUMN_TYPES = {int: {"bigint", "integer"}, float: {"double precision"}, str: {"text"}}

BOX = SecretBox(new_secret_key())


@pytest.fixture
async def fresh_pool(settings: Settings, stack: EmbeddedStack) -> AsyncIterator[asyncpg.Pool]:
    """An empty database of its own on the session's Postgres."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(superuser_dsn(settings))
    try:
        owner = urlsplit(settings.database_url).username or "twister"
        await admin.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        pool = await db.create_pool(
            urlsplit(settings.database_url)._replace(path=f"/{name}").geturl(), settings.database_timeout
        )
        try:
            yield pool
        finally:
            await pool.close()
            await admin.execute(f'DROP DATABASE "{name}"')
    finally:
        await admin.close()


async def test_migrations_upgrade_a_database_made_before_them(fresh_pool: asyncpg.Pool) -> None:
    first_version, first_file = db.migrations()[0]
    await fresh_pool.execute(first_file.read_text())  # what twister created before it had migrations
    key = await db.create_api_key(fresh_pool, BOX, "old", "tw_old-key")
    await fresh_pool.execute(
        "INSERT INTO jobs (id, api_key_id, url, request, created_at, status, step) "
        "VALUES ($1, $2, 'https://a.example/v', '{}', 1, 'Completed', 'Finished')",
        uuid.uuid4(),
        key.id,
    )

    applied = await db.migrate(fresh_pool)

    assert applied == [version for version, _ in db.migrations()] and applied[0] == first_version
    assert await db.migrate(fresh_pool) == []
    recorded = await fresh_pool.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in recorded] == [(v, p.stem) for v, p in db.migrations()]
    assert await fresh_pool.fetchval("SELECT workflow_start_pending FROM jobs") is False


async def test_jobs_table_holds_every_outcome_field(fresh_pool: asyncpg.Pool) -> None:
    await db.migrate(fresh_pool)
    rows = await fresh_pool.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'jobs'"
    )
    columns = {row["column_name"]: row["data_type"] for row in rows}
    hints = typing.get_type_hints(JobOutcome)
    for field in fields(JobOutcome):
        kind = next(t for t in typing.get_args(hints[field.name]) or (hints[field.name],) if t is not type(None))
        python_type = str if issubclass(kind, StrEnum) else kind
        assert columns.get(field.name) in COLUMN_TYPES[python_type], field.name


async def test_outcome_round_trips_and_a_missing_row_is_reported(fresh_pool: asyncpg.Pool) -> None:
    await db.migrate(fresh_pool)
    key = await db.create_api_key(fresh_pool, BOX, "t", "tw_round-trip")
    job_id = uuid.uuid4()
    new_job = db.NewJob(job_id, "https://a.example/v", {"format": "mp4"})
    assert (await db.insert_job(fresh_pool, new_job, key.id, 1, 1)).created
    values: dict[str, object] = {"status": JobStatus.WARNING, "step": JobStep.FINISHED}
    values |= {"error_type": ErrorKind.WARNING, "webhook_status": WebhookStatus.PENDING}
    hints = typing.get_type_hints(JobOutcome)
    samples = {int | None: 7, float | None: 1.5, str | None: "x"}
    for field in fields(JobOutcome):
        values.setdefault(field.name, samples.get(hints[field.name], 3))
    outcome = JobOutcome(**values)  # type: ignore[arg-type]

    assert await db.record_outcome(fresh_pool, job_id, outcome)
    row = await db.get_job(fresh_pool, job_id, key.id)
    assert row is not None and {f.name: row[f.name] for f in fields(JobOutcome)} == values
    assert not await db.record_outcome(fresh_pool, uuid.uuid4(), outcome)
    assert not await db.record_webhook_status(fresh_pool, uuid.uuid4(), WebhookStatus.DELIVERED)


async def test_replayed_job_reopens_once_and_counts_earlier_attempts(fresh_pool: asyncpg.Pool) -> None:
    await db.migrate(fresh_pool)
    key = await db.create_api_key(fresh_pool, BOX, "t", "tw_replayed")
    job_id = uuid.uuid4()
    assert (await db.insert_job(fresh_pool, db.NewJob(job_id, "https://a.example/v", {}), key.id, 1, 1)).created
    failed = JobOutcome(JobStatus.FAILED, JobStep.FINISHED, 50, error="S3 down", download_retries=0, upload_retries=2)
    assert await db.record_outcome(fresh_pool, job_id, failed)

    await db.set_earlier_attempts(fresh_pool, job_id, {ActivityName.DOWNLOAD: 0, ActivityName.UPLOAD: 3})  # reset
    assert not await db.reopen_job(fresh_pool, job_id, finished_at=49)  # not the outcome it replays
    assert await db.reopen_job(fresh_pool, job_id, finished_at=50)
    row = await db.get_job(fresh_pool, job_id, None)
    assert row is not None and (row["status"], row["step"], row["finished_at"], row["error"]) == (
        "Pending",
        "Queued",
        None,
        None,
    )
    # the new run saw the download again (1 attempt) and uploaded at its first attempt
    done = JobOutcome(JobStatus.COMPLETED, JobStep.FINISHED, 90, download_retries=0, upload_retries=0)
    assert await db.record_outcome(fresh_pool, job_id, done)
    row = await db.get_job(fresh_pool, job_id, key.id)
    assert row is not None and (row["download_retries"], row["upload_retries"]) == (0, 3)

    cancelled_early = JobOutcome(JobStatus.FAILED, JobStep.CANCELLED, 95)  # no step ran in this run
    assert await db.record_outcome(fresh_pool, job_id, cancelled_early)
    row = await db.get_job(fresh_pool, job_id, key.id)
    assert row is not None and (row["download_retries"], row["upload_retries"]) == (None, 2)


async def test_webhook_secrets_are_stored_sealed(fresh_pool: asyncpg.Pool) -> None:
    await db.migrate(fresh_pool)
    key = await db.create_api_key(fresh_pool, BOX, "sealed", "tw_sealed")
    secret = await db.webhook_secret(fresh_pool, BOX, key.id)
    stored = await fresh_pool.fetchval("SELECT webhook_secret FROM api_keys WHERE id = $1", key.id)
    assert secret.startswith("whsec_") and secret not in stored
    with pytest.raises(SecretKeyError, match="TWISTER_SECRET_KEY"):
        await db.webhook_secret(fresh_pool, SecretBox(new_secret_key()), key.id)

    # a secret stored in plain text before twister sealed them keeps working, and is sealed on first use
    await fresh_pool.execute("UPDATE api_keys SET webhook_secret = 'whsec_legacy' WHERE id = $1", key.id)
    assert await db.webhook_secret(fresh_pool, BOX, key.id) == "whsec_legacy"
    resealed = await fresh_pool.fetchval("SELECT webhook_secret FROM api_keys WHERE id = $1", key.id)
    assert "whsec_legacy" not in resealed and await db.webhook_secret(fresh_pool, BOX, key.id) == "whsec_legacy"


async def test_server_key_rotation_reseals_every_secret(fresh_pool: asyncpg.Pool) -> None:
    """The README's rotation: new key in TWISTER_SECRET_KEY, old in TWISTER_PREVIOUS_SECRET_KEYS,
    `twister secret-key --reseal`, then the old key can go."""
    await db.migrate(fresh_pool)
    old, new = new_secret_key(), new_secret_key()
    key = await db.create_api_key(fresh_pool, SecretBox(old), "rotated", "tw_rotated")
    secret = await db.webhook_secret(fresh_pool, SecretBox(old), key.id)
    await db.set_slack_alerts(fresh_pool, SecretBox(old), key.id, db.SlackAlerts("https://hooks.example/s", "all"))
    storage = S3Target("https://s3.example", "bucket", "us-east-1", "AKID", "very-secret")
    job = db.NewJob(uuid.uuid4(), "https://a.example/v", {}, storage)
    assert (await db.insert_job(fresh_pool, job, key.id, 1, 10, box=SecretBox(old))).created

    rotating = SecretBox(new, previous=[old])
    assert await db.webhook_secret(fresh_pool, rotating, key.id) == secret  # nothing breaks meanwhile
    assert await db.reseal_secrets(fresh_pool, rotating) == 3

    only_new = SecretBox(new)
    assert await db.webhook_secret(fresh_pool, only_new, key.id) == secret
    assert await db.slack_alerts(fresh_pool, only_new, key.id) == db.SlackAlerts("https://hooks.example/s", "all")
    assert await db.job_storage(fresh_pool, only_new, job.id) == storage
    with pytest.raises(SecretKeyError):
        await db.webhook_secret(fresh_pool, SecretBox(old), key.id)
