"""A short workflow that runs the Inspect activity for the gateway, which never downloads itself."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from twister.models import NON_RETRYABLE_ERRORS, ActivityName, UrlInfo

INSPECT_ATTEMPTS = 2


@workflow.defn(name="InspectUrl")
class InspectUrlWorkflow:
    @workflow.run
    async def run(self, url: str) -> UrlInfo:
        info: UrlInfo = await workflow.execute_activity(
            ActivityName.INSPECT_URL,
            url,
            result_type=UrlInfo,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_attempts=INSPECT_ATTEMPTS,
                non_retryable_error_types=[str(t) for t in NON_RETRYABLE_ERRORS],
            ),
        )
        return info
