"""Log output of twister's processes: readable text (the default), or JSON lines
(``TWISTER_LOG_FORMAT=json``) whose lines about a job carry its ``job_id``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_current_job: ContextVar[str | None] = ContextVar("twister_job_id", default=None)

_TEMPORAL_DETAILS = ("temporal_workflow", "temporal_activity")
"""Extras the Temporal SDK's workflow and activity loggers put on their records."""


@contextmanager
def job_context(job_id: object) -> Iterator[None]:
    """What is logged inside (also from threads started with a copy of this context) is about this job."""
    token = _current_job.set(str(job_id))
    try:
        yield
    finally:
        _current_job.reset(token)


def job_id_of(record: logging.LogRecord) -> str | None:
    """The job a record is about: the current job context, else the workflow that logged it (a job's
    workflow id is the job id)."""
    current = _current_job.get()
    if current is not None:
        return current
    for name in _TEMPORAL_DETAILS:
        details = getattr(record, name, None)
        if isinstance(details, dict) and details.get("workflow_id"):
            return str(details["workflow_id"])
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, and
    ``job_id`` and ``exception`` when there are."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = job_id_of(record)
        if job_id is not None:
            line["job_id"] = job_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(log_format: LogFormat) -> None:
    """Root logging at INFO to stderr in ``log_format``; Python warnings go through it too."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.captureWarnings(True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
