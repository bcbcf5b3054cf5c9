"""The job workflow in-process: Temporal's test server with time skipping, the real workflow, and
test activities registered under the real activity names. Seconds for what the real stack would
take minutes to show (retry backoffs, lost hosts, cancellation)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from twister.embedded.process import find_binary
from twister.gateway.status import live_document, read_live_state
from twister.models import (
    PROGRESS_PERCENT,
    SEARCH_ATTRIBUTE_TYPES,
    ActivityName,
    DownloadResult,
    ErrorKind,
    ErrorType,
    HandedOverUpload,
    JobInput,
    JobLimits,
    JobOptions,
    JobOutcome,
    JobStatus,
    JobStep,
    MuxRequest,
    MuxResult,
    ProgressStage,
    ProgressWebhookRequest,
    SentPart,
    SlackAlertRequest,
    StepPolicy,
    StepRequest,
    UploadRequest,
    UploadResult,
    WebhookRequest,
    WebhookStatus,
    WorkerAssignment,
    assignment_queue,
)
from twister.workflows import DownloadJobWorkflow
from twister.workflows.job import CANCELLED_MESSAGE, FILES_GONE_MESSAGE, MUX_MAX_RETRIES, PROGRESS_WEBHOOK_ATTEMPTS
from twister.workflows.visibility import JOB_STATUS, JOB_STEP, SEARCH_ATTRIBUTES

SHARED_QUEUE = "jobs"
RPC_TIMEOUT = timedelta(seconds=5)
POLICY = StepPolicy(
    download_max_retries=2,
    upload_max_retries=2,
    retry_initial_interval=0.1,
    retry_max_interval=60.0,
    heartbeat_timeout=10.0,
    # a wait for a poller is not skipped: short, yet longer than a worker's poll can lag on a loaded
    # machine (at 1 s, a load of 13-30 made a live host look lost and cost the job an extra attempt)
    host_schedule_to_start_timeout=5.0,
    download_timeout=3600.0,
    webhook_max_attempts=3,
    webhook_timeout=30.0,
)


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=find_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"],
    )
    async with environment:
        yield environment


def failure(error_type: ErrorType, message: str = "it broke") -> ApplicationError:
    return ApplicationError(message, activity.info().attempt, type=error_type)


PART = 16 * 1024**2
HANDED_OVER = HandedOverUpload("upload-1", 3 * PART, PART, PART, [SentPart(2, '"etag"', PART, PART)])
"""What a mux step that sent part 2 while ffmpeg wrote hands over."""


@dataclass
class FakeHost:
    """Test activities under the real names. ``*_failures`` are raised one per call, in order,
    before the step succeeds; ``assign_queues`` are the host queues handed out, one per assignment."""

    host_queue: str
    assign_queues: list[str] = field(default_factory=list)
    download_failures: list[ErrorType] = field(default_factory=list)
    mux_failures: list[ErrorType] = field(default_factory=list)
    upload_failures: list[ErrorType] = field(default_factory=list)
    webhook_failures: int = 0
    block_download: bool = False
    block_webhook: asyncio.Event | None = None
    calls: list[str] = field(default_factory=list)
    mux_requests: list[MuxRequest] = field(default_factory=list)
    upload_requests: list[UploadRequest] = field(default_factory=list)
    removed_on: list[str] = field(default_factory=list)
    kept_on: list[str] = field(default_factory=list)
    recorded: dict[str, JobOutcome] = field(default_factory=dict)
    webhook_statuses: dict[str, WebhookStatus] = field(default_factory=dict)
    webhooks: list[WebhookRequest] = field(default_factory=list)
    progress: list[ProgressStage] = field(default_factory=list)
    progress_failures: int = 0
    step_timeouts: dict[str, timedelta | None] = field(default_factory=dict)
    alerts: list[JobStatus] = field(default_factory=list)

    @activity.defn(name=ActivityName.ASSIGN_WORKER)
    async def assign_worker(self, job_id: str) -> WorkerAssignment:
        queue = self.assign_queues.pop(0) if self.assign_queues else self.host_queue
        return WorkerAssignment(task_queue=queue)

    @activity.defn(name=ActivityName.DOWNLOAD)
    async def download(self, request: StepRequest) -> DownloadResult:
        self.calls.append("download")
        self.step_timeouts["download"] = activity.info().start_to_close_timeout
        while self.block_download:
            activity.heartbeat({"attempt": activity.info().attempt})
            await asyncio.sleep(0.1)
        if self.download_failures:
            raise failure(self.download_failures.pop(0))
        return DownloadResult(
            title="Test clip",
            video_path="/work/v.mp4",
            audio_path="/work/a.m4a",
            native_video_codec="h264",
            native_audio_codec="aac",
            actual_quality="720p",
            extract_duration_ms=40,
            download_duration_ms=200,
            speed_mbps=12.5,
            attempt=activity.info().attempt,
        )

    @activity.defn(name=ActivityName.MUX)
    async def mux(self, request: MuxRequest) -> MuxResult:
        self.calls.append("mux")
        self.mux_requests.append(request)
        self.step_timeouts["mux"] = activity.info().start_to_close_timeout
        if self.mux_failures:
            raise failure(self.mux_failures.pop(0), "Muxing failed (ffmpeg exit 1): bad data")
        return MuxResult(path="/work/output.mp4", duration_ms=30, handed_over=HANDED_OVER)

    @activity.defn(name=ActivityName.UPLOAD)
    async def upload(self, request: UploadRequest) -> UploadResult:
        self.calls.append("upload")
        self.upload_requests.append(request)
        if self.upload_failures:
            raise failure(self.upload_failures.pop(0))
        return UploadResult(
            key=request.key, file_size=2_500_000, duration_ms=50, speed_mbps=50.0, attempt=activity.info().attempt
        )

    @activity.defn(name=ActivityName.REMOVE_WORKDIR)
    async def remove_workdir(self, job_id: str) -> None:
        self.removed_on.append(activity.info().task_queue)

    @activity.defn(name=ActivityName.KEEP_WORKDIR)
    async def keep_workdir(self, job_id: str) -> None:
        self.kept_on.append(activity.info().task_queue)

    @activity.defn(name=ActivityName.RECORD_OUTCOME)
    async def record_outcome(self, job_id: str, outcome: JobOutcome) -> None:
        self.recorded[job_id] = outcome

    @activity.defn(name=ActivityName.RECORD_WEBHOOK_STATUS)
    async def record_webhook_status(self, job_id: str, status: WebhookStatus) -> None:
        self.webhook_statuses[job_id] = status

    @activity.defn(name=ActivityName.DELIVER_WEBHOOK)
    async def deliver_webhook(self, request: WebhookRequest) -> None:
        self.webhooks.append(request)
        if self.block_webhook is not None:
            await self.block_webhook.wait()
        if len(self.webhooks) <= self.webhook_failures:
            raise failure(ErrorType.WEBHOOK_FAILED)

    @activity.defn(name=ActivityName.DELIVER_PROGRESS)
    async def deliver_progress(self, request: ProgressWebhookRequest) -> None:
        if self.progress_failures:
            self.progress_failures -= 1
            raise failure(ErrorType.WEBHOOK_FAILED)
        assert not self.webhooks, "a progress event after the terminal one"
        self.progress.append(request.stage)

    @activity.defn(name=ActivityName.ALERT_SLACK)
    async def alert_slack(self, request: SlackAlertRequest) -> None:
        self.alerts.append(request.outcome.status)

    def shared_activities(self) -> list[Callable[..., Any]]:
        return [
            self.record_outcome,
            self.record_webhook_status,
            self.deliver_webhook,
            self.deliver_progress,
            self.alert_slack,
        ]

    def host_activities(self) -> list[Callable[..., Any]]:
        return [self.download, self.mux, self.upload, self.remove_workdir, self.keep_workdir]


def job_input(webhook_url: str | None = None) -> JobInput:
    return JobInput(
        job_id=str(uuid.uuid4()),
        api_key_id=1,
        url="https://media.example/clip.mpd",
        options=JobOptions(max_resolution="720"),
        created_at_ms=0,
        policy=POLICY,
        limits=JobLimits(max_file_size_bytes=10**9, max_duration_seconds=3600),
        webhook_url=webhook_url,
    )


@asynccontextmanager
async def workers(env: WorkflowEnvironment, host: FakeHost) -> AsyncIterator[str]:
    """The shared-queue worker and one host worker; yields the shared queue name."""
    shared = f"{SHARED_QUEUE}-{uuid.uuid4().hex[:8]}"
    async with (
        Worker(env.client, task_queue=shared, workflows=[DownloadJobWorkflow], activities=host.shared_activities()),
        Worker(env.client, task_queue=assignment_queue(shared), activities=[host.assign_worker]),
        Worker(env.client, task_queue=host.host_queue, activities=host.host_activities()),
    ):
        yield shared


def fake_host(**behaviour: Any) -> FakeHost:
    return FakeHost(host_queue=f"host-{uuid.uuid4().hex[:8]}", **behaviour)


async def run_job(env: WorkflowEnvironment, host: FakeHost, job: JobInput | None = None) -> JobOutcome:
    """Runs the job to its end; returns its outcome, as recorded on the row (with the webhook's
    result). A Failed job's workflow fails with that outcome, any other completes returning it."""
    job = job or job_input()
    async with workers(env, host) as shared:
        handle: WorkflowHandle[Any, JobOutcome] = await env.client.start_workflow(
            DownloadJobWorkflow.run, job, id=job.job_id, task_queue=shared
        )
        try:
            returned: JobOutcome | None = await handle.result()
        except WorkflowFailureError as failed:
            assert isinstance(failed.cause, ApplicationError) and failed.cause.type == ErrorType.JOB_FAILED
            assert failed.cause.message == host.recorded[job.job_id].error
            returned = None
    # the row gets the outcome the workflow ends with; only the webhook's result is written after it
    outcome = replace(host.recorded[job.job_id], webhook_status=host.webhook_statuses.get(job.job_id))
    if returned is not None:
        assert returned == outcome
    assert (returned is None) == (outcome.status == JobStatus.FAILED)
    assert (await handle.describe()).status == (
        WorkflowExecutionStatus.FAILED if outcome.status == JobStatus.FAILED else WorkflowExecutionStatus.COMPLETED
    )
    return outcome


