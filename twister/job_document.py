"""The base of the contract's job status document: the fields every answer about a job has, while
it runs too. The gateway and the workflow's ``status`` query both build it; no I/O here."""

from __future__ import annotations

from typing import Any


def base_document(
    row: dict[str, Any], status: str, step: str, s3_url: str | None = None, error: str | None = None
) -> dict[str, Any]:
    """``row``: the job's ``id``, ``url`` and ``created_at`` (its row, or the same from its input)."""
    return {
        "id": str(row["id"]),
        "url": row["url"],
        "status": status,
        "s3_url": s3_url,
        "subtitle_url": None,
        "error": error,
        "step": step,
        "created_at": row["created_at"],
    }
