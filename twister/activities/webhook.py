"""Webhook step: a signed POST of the job's terminal event to the client's URL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from twister import db
from twister.batches import batch_document
from twister.config import Settings
from twister.crypto import SecretBox
from twister.models import (
    ActivityName,
    BatchCompletedRequest,
    ErrorType,
    JobStatus,
    ProgressWebhookRequest,
    SlackAlertRequest,
    WebhookRequest,
    slack_wants,
)
from twister.net.guard import Endpoint, UnsafeUrlError, check_url
from twister.storage import presigned_url, target_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SIGNATURE_HEADER = "X-Tornado-Signature"

_EVENT_TYPES = {
    JobStatus.COMPLETED: "job_completed",
    JobStatus.FAILED: "job_failed",
    JobStatus.WARNING: "job_warning",
    JobStatus.SKIPPED: "job_skipped",
}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def terminal_event(request: WebhookRequest, s3_url: str | None) -> dict[str, Any]:
    outcome = request.outcome
    event = {
        "type": _EVENT_TYPES[JobStatus(outcome.status)],
        "job_id": request.job_id,
        "status": outcome.status.lower(),
        "url": request.url,
        "key": outcome.s3_key,
        "s3_url": s3_url,
        "folder": request.folder,
        "title": outcome.title,
        "file_size": outcome.file_size,
        "error": outcome.error,
        "error_type": outcome.error_type,
        "finished_at": outcome.finished_at,
    }
    return {name: value for name, value in event.items() if value is not None}


class WebhookActivities:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        s3: S3Client,
        egress_proxy_url: str,
        blocked_endpoints: frozenset[Endpoint],
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._s3 = s3
        self._proxy = egress_proxy_url
        self._blocked = blocked_endpoints
        self._box = SecretBox.from_settings(settings)

    @activity.defn(name=ActivityName.DELIVER_WEBHOOK)
    async def deliver_webhook(self, request: WebhookRequest) -> None:
        key, s3_url = request.outcome.s3_key, None
        if key:
            own = await db.job_storage(self._pool, self._box, uuid.UUID(request.job_id))
            client, bucket = (target_client(own), own.bucket) if own else (self._s3, self._settings.s3_bucket)
            s3_url = presigned_url(client, bucket, key, self._settings.presign_ttl_seconds)
        await self._post(request.webhook_url, request.api_key_id, terminal_event(request, s3_url))

    @activity.defn(name=ActivityName.DELIVER_PROGRESS)
    async def deliver_progress(self, request: ProgressWebhookRequest) -> None:
        event = {"type": "progress", "job_id": request.job_id, "stage": request.stage, "percent": request.percent}
        await self._post(request.webhook_url, request.api_key_id, event)

    @activity.defn(name=ActivityName.DELIVER_BATCH_WEBHOOK)
    async def deliver_batch_webhook(self, request: BatchCompletedRequest) -> None:
        batch = await db.get_batch(self._pool, uuid.UUID(request.batch_id), request.api_key_id)
        if batch is None:
            raise ApplicationError(f"Batch {request.batch_id} is gone", type=ErrorType.JOB_ROW_MISSING)
        document = batch_document(batch)
        document.pop("episode_jobs")
        event = {"type": "batch_completed", "batch_id": request.batch_id, **document}
        await self._post(request.webhook_url, request.api_key_id, event)

    @activity.defn(name=ActivityName.ALERT_SLACK)
    async def alert_slack(self, request: SlackAlertRequest) -> None:
        """A message to the key's Slack incoming webhook, if it has one that wants this outcome."""
        alerts = await db.slack_alerts(self._pool, self._box, request.api_key_id)
        outcome = request.outcome
        if alerts is None or not slack_wants(alerts.notify_level, JobStatus(outcome.status)):
            return
        text = f"twister job {request.job_id} ended {outcome.status}: {outcome.error}\nSource: {request.url}"
        await self._send(alerts.webhook_url, "slack webhook_url", json.dumps({"text": text}).encode(), {})

    async def _post(self, webhook_url: str, api_key_id: int, event: dict[str, Any]) -> None:
        """POSTs the event signed with the key's secret."""
        body = json.dumps(event).encode()
        secret = await db.webhook_secret(self._pool, self._box, api_key_id)
        headers = {
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
            "X-Tornado-Delivery": str(uuid.uuid4()),
        }
        await self._send(webhook_url, "webhook_url", body, headers)

    async def _send(self, webhook_url: str, field: str, body: bytes, headers: dict[str, str]) -> None:
        """POSTs a JSON body through the egress guard; anything but a 2xx answer is a failed delivery."""
        try:
            await asyncio.to_thread(
                check_url, webhook_url, self._settings.allowed_network_list, field, blocked_endpoints=self._blocked
            )
        except UnsafeUrlError as exc:
            raise ApplicationError(str(exc), type=ErrorType.FORBIDDEN_ADDRESS, non_retryable=True) from None
        headers = {"content-type": "application/json", "user-agent": "twister-webhook/1", **headers}
        try:
            async with httpx.AsyncClient(
                timeout=self._settings.webhook_timeout, follow_redirects=False, proxy=self._proxy, trust_env=False
            ) as client:
                response = await client.post(webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ApplicationError(
                f"Webhook delivery failed: {type(exc).__name__}", type=ErrorType.WEBHOOK_FAILED
            ) from None
        if not 200 <= response.status_code < 300:
            raise ApplicationError(
                f"Webhook receiver answered HTTP {response.status_code}", type=ErrorType.WEBHOOK_FAILED
            )