async def test_completed_job_outcome_is_assembled_from_its_steps(env: WorkflowEnvironment) -> None:
    host = fake_host()
    job = job_input()
    outcome = await run_job(env, host, job)

    assert (outcome.status, outcome.step, outcome.error, outcome.error_type) == (
        JobStatus.COMPLETED,
        JobStep.FINISHED,
        None,
        None,
    )
    assert outcome.s3_key == f"{job.job_id}.mp4" and outcome.file_size == 2_500_000
    assert (outcome.title, outcome.actual_quality, outcome.requested_quality) == ("Test clip", "720p", "720")
    assert (outcome.native_video_codec, outcome.native_audio_codec) == ("h264", "aac")
    assert (outcome.extract_duration_ms, outcome.download_duration_ms) == (40, 200)
    assert (outcome.mux_duration_ms, outcome.upload_duration_ms) == (30, 50)
    assert (outcome.download_speed_mbps, outcome.upload_speed_mbps) == (12.5, 50.0)
    assert (outcome.download_retries, outcome.upload_retries) == (0, 0)
    assert outcome.queue_wait_ms is not None and 0 <= outcome.queue_wait_ms <= (outcome.total_duration_ms or 0)
    assert outcome.webhook_status is None
    assert host.calls == ["download", "mux", "upload"]
    assert host.removed_on == [host.host_queue]
    assert host.alerts == []


