"""A worker process: the job workflows, the shared-queue activities, and this host's own queue.

Download, Mux and Upload of a job run on the host queue of the worker that took the job, so the
job's files never have to leave that machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import FixedSizeSlotSupplier, Worker, WorkerTuner

from twister import db
from twister.activities.download import DownloadActivities
from twister.activities.host import HostActivities
from twister.activities.inspect import InspectActivities
from twister.activities.multipart import Bucket, Buckets, OpenUploads
from twister.activities.mux import MuxActivities
from twister.activities.persist import PersistActivities
from twister.activities.upload import UploadActivities
from twister.activities.webhook import WebhookActivities
from twister.config import Settings
from twister.crypto import SecretBox
from twister.heap import freeze_startup_objects
from twister.models import assignment_queue
from twister.net.egress import EgressProxy, without_proxy_variables
from twister.net.infrastructure import infrastructure_endpoints
from twister.storage import S3Target, s3_client
from twister.temporal_setup import check_search_attributes
from twister.worker.memory import limit_malloc_arenas
from twister.worker.metrics import ActivityObserver, worker_runtime
from twister.worker.slots import AssignmentSlotSupplier, JobSlots
from twister.worker.sweep import sweep_forever
from twister.worker.workdirs import WorkDirs
from twister.workflows import DownloadJobWorkflow, InspectUrlWorkflow

log = logging.getLogger(__name__)

CANCEL_NOTICE = timedelta(seconds=1)
"""The longest a running step goes without hearing that its job was cancelled."""

INSPECT_THREADS = 4
"""URLs one worker looks at concurrently (POST /metadata, playlist detection); each takes a thread."""


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    limit_malloc_arenas()
    # yt-dlp's ffmpeg inherits this environment: only the egress proxy may carry its requests
    kept = without_proxy_variables(os.environ)
    os.environ.clear()
    os.environ.update(kept)
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        runtime=worker_runtime(settings.worker_metrics_address),
    )
    await check_search_attributes(client, settings.temporal_namespace)
    pool = await db.create_pool(settings.database_url, settings.database_timeout)
    await db.migrate(pool)
    s3 = s3_client(settings)
    workdirs = WorkDirs(
        settings.job_work_root, keep_for=settings.failed_work_ttl, keep_bytes=settings.failed_work_max_bytes
    )
    host_queue = f"{settings.temporal_task_queue}@{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    slots = JobSlots(settings.worker_max_jobs)
    uploads = OpenUploads()
    host = HostActivities(host_queue, workdirs, slots, uploads)
    persist = PersistActivities(pool)
    blocked = await asyncio.to_thread(infrastructure_endpoints, settings)
    sweeper = asyncio.create_task(sweep_forever(client, slots, workdirs, settings.workdir_sweep_interval))
    with (
        EgressProxy(settings.allowed_network_list, blocked) as egress,
        ThreadPoolExecutor(max_workers=2 * settings.worker_max_jobs + 2) as executor,
        ThreadPoolExecutor(max_workers=INSPECT_THREADS) as inspect_executor,
    ):
        download = DownloadActivities(settings, workdirs, egress.url)
        box = SecretBox.from_settings(settings)

        async def own_storage(job_id: str) -> S3Target | None:
            return await db.job_storage(pool, box, uuid.UUID(job_id))

        buckets = Buckets(Bucket(s3, settings.s3_bucket), own_storage, asyncio.get_running_loop(), egress.url)
        mux = MuxActivities(settings, workdirs, buckets, uploads)
        upload = UploadActivities(workdirs, buckets, settings.upload_part_bytes, uploads)
        webhook = WebhookActivities(settings, pool, s3, egress.url, blocked)
        inspect = InspectActivities(settings, egress.url)
        interceptors = [ActivityObserver()]
        shared_worker = Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=[DownloadJobWorkflow, InspectUrlWorkflow],
            activities=[
                persist.record_outcome,
                persist.record_webhook_status,
                webhook.deliver_webhook,
                webhook.deliver_progress,
                webhook.deliver_batch_webhook,
                webhook.alert_slack,
                inspect.inspect_url,
            ],
            activity_executor=inspect_executor,
            interceptors=interceptors,
        )
        assignment_worker = Worker(
            client,
            task_queue=assignment_queue(settings.temporal_task_queue),
            activities=[host.assign_worker],
            tuner=WorkerTuner.create_composite(
                workflow_supplier=FixedSizeSlotSupplier(1),  # no workflows on this queue
                activity_supplier=AssignmentSlotSupplier(slots),
                local_activity_supplier=FixedSizeSlotSupplier(1),
                nexus_supplier=FixedSizeSlotSupplier(1),
            ),
            interceptors=interceptors,
        )
        host_worker = Worker(
            client,
            task_queue=host_queue,
            activities=[download.download, mux.mux, upload.upload, host.remove_workdir, host.keep_workdir],
            activity_executor=executor,
            max_concurrent_activities=2 * settings.worker_max_jobs,
            interceptors=interceptors,
            # a step learns of a cancel from its next heartbeat's answer: the SDK's default pace
            # (up to 80 % of the heartbeat timeout) would let a cancelled job run on for seconds
            max_heartbeat_throttle_interval=CANCEL_NOTICE,
            default_heartbeat_throttle_interval=CANCEL_NOTICE,
        )
        log.info("worker ready on %s (host queue %s)", settings.temporal_task_queue, host_queue)
        if settings.worker_metrics_address:
            log.info("worker metrics at http://%s/metrics", settings.worker_metrics_address)
        freeze_startup_objects()
        try:
            async with shared_worker, assignment_worker, host_worker:
                await stop.wait()
        finally:
            sweeper.cancel()
            await pool.close()
