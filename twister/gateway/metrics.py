"""The gateway's Prometheus metrics at ``/metrics``: requests by method, route template and status,
their latency, and the jobs in the database by status."""

from __future__ import annotations

import logging
import time

import asyncpg
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from twister import db
from twister.gateway.deps import ServicesDep
from twister.gateway.errors import DATABASE_ERRORS

log = logging.getLogger(__name__)
router = APIRouter()

JOBS_CACHE_SECONDS = 10.0
"""A scrape reads the job counts from Postgres at most this often."""

UNROUTED = "unrouted"
"""The route label of a request no route handled (an unknown path, a body refused as too large): raw
paths, with their ids, never become labels."""


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "twister_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "twister_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.jobs = Gauge(
            "twister_jobs",
            "Jobs in the database by status; Unfinished = Pending or Processing (Temporal tells those apart).",
            ["status"],
            registry=self.registry,
        )
        self._jobs_read_at = -JOBS_CACHE_SECONDS

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    async def refresh_jobs(self, pool: asyncpg.Pool) -> None:
        """Job counts from Postgres, unless read within ``JOBS_CACHE_SECONDS``; none while it is down."""
        if time.monotonic() - self._jobs_read_at < JOBS_CACHE_SECONDS:
            return
        try:
            counts = await db.count_jobs_by_status(pool)
        except DATABASE_ERRORS as exc:
            log.warning("metrics: cannot count jobs, the database is unreachable (%s)", type(exc).__name__)
            self.jobs.clear()
            return
        self.jobs.clear()
        for status, count in counts.items():
            self.jobs.labels(status).set(count)
        self._jobs_read_at = time.monotonic()


def route_template(scope: Scope) -> str:
    """The path template of the route that handled a request (``/jobs/{job_id}``), which routing
    leaves in the scope."""
    return str(getattr(scope.get("route"), "path", UNROUTED))


class RequestMetrics:
    """ASGI middleware counting and timing every HTTP request; outermost, so the other middlewares'
    refusals count too."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.observe(scope["method"], route_template(scope), status, time.perf_counter() - started)


@router.get("/metrics", include_in_schema=False)
async def metrics(svc: ServicesDep) -> Response:
    await svc.metrics.refresh_jobs(svc.pool)
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
