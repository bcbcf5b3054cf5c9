"""The calling key's own settings and figures: usage and caps, webhook signing secret, Slack alerts."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from twister import db
from twister.gateway.admission import check_source
from twister.gateway.deps import ApiKeyDep, ServicesDep
from twister.gateway.quota import GB, capped_limits, unfinished_limit
from twister.gateway.schemas import ERROR_RESPONSES
from twister.models import SlackNotifyLevel

router = APIRouter()


class Usage(BaseModel):
    client_name: str
    usage_count: int = Field(description="Jobs created (a retry is the same job)")
    storage_usage_gb: float = Field(description="GiB of the key's files still stored")
    storage_limit_gb: float | None = None
    storage_remaining_gb: float | None = None
    max_resolution_limit: int | None = None
    max_duration_limit_seconds: int | None = None
    max_filesize_limit_bytes: int | None = None
    max_concurrent_jobs_limit: int | None = Field(default=None, description="(beyond) Unfinished jobs at once")


@router.get("/usage", responses=ERROR_RESPONSES, response_model_exclude_none=True)
async def usage(svc: ServicesDep, key: ApiKeyDep) -> Usage:
    caps, limits = key.limits, capped_limits(svc, key)
    stored = await db.stored_bytes(svc.pool, key.id)
    limit = caps.storage_limit_gb
    return Usage(
        client_name=key.name,
        usage_count=await db.jobs_created(svc.pool, key.id),
        storage_usage_gb=round(stored / GB, 3),
        storage_limit_gb=limit,
        storage_remaining_gb=None if limit is None else round(max(limit - stored / GB, 0), 3),
        max_resolution_limit=caps.max_resolution,
        max_duration_limit_seconds=limits.max_duration_seconds,
        max_filesize_limit_bytes=limits.max_file_size_bytes,
        max_concurrent_jobs_limit=unfinished_limit(svc, key),
    )


class WebhookSecret(BaseModel):
    secret: str = Field(description="whsec_...: the HMAC-SHA256 key of X-Tornado-Signature")


@router.get("/user/webhook-secret", responses=ERROR_RESPONSES)
async def webhook_secret(svc: ServicesDep, key: ApiKeyDep) -> WebhookSecret:
    return WebhookSecret(secret=await db.webhook_secret(svc.pool, svc.box, key.id))


@router.post("/user/webhook-secret/rotate", responses=ERROR_RESPONSES)
async def rotate_webhook_secret(svc: ServicesDep, key: ApiKeyDep) -> WebhookSecret:
    return WebhookSecret(secret=await db.rotate_webhook_secret(svc.pool, svc.box, key.id))


class SlackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    webhook_url: str = Field(min_length=1, max_length=4096)
    notify_level: SlackNotifyLevel = "all"


class SlackSaved(BaseModel):
    message: str
    notify_level: SlackNotifyLevel | None = None


@router.post("/user/slack", responses=ERROR_RESPONSES, response_model_exclude_none=True)
async def set_slack(body: SlackRequest, svc: ServicesDep, key: ApiKeyDep) -> SlackSaved:
    await check_source(svc, body.webhook_url, "webhook_url")
    await db.set_slack_alerts(svc.pool, svc.box, key.id, db.SlackAlerts(body.webhook_url, body.notify_level))
    return SlackSaved(message="Slack alerts configured", notify_level=body.notify_level)


@router.delete("/user/slack", responses=ERROR_RESPONSES, response_model_exclude_none=True)
async def remove_slack(svc: ServicesDep, key: ApiKeyDep) -> SlackSaved:
    await db.set_slack_alerts(svc.pool, svc.box, key.id, None)
    return SlackSaved(message="Slack alerts removed")