async def test_the_muxs_multipart_upload_is_handed_to_the_upload_step(env: WorkflowEnvironment) -> None:
    host = fake_host()
    job = job_input()
    await run_job(env, host, job)

    [mux], [upload] = host.mux_requests, host.upload_requests
    assert (mux.key, mux.own_storage) == (f"{job.job_id}.mp4", job.own_storage)
    assert (upload.key, upload.handed_over) == (mux.key, HANDED_OVER)


@pytest.mark.parametrize(
    ("options", "added"),
    [
        (JobOptions(live_recording=False), 0),
        (JobOptions(), 3600),  # the source may be live: it may record up to the duration limit
        (JobOptions(max_duration=600), 600),
        (JobOptions(live_recording=True, max_duration=600, wait_for_video=True), 600 + 900),
    ],
)
async def test_download_that_may_record_gets_the_recording_time(
    env: WorkflowEnvironment, options: JobOptions, added: int
) -> None:
    host = fake_host()
    job = job_input()
    job = replace(job, options=options, limits=replace(job.limits, max_wait_for_video_seconds=900))
    await run_job(env, host, job)
    assert host.step_timeouts["download"] == timedelta(seconds=POLICY.download_timeout + added)
    assert host.step_timeouts["mux"] == timedelta(seconds=POLICY.download_timeout)


