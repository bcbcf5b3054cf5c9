"""One workflow per job: Download → Mux → Upload on one worker host, then persist and notify.

Deterministic code only: activities are called by name, so no I/O library is imported here.
The job's status and step live in the workflow memo, which the gateway reads with
``describe()`` — that needs no worker, so a queued job answers even when every worker is down —
and in the search attributes ``JobStatus``/``JobStep`` the Temporal UI filters on. A Failed job's
workflow ends failed (a cancelled one: canceled) once its outcome is persisted and sent, so the UI
tells it from a completed one; Warning and Skipped jobs complete.

Changes that alter the commands of a job are behind ``workflow.patched`` (ids below), so the jobs
running when a worker is upgraded replay as they were recorded (``tests/test_replay.py``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, RetryState, TimeoutError, TimeoutType
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from twister.job_document import base_document
    from twister.models import (
        COUNTED_STEPS,
        NON_RETRYABLE_ERRORS,
        ActivityName,
        BatchCompletedRequest,
        DownloadResult,
        ErrorKind,
        ErrorType,
        JobInput,
        JobOutcome,
        JobStatus,
        JobStep,
        MuxRequest,
        MuxResult,
        ProgressStage,
        ProgressWebhookRequest,
        SideFile,
        SlackAlertRequest,
        StepRequest,
        UploadRequest,
        UploadResult,
        WebhookRequest,
        WebhookStatus,
        WorkerAssignment,
        assignment_queue,
    )
    from twister.workflows.visibility import state_updates

T = TypeVar("T")

MAX_HOSTS = 3
"""How many workers a job may move through when the one holding it dies."""

MAX_DOWNLOADS_PER_HOST = 2
"""When the downloaded or muxed files vanish from the worker, the job downloads once more there."""

MUX_MAX_RETRIES = 2
"""ffmpeg failures are technical errors: retried, but rarely fixed by more attempts."""

CANCELLED_MESSAGE = "Job cancelled by user"
WAIT_FOR_CANCELLED_STEPS = "wait-for-cancelled-steps"
PROGRESS_WEBHOOK_ATTEMPTS = 2
FILES_GONE_MESSAGE = "The job's files vanished from the worker even after a fresh download; retry the job."
_CONTENT_ERRORS = {
    ErrorType.CONTENT_UNAVAILABLE: JobStatus.WARNING,
    ErrorType.OVER_LIMIT: JobStatus.WARNING,
    ErrorType.DRM_PROTECTED: JobStatus.SKIPPED,
}
_SHORT = timedelta(seconds=30)

SEARCH_ATTRIBUTES_PATCH = "search-attributes"
"""From here on the workflow keeps ``JobStatus``/``JobStep`` current, beside its memo."""
KEEP_FAILED_WORK_PATCH = "keep-failed-work"
"""From here on a job failed by a technical error keeps its finished files on the host for a while."""
FAILED_STATE_PATCH = "failed-workflow-state"
"""From here on a Failed job's workflow ends failed (or canceled) instead of completed."""


def _error_type(err: BaseException) -> str | None:
    cause = err.cause if isinstance(err, ActivityError) else None
    return cause.type if isinstance(cause, ApplicationError) else None


def _start_to_close(job: JobInput, step: ActivityName) -> timedelta:
    """The longest attempt of a host step. A download that may record a live stream (one not asked to
    skip live recording) also gets the recording's time, and the wait for a stream that has not started."""
    seconds = job.policy.download_timeout
    if step == ActivityName.DOWNLOAD:
        if job.options.live_recording is not False:
            seconds += job.limits.recording_seconds(job.options)
        if job.options.wait_for_video:
            seconds += job.limits.max_wait_for_video_seconds
    return timedelta(seconds=seconds)


def _host_lost(err: ActivityError) -> bool:
    cause = err.cause
    return isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START


