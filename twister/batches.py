"""A batch's status document (``GET /batch/{id}`` and the ``batch_completed`` event), from its row and jobs."""

from __future__ import annotations

from typing import Any

from twister.models import TERMINAL_STATUSES, JobStatus


def batch_status(paused: bool, jobs: list[dict[str, Any]]) -> str:
    """paused, processing (a job still runs), completed (all completed) or finished (done, some failed)."""
    if paused:
        return "paused"
    if any(job["status"] not in TERMINAL_STATUSES for job in jobs):
        return "processing"
    return "completed" if all(job["status"] == JobStatus.COMPLETED for job in jobs) else "finished"


def _episode(job: dict[str, Any]) -> dict[str, Any]:
    episode = {
        "job_id": str(job["id"]),
        "url": job["url"],
        "status": job["status"],
        "title": job["title"],
        "filename": job["request"].get("filename"),
        "error": job["error"],
    }
    return {name: value for name, value in episode.items() if value is not None}


def batch_document(batch: dict[str, Any]) -> dict[str, Any]:
    """``batch``: a ``db.get_batch`` row, its jobs under ``jobs``."""
    jobs = batch["jobs"]
    document = {
        "id": str(batch["id"]),
        "show_url": batch["show_url"],
        "title": batch["title"],
        "status": batch_status(batch["paused"], jobs),
        "folder": batch["folder"],
        "total_episodes": len(jobs),
        "completed_episodes": sum(job["status"] == JobStatus.COMPLETED for job in jobs),
        "failed_episodes": sum(
            job["status"] in TERMINAL_STATUSES and job["status"] != JobStatus.COMPLETED for job in jobs
        ),
        "episode_jobs": [_episode(job) for job in jobs],
        "created_at": batch["created_at"],
        "finished_at": batch["finished_at"],
    }
    return {name: value for name, value in document.items() if value is not None}