@pytest.mark.parametrize(
    ("error_type", "status"),
    [(ErrorType.CONTENT_UNAVAILABLE, JobStatus.WARNING), (ErrorType.DRM_PROTECTED, JobStatus.SKIPPED)],
)
async def test_content_errors_end_without_retry(
    env: WorkflowEnvironment, error_type: ErrorType, status: JobStatus
) -> None:
    host = fake_host(download_failures=[error_type] * 3)
    outcome = await run_job(env, host)

    assert (outcome.status, outcome.error_type, outcome.error) == (status, ErrorKind.WARNING, "it broke")
    assert outcome.download_retries == 0 and outcome.upload_retries is None
    assert host.calls == ["download"] and host.removed_on == [host.host_queue]
    assert host.alerts == [status]  # the key's Slack alerts hear of it (a completed job raises none)


async def test_technical_failures_are_retried_and_counted(env: WorkflowEnvironment) -> None:
    host = fake_host(
        download_failures=[ErrorType.SOURCE_FAILED, ErrorType.SOURCE_FAILED],
        upload_failures=[ErrorType.STORAGE_FAILED],
    )
    outcome = await run_job(env, host)

    assert outcome.status == JobStatus.COMPLETED
    assert (outcome.download_retries, outcome.upload_retries) == (2, 1)


async def test_retries_exhausted_fail_the_job_with_the_last_error(env: WorkflowEnvironment) -> None:
    host = fake_host(download_failures=[ErrorType.SOURCE_FAILED] * 10)
    outcome = await run_job(env, host)

    assert (outcome.status, outcome.step, outcome.error_type) == (JobStatus.FAILED, JobStep.FINISHED, ErrorKind.ERROR)
    assert outcome.error == "it broke"
    assert outcome.download_retries == POLICY.download_max_retries
    assert host.calls == ["download"] * (POLICY.download_max_retries + 1)
    assert host.removed_on == [host.host_queue] and host.kept_on == []  # a failed download finished nothing


async def test_failed_upload_keeps_the_finished_files_for_a_replay(env: WorkflowEnvironment) -> None:
    host = fake_host(upload_failures=[ErrorType.STORAGE_FAILED] * 10)
    outcome = await run_job(env, host)

    assert (outcome.status, outcome.upload_retries) == (JobStatus.FAILED, POLICY.upload_max_retries)
    assert host.kept_on == [host.host_queue] and host.removed_on == []


async def test_mux_failure_is_retried_then_fails_with_its_own_message(env: WorkflowEnvironment) -> None:
    host = fake_host(mux_failures=[ErrorType.MUX_FAILED] * 10)
    outcome = await run_job(env, host)

    assert outcome.status == JobStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith("Muxing failed")
    assert host.calls == ["download"] + ["mux"] * (MUX_MAX_RETRIES + 1)


async def test_vanished_streams_send_the_job_back_to_the_download(env: WorkflowEnvironment) -> None:
    host = fake_host(mux_failures=[ErrorType.STREAMS_MISSING], upload_failures=[])
    outcome = await run_job(env, host)

    assert outcome.status == JobStatus.COMPLETED
    assert host.calls == ["download", "mux", "download", "mux", "upload"]
    assert outcome.download_retries == 1


