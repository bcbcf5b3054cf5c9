"""What the Temporal UI shows of a job's workflow: its summary, and the custom search attributes
that the UI and ``temporal workflow list --query`` filter on (e.g. ``JobStatus="Failed"``).

The gateway sets all four when it starts the workflow; the workflow keeps ``JobStatus`` and
``JobStep`` current. ``twister up`` registers them on its dev server, ``twister temporal setup`` on
any other cluster (a workflow setting one the namespace lacks would fail its tasks); their names and
types are listed in ``models.SEARCH_ATTRIBUTE_TYPES``, which a test holds these keys to.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from twister.models import JobInput, JobStatus, JobStep

JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")
JOB_STEP = SearchAttributeKey.for_keyword("JobStep")
SOURCE_HOST = SearchAttributeKey.for_keyword("SourceHost")
"""The host name of the job's source URL."""
API_KEY_ID = SearchAttributeKey.for_int("ApiKeyId")
"""The id of the API key that created the job (``twister keys list``), never the key."""

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (JOB_STATUS, JOB_STEP, SOURCE_HOST, API_KEY_ID)

SUMMARY_MAX_BYTES = 300
"""Temporal refuses a start whose summary payload exceeds 400 bytes (by default): room for its metadata."""


def summary(url: str) -> str:
    """The workflow's one-line summary: the source URL, shortened to what Temporal accepts."""
    text = url
    while len(json.dumps(text).encode()) > SUMMARY_MAX_BYTES:
        text = text[: len(text) * 9 // 10 - 1] + "…"
    return text


def state_updates(status: JobStatus, step: JobStep) -> list[SearchAttributeUpdate[Any]]:
    return [JOB_STATUS.value_set(str(status)), JOB_STEP.value_set(str(step))]


def start_attributes(job: JobInput) -> TypedSearchAttributes:
    """A new job's attributes: queued, with its source host and API key id."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(JOB_STATUS, str(JobStatus.PENDING)),
            SearchAttributePair(JOB_STEP, str(JobStep.QUEUED)),
            SearchAttributePair(SOURCE_HOST, urlsplit(job.url).hostname or ""),
            SearchAttributePair(API_KEY_ID, job.api_key_id),
        ]
    )
