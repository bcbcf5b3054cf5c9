"""Accepting work: checks every address, writes the rows, then starts the workflows.

A job is written before its workflow starts (``workflow_start_pending``), so an accepted job always
runs: a start that cannot be confirmed is repeated by the reconciler (``starts.py``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from twister import db
from twister.gateway.deps import Services
from twister.gateway.errors import ApiError
from twister.gateway.quota import job_limits, too_many_unfinished, unfinished_limit, within_caps
from twister.gateway.schemas import JobCreate, PlaylistCreated, VideoJob
from twister.gateway.starts import StartUnconfirmed, TemporalUnreachable, confirm_started, start_job_workflow
from twister.logs import job_context
from twister.models import JobInput, PlaylistEntry
from twister.net.guard import UnsafeUrlError, check_url
from twister.storage import S3Target, StorageRefused, probe_target

log = logging.getLogger(__name__)

CONCURRENT_STARTS = 8


async def check_source(svc: Services, url: str, field: str) -> None:
    try:
        await asyncio.to_thread(
            check_url, url, svc.settings.allowed_network_list, field, blocked_endpoints=svc.blocked_endpoints
        )
    except UnsafeUrlError as exc:
        message = str(exc)
        raise ApiError(400, message if message.startswith(field) else f"{field}: {message}") from None


async def check_delivery(svc: Services, job: JobCreate) -> S3Target | None:
    """Where the job's results go (webhook, its own storage target, returned) is allowed, and that
    target takes a test write, before anything is accepted."""
    if job.webhook_url:
        await check_source(svc, job.webhook_url, "webhook_url")
    storage = job.storage_target()
    if storage is not None:
        await check_source(svc, storage.endpoint, "storage.endpoint")
        try:
            await asyncio.to_thread(probe_target, storage, job.options().storage_prefix or "")
        except StorageRefused as exc:
            raise ApiError(400, f"Invalid value for 'storage': the storage refused a test write ({exc})") from None
    return storage


async def start_single(svc: Services, job: JobCreate, new: db.NewJob, api_key_id: int, created_at: int) -> None:
    """Starts a just-written job's workflow; if Temporal is provably unreachable, the job is undone (503)."""
    job_id, limits = new.id, new.limits or svc.settings.job_limits()
    with job_context(job_id):
        try:
            await start_job_workflow(
                svc.temporal, svc.settings, job.job_input(str(job_id), api_key_id, created_at, svc.settings, limits)
            )
        except TemporalUnreachable as exc:
            await db.delete_job(svc.pool, job_id)
            log.warning("could not start job %s: %s", job_id, exc)
            raise ApiError(
                503, "The workflow service (Temporal) is unreachable; the job was not created. Try again shortly."
            ) from None
        except StartUnconfirmed as exc:
            # It may have started anyway: the job is kept, and the reconciler makes sure it runs.
            log.warning("start of job %s unconfirmed (%s); the reconciler will confirm it", job_id, exc)
        else:
            await confirm_started(svc, job_id)
        log.info("job %s created", job_id)


async def start_accepted(svc: Services, inputs: list[JobInput]) -> None:
    """Starts the workflows of accepted batch jobs, a few at a time; one that does not start now is
    left to the reconciler (the batch is accepted either way)."""
    gate = asyncio.Semaphore(CONCURRENT_STARTS)

    async def start(job: JobInput) -> None:
        async with gate:
            with job_context(job.job_id):
                try:
                    await start_job_workflow(svc.temporal, svc.settings, job)
                except (TemporalUnreachable, StartUnconfirmed) as exc:
                    log.warning("job %s not started yet (%s); the reconciler will start it", job.job_id, exc)
                    return
                await confirm_started(svc, uuid.UUID(job.job_id))

    await asyncio.gather(*(start(job) for job in inputs))


async def create_batch(
    svc: Services,
    key: db.ApiKey,
    creates: list[JobCreate],
    titles: list[str | None],
    source_fields: list[str],
    storage: S3Target | None,
    *,
    show_url: str | None = None,
    title: str | None = None,
    paused: bool = False,
) -> tuple[uuid.UUID, list[db.NewJob]]:
    """A batch with one job per create (all sharing the first's webhook, folder and storage), started
    unless paused. Per create: its title if known beforehand, and how errors name its ``url``."""
    creates = [within_caps(svc, key, create) for create in creates]
    first = creates[0]
    for create, field in zip(creates, source_fields, strict=True):
        await check_source(svc, create.url, field)
    limits = await job_limits(svc, key)
    batch = db.NewBatch(uuid.uuid4(), show_url, title, first.folder, first.webhook_url, paused)
    jobs = [
        db.NewJob(uuid.uuid4(), create.url, create.echo(), storage, known, limits=limits)
        for create, known in zip(creates, titles, strict=True)
    ]
    created_at = db.now_ms()
    accepted = await db.insert_batch(svc.pool, batch, jobs, key.id, created_at, unfinished_limit(svc, key), svc.box)
    if not accepted:
        raise too_many_unfinished(svc, key)
    if not paused:
        inputs = [
            create.job_input(str(new.id), key.id, created_at, svc.settings, limits, str(batch.id))
            for create, new in zip(creates, jobs, strict=True)
        ]
        await start_accepted(svc, inputs)
    log.info("batch %s created with %d jobs%s", batch.id, len(jobs), " (paused)" if paused else "")
    return batch.id, jobs


async def create_playlist(
    svc: Services,
    key: db.ApiKey,
    job: JobCreate,
    storage: S3Target | None,
    title: str | None,
    entries: list[PlaylistEntry],
) -> PlaylistCreated:
    limit = svc.settings.max_playlist_entries
    if len(entries) > limit:
        raise ApiError(
            400, f"Invalid value for 'url': the playlist lists more than {limit} videos, this server's limit"
        )
    creates = [job.model_copy(update={"url": entry.url}) for entry in entries]
    titles = [entry.title for entry in entries]
    fields = [f"url (playlist entry {number})" for number in range(1, len(entries) + 1)]
    batch_id, jobs = await create_batch(
        svc, key, creates, titles, fields, storage, show_url=job.url, title=title, paused=job.paused
    )
    return PlaylistCreated(
        batch_id=str(batch_id),
        total_videos=len(jobs),
        video_jobs=[VideoJob(job_id=str(new.id), url=new.url, title=new.title) for new in jobs],
        paused=job.paused,
    )