async def test_files_vanishing_again_fail_the_job_honestly(env: WorkflowEnvironment) -> None:
    host = fake_host(mux_failures=[ErrorType.STREAMS_MISSING], upload_failures=[ErrorType.STREAMS_MISSING])
    outcome = await run_job(env, host)

    assert (outcome.status, outcome.error) == (JobStatus.FAILED, FILES_GONE_MESSAGE)
    assert host.calls == ["download", "mux", "download", "mux", "upload"]


async def test_lost_host_moves_the_job_to_another_worker(env: WorkflowEnvironment) -> None:
    dead_queue = f"dead-{uuid.uuid4().hex[:8]}"  # nobody polls it: its worker is gone
    host = fake_host()
    host.assign_queues = [dead_queue]
    outcome = await run_job(env, host)

    assert outcome.status == JobStatus.COMPLETED
    assert host.calls == ["download", "mux", "upload"]
    assert host.removed_on == [host.host_queue]  # the dead host's files are left to its own sweep


async def test_failing_webhook_does_not_change_the_job(env: WorkflowEnvironment) -> None:
    host = fake_host(webhook_failures=100)
    job = job_input(webhook_url="https://hooks.example/twister")
    outcome = await run_job(env, host, job)

    assert outcome.status == JobStatus.COMPLETED and outcome.webhook_status == WebhookStatus.FAILED
    assert host.recorded[job.job_id].webhook_status == WebhookStatus.PENDING
    assert host.webhook_statuses[job.job_id] == WebhookStatus.FAILED
    assert len(host.webhooks) == POLICY.webhook_max_attempts


async def test_progress_events_come_in_order_before_the_terminal_one(env: WorkflowEnvironment) -> None:
    host = fake_host()
    job = replace(job_input(webhook_url="https://hooks.example/twister"), progress_webhook=True)
    outcome = await run_job(env, host, job)

    assert outcome.status == JobStatus.COMPLETED and outcome.webhook_status == WebhookStatus.DELIVERED
    assert host.progress == list(ProgressStage)
    assert [PROGRESS_PERCENT[stage] for stage in host.progress] == [0, 33, 33, 66, 66, 100]


async def test_undeliverable_progress_event_is_dropped_not_the_job(env: WorkflowEnvironment) -> None:
    host = fake_host(progress_failures=PROGRESS_WEBHOOK_ATTEMPTS)  # the first event fails every attempt
    job = replace(job_input(webhook_url="https://hooks.example/twister"), progress_webhook=True)
    outcome = await run_job(env, host, job)

    assert outcome.status == JobStatus.COMPLETED and outcome.webhook_status == WebhookStatus.DELIVERED
    assert host.progress == list(ProgressStage)[1:]


async def test_no_progress_events_unless_asked(env: WorkflowEnvironment) -> None:
    host = fake_host()
    await run_job(env, host, job_input(webhook_url="https://hooks.example/twister"))
    assert host.progress == [] and len(host.webhooks) == 1


async def wait_until(check: Callable[[], bool]) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never became true")


