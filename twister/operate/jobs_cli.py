"""``twister jobs``: an operator's view of every key's jobs, straight from Postgres and Temporal (no
API key needed): list, show, cancel, and replay Failed or Warning jobs. The work is in
``operate/jobs.py``, loaded only when a command runs (the other ``twister`` commands start faster)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from twister.cli_common import exit_now, load_settings
from twister.models import RETRYABLE_STATUSES, JobStatus, status_named

if TYPE_CHECKING:
    from twister.backends import Backends

jobs_app = typer.Typer(no_args_is_help=True, help="Every key's jobs, for operators: list, show, cancel, replay.")

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _run(work: Callable[..., Awaitable[int]], *args: Any) -> NoReturn:
    """Runs ``work(backends, *args)`` and leaves with the exit code it returns."""
    from twister.backends import open_backends

    settings = load_settings()

    async def main() -> int:
        backends: Backends
        async with open_backends(settings) as backends:
            return await work(backends, *args)

    exit_now(asyncio.run(main()))


def _status(name: str | None) -> JobStatus | None:
    if name is None:
        return None
    status = status_named(name)
    if status is None:
        raise typer.BadParameter(f"one of {', '.join(s.lower() for s in JobStatus)}", param_hint="--status")
    return status


def _job_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a job id") from None


def _since(text: str) -> int:
    """``2h`` (s, m, h or d) as the epoch milliseconds that long ago."""
    found = _DURATION.match(text.strip())
    if not found:
        raise typer.BadParameter("a number and a unit, e.g. 90s, 30m, 2h or 1d", param_hint="--since")
    ago = timedelta(**{_UNITS[found[2]]: int(found[1])})
    return int((time.time() - ago.total_seconds()) * 1000)


JobIdArgument = Annotated[str, typer.Argument(help="The job's id.")]
KeyIdOption = Annotated[int | None, typer.Option("--key-id", help="Only this API key's jobs (twister keys list).")]


@jobs_app.command("list")
def list_jobs(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, processing, completed, failed, warning or skipped.")
    ] = None,
    key_id: KeyIdOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Jobs to show.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Newest jobs to skip.")] = 0,
) -> None:
    """Jobs newest first, one a line: id, status, step, key id, created (UTC), URL, and the error."""
    from twister.operate import jobs

    _run(jobs.list_jobs, key_id, _status(status), limit, offset)


@jobs_app.command("show")
def show(job_id: JobIdArgument) -> None:
    """The job's status document, as GET /jobs/{id} answers it, with its key id and Temporal run."""
    from twister.operate import jobs

    _run(jobs.show_job, _job_id(job_id))


@jobs_app.command("cancel")
def cancel(job_id: JobIdArgument) -> None:
    """Cancel a pending or processing job, as DELETE /jobs/{id} does (its webhook hears of it)."""
    from twister.operate import jobs

    _run(jobs.cancel_job, _job_id(job_id))


@jobs_app.command("replay")
def replay(
    job_id: Annotated[str | None, typer.Argument(help="The job's id; or select jobs with --status/--since.")] = None,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="A new run from the download, not a resume of the last one.")
    ] = False,
    status: Annotated[
        str | None, typer.Option("--status", help="Replay the jobs that ended so: failed (the default) or warning.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only jobs that ended this recently, e.g. 2h.")] = None,
    key_id: KeyIdOption = None,
) -> None:
    """Run a Failed or Warning job again under its id: by default from just before the step that did not
    finish (the finished steps' files are reused while the worker keeps them), or --from-start. Without
    a job id, every job that ended with --status (not cancelled ones) --since that long ago."""
    from twister.operate import jobs

    if job_id is not None:
        if status or since or key_id is not None:
            raise typer.BadParameter("give a job id, or --status/--since/--key-id to select jobs, not both")
        _run(jobs.replay_one, _job_id(job_id), from_start)
    selected = _status(status) or JobStatus.FAILED
    if selected not in RETRYABLE_STATUSES:
        raise typer.BadParameter("only failed or warning jobs are replayed", param_hint="--status")
    _run(jobs.replay_many, selected, _since(since) if since else 0, key_id, from_start)
