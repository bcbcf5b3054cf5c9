"""A worker's telemetry: one Prometheus endpoint (``TWISTER_WORKER_METRICS_ADDRESS``), served by the
Temporal SDK's runtime, with the SDK's own ``temporal_*`` metrics and twister's activity durations,
retries and bytes moved; and the job id on every line an activity logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

import temporalio.exceptions
from temporalio import activity
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from twister.logs import job_context

log = logging.getLogger("twister.activities")

ACTIVITY_SECONDS = "twister_activity_duration_seconds"
ACTIVITY_RETRIES = "twister_activity_retries"
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
"""Seconds: from a database write to a download of hours."""


def worker_runtime(metrics_address: str) -> Runtime:
    """The Temporal runtime of a worker: the SDK core's own logs go through Python logging (so they
    take the configured format), and with a ``metrics_address`` it serves Prometheus there."""
    metrics = None
    if metrics_address:
        metrics = PrometheusConfig(
            bind_address=metrics_address,
            counters_total_suffix=True,
            durations_as_seconds=True,
            histogram_bucket_overrides={ACTIVITY_SECONDS: DURATION_BUCKETS},
        )
    core_logs = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    return Runtime(telemetry=TelemetryConfig(logging=core_logs, metrics=metrics, attach_service_name=False))


def count_bytes(direction: Literal["downloaded", "uploaded"], amount: int) -> None:
    """Adds to ``twister_downloaded_bytes_total`` or ``twister_uploaded_bytes_total``; inside an activity."""
    counter = activity.metric_meter().create_counter(f"twister_{direction}_bytes", f"Bytes {direction}.", "By")
    counter.add(amount)


class ActivityObserver(Interceptor):
    """Times every activity execution by outcome, counts retries (attempt > 1), and puts the job id
    (the workflow id) on everything the activity logs."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ObservedActivity(next)


class _ObservedActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        meter = activity.metric_meter()
        if info.attempt > 1:
            meter.create_counter(ACTIVITY_RETRIES, "Activity executions that were retries (attempt > 1).").add(1)
        outcome = "failed"
        started = time.monotonic()
        with job_context(info.workflow_id):
            try:
                result = await super().execute_activity(input)
                outcome = "completed"
                return result
            except (asyncio.CancelledError, temporalio.exceptions.CancelledError):
                outcome = "cancelled"
                raise
            finally:
                seconds = time.monotonic() - started
                histogram = meter.create_histogram_float(ACTIVITY_SECONDS, "Activity execution time by outcome.", "s")
                histogram.record(seconds, {"outcome": outcome})
                log.info("%s %s in %.2f s (attempt %d)", info.activity_type, outcome, seconds, info.attempt)