async def test_cancel_while_downloading_ends_failed_cancelled(env: WorkflowEnvironment) -> None:
    host = fake_host(block_download=True)
    job = job_input(webhook_url="https://hooks.example/twister")
    async with workers(env, host) as shared:
        handle: WorkflowHandle[Any, JobOutcome] = await env.client.start_workflow(
            DownloadJobWorkflow.run, job, id=job.job_id, task_queue=shared
        )
        await wait_until(lambda: "download" in host.calls)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as ended:
            await handle.result()

    assert isinstance(ended.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    outcome = host.recorded[job.job_id]
    assert (outcome.status, outcome.step, outcome.error) == (JobStatus.FAILED, JobStep.CANCELLED, CANCELLED_MESSAGE)
    assert host.removed_on == [host.host_queue] and host.kept_on == []
    assert [w.outcome.status for w in host.webhooks] == [JobStatus.FAILED]


async def test_terminal_memo_sends_the_gateway_to_the_row(env: WorkflowEnvironment) -> None:
    """While the webhook is delivered the workflow still runs with a terminal memo; a GET that read
    the row just before it was written must go back to the row, not answer a bare terminal status."""
    release = asyncio.Event()
    host = fake_host(block_webhook=release)
    job = job_input(webhook_url="https://hooks.example/twister")
    async with workers(env, host) as shared:
        handle: WorkflowHandle[Any, JobOutcome] = await env.client.start_workflow(
            DownloadJobWorkflow.run, job, id=job.job_id, task_queue=shared
        )
        await wait_until(lambda: bool(host.webhooks))
        state = await read_live_state(env.client, job.job_id, rpc_timeout=RPC_TIMEOUT)
        release.set()
        await handle.result()

    assert state is None


async def test_missing_job_row_fails_the_workflow_visibly(env: WorkflowEnvironment) -> None:
    class NoRow(FakeHost):
        @activity.defn(name=ActivityName.RECORD_OUTCOME)
        async def record_outcome(self, job_id: str, outcome: JobOutcome) -> None:
            raise failure(ErrorType.JOB_ROW_MISSING)

    host = NoRow(host_queue=f"host-{uuid.uuid4().hex[:8]}")
    job = job_input()
    async with workers(env, host) as shared:
        with pytest.raises(WorkflowFailureError):
            await env.client.execute_workflow(DownloadJobWorkflow.run, job, id=job.job_id, task_queue=shared)


def test_search_attribute_keys_are_the_registered_ones() -> None:
    assert {key.name: key.indexed_value_type.name.title() for key in SEARCH_ATTRIBUTES} == SEARCH_ATTRIBUTE_TYPES


async def test_search_attributes_follow_the_job(env: WorkflowEnvironment) -> None:
    ended = {}
    for name, host in (("completed", fake_host()), ("failed", fake_host(mux_failures=[ErrorType.MUX_FAILED] * 9))):
        job = job_input()
        await run_job(env, host, job)
        attributes = (await env.client.get_workflow_handle(job.job_id).describe()).typed_search_attributes
        ended[name] = (attributes.get(JOB_STATUS), attributes.get(JOB_STEP))

    assert ended == {"completed": ("Completed", "Finished"), "failed": ("Failed", "Finished")}


async def test_status_query_and_details_show_the_job(env: WorkflowEnvironment) -> None:
    host = fake_host(block_download=True)
    job = job_input()
    async with workers(env, host) as shared:
        handle: WorkflowHandle[Any, JobOutcome] = await env.client.start_workflow(
            DownloadJobWorkflow.run, job, id=job.job_id, task_queue=shared
        )
        await wait_until(lambda: "download" in host.calls)
        running = await handle.query("status")
        host.block_download = False
        await handle.result()
        ended = await handle.query("status")
        details = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)

    base = {"id": job.job_id, "url": job.url, "s3_url": None, "subtitle_url": None, "error": None, "created_at": 0}
    assert running == {**base, "status": "Processing", "step": "Downloading"}
    assert ended == {**base, "status": "Completed", "step": "Finished", "title": "Test clip"}
    assert details.current_details == "**Test clip**"


async def test_queued_job_answers_pending_with_no_worker(env: WorkflowEnvironment) -> None:
    """The status of a job no worker has picked up comes from ``describe()`` alone."""
    job = job_input()
    await env.client.start_workflow(
        DownloadJobWorkflow.run,
        job,
        id=job.job_id,
        task_queue=f"unserved-{uuid.uuid4().hex[:8]}",
        memo={"status": str(JobStatus.PENDING), "step": str(JobStep.QUEUED)},
    )
    row = {"id": job.job_id, "url": job.url, "created_at": job.created_at_ms, "finished_at": None}
    state = await read_live_state(env.client, job.job_id, rpc_timeout=RPC_TIMEOUT)

    assert state is not None
    document = live_document(row, state)
    assert (document["status"], document["step"]) == ("Pending", "Queued")
    assert set(document) == {"id", "url", "status", "s3_url", "subtitle_url", "error", "step", "created_at"}
    await env.client.get_workflow_handle(job.job_id).terminate()
