"""The work of the ``twister jobs`` commands: every key's jobs, straight from Postgres and Temporal.
Each returns the command's exit code and writes what an operator reads."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from twister import db
from twister.backends import Backends
from twister.gateway.documents import final_document
from twister.gateway.errors import DATABASE_ERRORS, ApiError
from twister.gateway.lifecycle import cancel
from twister.gateway.starts import StartUnconfirmed, TemporalUnreachable
from twister.gateway.status import live_document, read_live_state
from twister.models import JobStatus
from twister.operate.replay import NotReplayable, Replayed, replay_job

REPLAY_ERRORS: tuple[type[Exception], ...] = (
    NotReplayable,
    RPCError,
    StartUnconfirmed,
    TemporalUnreachable,
    WorkflowAlreadyStartedError,  # a run started meanwhile
    *DATABASE_ERRORS,
)
"""What stops one job's replay: reported, and a bulk replay goes on with the next job."""


async def _row(backends: Backends, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = await db.get_job(backends.pool, job_id, None)
    if row is None:
        typer.echo(f"No job has id {job_id}", err=True)
    return row


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


async def list_jobs(backends: Backends, key_id: int | None, status: JobStatus | None, limit: int, offset: int) -> int:
    rows, total = await db.list_jobs(backends.pool, key_id, status, limit, offset)
    for row in rows:
        error = f"  ({row['error']})" if row["error"] and row["finished_at"] else ""
        typer.echo(
            f"{row['id']}  {row['status']:<10} {row['step']:<11} key {row['api_key_id']:<4} "
            f"{_time(row['created_at'])}  {row['url']}{error}"
        )
    typer.echo(f"{len(rows)} of {total} jobs" + (f" (from {offset + 1})" if offset else ""))
    return 0


async def show_job(backends: Backends, job_id: uuid.UUID) -> int:
    row = await _row(backends, job_id)
    if row is None:
        return 1
    timeout = timedelta(seconds=backends.settings.temporal_rpc_timeout)
    state = await read_live_state(backends.temporal, str(job_id), timeout) if row["finished_at"] is None else None
    document = live_document(row, state) if state else await final_document(backends, row)
    document["api_key_id"] = row["api_key_id"]
    try:
        description = await backends.temporal.get_workflow_handle(str(job_id)).describe()
        status = description.status.name if description.status else None
        document["workflow"] = {"run_id": description.run_id, "status": status}
    except RPCError as exc:
        document["workflow"] = {"error": exc.message}
    typer.echo(json.dumps(document, indent=2))
    return 0


async def cancel_job(backends: Backends, job_id: uuid.UUID) -> int:
    row = await _row(backends, job_id)
    if row is None:
        return 1
    try:
        await cancel(backends, row)
    except ApiError as exc:
        typer.echo(f"Job {job_id}: {exc.message}", err=True)
        return 1
    typer.echo(f"Job {job_id} cancelled")
    return 0


async def replay_one(backends: Backends, job_id: uuid.UUID, from_start: bool) -> int:
    row = await _row(backends, job_id)
    if row is None:
        return 1
    try:
        done = await replay_job(backends, row, from_start=from_start)
    except REPLAY_ERRORS as exc:
        typer.echo(f"Job {job_id} not replayed: {exc}", err=True)
        return 1
    typer.echo(f"Job {done.job_id} replayed {done.resumed}")
    return 0


async def replay_many(
    backends: Backends, status: JobStatus, finished_since: int, key_id: int | None, from_start: bool
) -> int:
    """Replays each selected job under a progress bar (on stderr), then sums up on stdout; 1 if any
    could not be replayed."""
    rows = await db.finished_jobs(backends.pool, status, finished_since, key_id)
    replayed: list[Replayed] = []
    refused: list[str] = []
    columns = (
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("", total=len(rows))
        for row in rows:
            progress.update(task, description=str(row["id"]))
            try:
                replayed.append(await replay_job(backends, row, from_start=from_start))
            except REPLAY_ERRORS as exc:
                refused.append(f"{row['id']}: {exc}")
            progress.advance(task)
    kinds = Counter(done.resumed for done in replayed)
    detail = ", ".join(f"{count} {resumed}" for resumed, count in sorted(kinds.items()))
    typer.echo(f"{len(replayed)} of {len(rows)} jobs replayed" + (f" ({detail})" if detail else ""))
    for line in refused:
        typer.echo(f"not replayed: {line}")
    return 1 if refused else 0