def _worth_keeping(err: ActivityError) -> bool:
    """A step that failed for a technical reason (retried in vain) leaves files of the steps before it
    that a replay can resume from; content errors, cancellation and vanished files leave none."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.type not in NON_RETRYABLE_ERRORS
    return isinstance(cause, TimeoutError)


def _attempts_of_failure(err: ActivityError, max_attempts: int) -> int:
    """How many attempts a failed step made; activities put their attempt in error and heartbeat details."""
    if err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        return max_attempts
    cause = err.cause
    details: Any = ()
    if isinstance(cause, ApplicationError):
        details = cause.details
    elif isinstance(cause, TimeoutError):
        details = cause.last_heartbeat_details
    first = details[0] if details else None
    if isinstance(first, int):
        return first
    if isinstance(first, dict) and isinstance(first.get("attempt"), int):
        return int(first["attempt"])
    return 1


@workflow.defn(name="DownloadJob")
class DownloadJobWorkflow:
    @workflow.init
    def __init__(self, job: JobInput) -> None:
        self._job = job
        self._attempts = dict.fromkeys(COUNTED_STEPS, 0)
        self._queue_wait_ms: int | None = None
        self._status = JobStatus.PENDING
        self._step = JobStep.QUEUED
        self._title: str | None = None
        self._error: str | None = None
        self._progress: asyncio.Queue[ProgressStage | None] | None = None

    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        """The job's status document as ``GET /jobs/{id}`` shows it while the job runs (the UI's Queries
        tab), with the title once known; the running step's progress is not in it (only its
        heartbeats carry that)."""
        job = self._job
        row = {"id": job.job_id, "url": job.url, "created_at": job.created_at_ms}
        document = base_document(row, self._status, self._step, error=self._error)
        if self._title:
            document["title"] = self._title
        return document

    @workflow.run
    async def run(self, job: JobInput) -> JobOutcome:
        outcome = JobOutcome(status=JobStatus.COMPLETED, step=JobStep.FINISHED, finished_at=0)
        progress_sender = None
        if job.webhook_url and job.progress_webhook:
            self._progress = asyncio.Queue()
            progress_sender = asyncio.create_task(self._send_progress(job, job.webhook_url, self._progress))
        try:
            download, mux, upload = await self._process(job)
            self._fill_success(outcome, download, mux, upload)
            self._report(ProgressStage.COMPLETED)
        except (ActivityError, asyncio.CancelledError, CancelledError) as err:
            self._fill_failure(outcome, err)
        if progress_sender is not None:
            self._report(None)  # the progress events go out before the terminal one
            await progress_sender
        outcome.finished_at = self._now_ms()
        outcome.total_duration_ms = outcome.finished_at - job.created_at_ms
        outcome.queue_wait_ms = self._queue_wait_ms
        outcome.requested_quality = job.options.max_resolution
        outcome.download_retries = self._retries(ActivityName.DOWNLOAD)
        outcome.upload_retries = self._retries(ActivityName.UPLOAD)
        if job.webhook_url:
            outcome.webhook_status = WebhookStatus.PENDING
        ended_batch = await self._persist(ActivityName.RECORD_OUTCOME, job.job_id, outcome)
        # Only now: a terminal memo sends the gateway to the row, which holds the full document.
        self._error = outcome.error
        self._set_state(outcome.status, outcome.step)
        self._show_details()
        if job.webhook_url:
            outcome.webhook_status = await self._notify(job, job.webhook_url, outcome)
            await self._persist(ActivityName.RECORD_WEBHOOK_STATUS, job.job_id, outcome.webhook_status)
            if ended_batch and job.batch_id:
                await self._notify_batch(job, job.batch_id, job.webhook_url)
        if outcome.status != JobStatus.COMPLETED:
            await self._alert(job, outcome)
        if outcome.status == JobStatus.FAILED and workflow.patched(FAILED_STATE_PATCH):
            self._end_failed(outcome)
        return outcome

    @staticmethod
    def _end_failed(outcome: JobOutcome) -> NoReturn:
        """Ends a Failed job's workflow failed (a cancelled one canceled), the outcome in the failure's details."""
        if outcome.step == JobStep.CANCELLED:
            raise CancelledError(CANCELLED_MESSAGE, outcome)
        raise ApplicationError(
            outcome.error or "The job failed", outcome, type=ErrorType.JOB_FAILED, non_retryable=True
        )

    async def _process(self, job: JobInput) -> tuple[DownloadResult, MuxResult, UploadResult]:
        for host in range(MAX_HOSTS):
            assignment = await workflow.execute_activity(
                ActivityName.ASSIGN_WORKER,
                job.job_id,
                result_type=WorkerAssignment,
                task_queue=assignment_queue(workflow.info().task_queue),
                start_to_close_timeout=_SHORT,
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5)),
            )
            if self._queue_wait_ms is None:
                self._queue_wait_ms = self._now_ms() - job.created_at_ms
            lost = keep = False
            try:
                return await self._steps_on_host(job, assignment.task_queue)
            except ActivityError as err:
                lost = _host_lost(err)
                keep = self._step != JobStep.DOWNLOADING and _worth_keeping(err)  # a failed download finished nothing
                if not lost or host == MAX_HOSTS - 1:
                    raise
                workflow.logger.warning("worker %s is gone; moving job to another worker", assignment.task_queue)
            finally:
                if not lost:  # a dead host's files are removed by that host's sweep
                    await self._leave_host(job, assignment.task_queue, keep)
        raise AssertionError("unreachable")

    async def _steps_on_host(self, job: JobInput, queue: str) -> tuple[DownloadResult, MuxResult, UploadResult]:
        for round_ in range(MAX_DOWNLOADS_PER_HOST):
            try:
                return await self._download_mux_upload(job, queue)
            except ActivityError as err:
                if _error_type(err) != ErrorType.STREAMS_MISSING or round_ == MAX_DOWNLOADS_PER_HOST - 1:
                    raise
                workflow.logger.warning("files of %s vanished on %s; downloading again", job.job_id, queue)
        raise AssertionError("unreachable")

    async def _download_mux_upload(self, job: JobInput, queue: str) -> tuple[DownloadResult, MuxResult, UploadResult]:
        policy = job.policy
        self._set_state(JobStatus.PROCESSING, JobStep.DOWNLOADING)
        self._report(ProgressStage.DOWNLOADING)
        download = await self._host_step(
            job,
            ActivityName.DOWNLOAD,
            StepRequest(job_id=job.job_id, url=job.url, options=job.options, limits=job.limits),
            DownloadResult,
            queue,
            policy.download_max_retries,
        )
        self._attempts[ActivityName.DOWNLOAD] += download.attempt
        self._title = download.title
        self._show_details()
        self._report(ProgressStage.DOWNLOAD_COMPLETE)
        self._set_state(JobStatus.PROCESSING, JobStep.MUXING)
        self._report(ProgressStage.MUXING)
        key = job.options.object_key(job.job_id)
        mux = await self._host_step(
            job,
            ActivityName.MUX,
            MuxRequest(job.job_id, job.options, download, key, job.own_storage),
            MuxResult,
            queue,
            MUX_MAX_RETRIES,
        )
        self._report(ProgressStage.MUX_COMPLETE)
        self._set_state(JobStatus.PROCESSING, JobStep.UPLOADING)
        self._report(ProgressStage.UPLOADING)
        upload = await self._host_step(
            job,
            ActivityName.UPLOAD,
            UploadRequest(job.job_id, mux.path, key, self._side_files(job, download), job.own_storage, mux.handed_over),
            UploadResult,
            queue,
            policy.upload_max_retries,
        )
        self._attempts[ActivityName.UPLOAD] += upload.attempt
        return download, mux, upload

    @staticmethod
    def _side_files(job: JobInput, download: DownloadResult) -> list[SideFile]:
        """Subtitles and thumbnail found by the download, named after the video's key."""
        options, side_files = job.options, []
        if download.subtitle_path and download.subtitle_lang:
            side_files.append(
                SideFile(download.subtitle_path, options.object_key(job.job_id, f"{download.subtitle_lang}.vtt"))
            )
        if download.thumbnail_path:
            side_files.append(SideFile(download.thumbnail_path, options.object_key(job.job_id, "jpg")))
        return side_files

    async def _host_step(
        self, job: JobInput, name: ActivityName, arg: Any, result_type: type[T], queue: str, max_retries: int
    ) -> T:
        policy = job.policy
        try:
            result: T = await workflow.execute_activity(
                name,
                arg,
                result_type=result_type,
                task_queue=queue,
                schedule_to_start_timeout=timedelta(seconds=policy.host_schedule_to_start_timeout),
                start_to_close_timeout=_start_to_close(job, name),
                heartbeat_timeout=timedelta(seconds=policy.heartbeat_timeout),
                retry_policy=self._retry(job, max_retries + 1),
                cancellation_type=self._host_step_cancellation(),
            )
            return result
        except ActivityError as err:
            if name in self._attempts:
                self._attempts[name] += _attempts_of_failure(err, max_retries + 1)
            raise

    @staticmethod
    def _host_step_cancellation() -> ActivityCancellationType:
        """A cancelled job waits for its running step to stop (ffmpeg killed, multipart upload aborted)
        before it cleans up and reports; histories from before this waited for nothing."""
        if workflow.patched(WAIT_FOR_CANCELLED_STEPS):
            return ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
        return ActivityCancellationType.TRY_CANCEL

    async def _leave_host(self, job: JobInput, queue: str, keep: bool) -> None:
        """Frees the job's slot on the host and removes its files there, or with ``keep`` leaves them
        for a while (``TWISTER_FAILED_WORK_TTL``): a replay of the failed job resumes from them."""
        name = (
            ActivityName.KEEP_WORKDIR
            if keep and workflow.patched(KEEP_FAILED_WORK_PATCH)
            else ActivityName.REMOVE_WORKDIR
        )
        try:
            await workflow.execute_activity(
                name,
                job.job_id,
                task_queue=queue,
                schedule_to_start_timeout=timedelta(seconds=job.policy.host_schedule_to_start_timeout),
                start_to_close_timeout=_SHORT,
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError:
            workflow.logger.warning(
                "could not remove the work directory of %s on %s; its sweep will", job.job_id, queue
            )

    async def _persist(self, name: ActivityName, *args: Any) -> Any:
        """Retried until the database answers: an accepted job must reach its terminal row."""
        return await workflow.execute_activity(
            name,
            args=list(args),
            start_to_close_timeout=_SHORT,
            retry_policy=RetryPolicy(
                maximum_interval=timedelta(seconds=30), non_retryable_error_types=[ErrorType.JOB_ROW_MISSING]
            ),
        )

    def _report(self, stage: ProgressStage | None) -> None:
        """Queues a progress event when the job asked for them (None: no more will come)."""
        if self._progress is not None:
            self._progress.put_nowait(stage)

    async def _send_progress(
        self, job: JobInput, webhook_url: str, stages: asyncio.Queue[ProgressStage | None]
    ) -> None:
        """Delivers progress events one after the other, in order, without holding the job up; one
        that cannot be delivered (after a retry) is dropped."""
        while (stage := await stages.get()) is not None:
            try:
                await workflow.execute_activity(
                    ActivityName.DELIVER_PROGRESS,
                    ProgressWebhookRequest(job.job_id, job.api_key_id, webhook_url, stage),
                    start_to_close_timeout=timedelta(seconds=job.policy.webhook_timeout + 10),
                    retry_policy=self._retry(job, PROGRESS_WEBHOOK_ATTEMPTS),
                )
            except ActivityError as err:
                workflow.logger.warning("progress webhook %s for %s failed: %s", stage, job.job_id, err.cause)

    async def _notify(self, job: JobInput, webhook_url: str, outcome: JobOutcome) -> WebhookStatus:
        try:
            await workflow.execute_activity(
                ActivityName.DELIVER_WEBHOOK,
                WebhookRequest(job.job_id, job.api_key_id, webhook_url, job.url, outcome, job.options.folder),
                start_to_close_timeout=timedelta(seconds=job.policy.webhook_timeout + 10),
                retry_policy=self._retry(job, job.policy.webhook_max_attempts),
            )
        except ActivityError as err:
            workflow.logger.warning("webhook for %s failed: %s", job.job_id, err.cause)
            return WebhookStatus.FAILED
        return WebhookStatus.DELIVERED

    async def _alert(self, job: JobInput, outcome: JobOutcome) -> None:
        """The key's Slack alert for a job that did not complete; an alert that cannot go out is dropped."""
        try:
            await workflow.execute_activity(
                ActivityName.ALERT_SLACK,
                SlackAlertRequest(job.job_id, job.api_key_id, job.url, outcome),
                start_to_close_timeout=timedelta(seconds=job.policy.webhook_timeout + 10),
                retry_policy=self._retry(job, job.policy.webhook_max_attempts),
            )
        except ActivityError as err:
            workflow.logger.warning("slack alert for %s failed: %s", job.job_id, err.cause)

    async def _notify_batch(self, job: JobInput, batch_id: str, webhook_url: str) -> None:
        """``batch_completed``, sent by the job whose end finished its batch."""
        try:
            await workflow.execute_activity(
                ActivityName.DELIVER_BATCH_WEBHOOK,
                BatchCompletedRequest(batch_id, job.api_key_id, webhook_url),
                start_to_close_timeout=timedelta(seconds=job.policy.webhook_timeout + 10),
                retry_policy=self._retry(job, job.policy.webhook_max_attempts),
            )
        except ActivityError as err:
            workflow.logger.warning("batch webhook for %s failed: %s", batch_id, err.cause)

    @staticmethod
    def _retry(job: JobInput, maximum_attempts: int) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(seconds=job.policy.retry_initial_interval),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=job.policy.retry_max_interval),
            maximum_attempts=maximum_attempts,
            non_retryable_error_types=[str(t) for t in NON_RETRYABLE_ERRORS],
        )

    def _retries(self, step: ActivityName) -> int | None:
        attempts = self._attempts[step]
        return max(attempts - 1, 0) if attempts else None

    @staticmethod
    def _fill_success(outcome: JobOutcome, download: DownloadResult, mux: MuxResult, upload: UploadResult) -> None:
        outcome.s3_key = upload.key
        side_keys = {side.key.rsplit(".", 1)[-1]: side.key for side in upload.side_files}
        outcome.subtitle_key = side_keys.get("vtt")
        outcome.thumbnail_key = side_keys.get("jpg")
        outcome.title = download.title
        outcome.file_size = upload.file_size
        outcome.download_speed_mbps = download.speed_mbps
        outcome.upload_speed_mbps = upload.speed_mbps
        outcome.extract_duration_ms = download.extract_duration_ms
        outcome.download_duration_ms = download.download_duration_ms
        outcome.mux_duration_ms = mux.duration_ms
        outcome.upload_duration_ms = upload.duration_ms
        outcome.actual_quality = download.actual_quality
        outcome.native_video_codec = download.native_video_codec
        outcome.native_audio_codec = download.native_audio_codec

    def _fill_failure(self, outcome: JobOutcome, err: BaseException) -> None:
        cause = err.cause if isinstance(err, ActivityError) else err
        failed_step = self._step
        outcome.status = JobStatus.FAILED
        outcome.error_type = ErrorKind.ERROR
        if isinstance(cause, asyncio.CancelledError | CancelledError):
            outcome.step = JobStep.CANCELLED
            outcome.error = CANCELLED_MESSAGE
        elif isinstance(cause, ApplicationError):
            outcome.error = FILES_GONE_MESSAGE if cause.type == ErrorType.STREAMS_MISSING else cause.message
            content_status = _CONTENT_ERRORS.get(ErrorType(cause.type)) if cause.type in set(ErrorType) else None
            if content_status is not None:
                outcome.status = content_status
                outcome.error_type = ErrorKind.WARNING
        elif isinstance(cause, TimeoutError):
            outcome.error = (
                f"The {failed_step.lower()} step timed out ({cause.type.name.lower() if cause.type else 'timeout'}) "
                "on every attempt; retry the job later."
            )
        else:
            outcome.error = f"The {failed_step.lower()} step failed: {cause}"

    def _set_state(self, status: JobStatus, step: JobStep) -> None:
        self._status, self._step = status, step
        workflow.upsert_memo({"status": str(status), "step": str(step)})
        if workflow.patched(SEARCH_ATTRIBUTES_PATCH):
            workflow.upsert_search_attributes(state_updates(status, step))

    def _show_details(self) -> None:
        """The UI's current details: the title once known, and why a job did not complete."""
        lines = [f"**{self._title}**"] if self._title else []
        if self._error:
            lines.append(self._error)
        workflow.set_current_details("\n\n".join(lines))

    @staticmethod
    def _now_ms() -> int:
        return int(workflow.now().timestamp() * 1000)
