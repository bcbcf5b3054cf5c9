"""``twister download URL``: a job submitted through the gateway's API with a key, like any client's;
a progress bar per step, fed by the job's event stream (``GET /jobs/{id}/events``); then the file's
presigned URL on stdout (everything else goes to stderr)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from twister.models import TERMINAL_STATUSES, JobStatus, JobStep

STEPS = (JobStep.DOWNLOADING, JobStep.MUXING, JobStep.UPLOADING)
RECONNECT_SECONDS = 1.0
STREAM_TIMEOUT = httpx.Timeout(30, read=60)  # a quiet stream gets a ping every 15 s


class Refused(Exception):
    """The gateway answered the request with an error other than 503 (which is waited out)."""


def _error(response: httpx.Response) -> str:
    try:
        return f"{response.status_code}: {response.json()['error']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code}: {response.text[:200]}"


def _documents(client: httpx.Client, job_id: str) -> Iterator[dict[str, Any]]:
    """The job's documents as its event stream sends them, until the stream ends."""
    with client.stream("GET", f"/jobs/{job_id}/events", timeout=STREAM_TIMEOUT) as response:
        if response.status_code == 503:
            return
        if response.status_code != 200:
            response.read()
            raise Refused(_error(response))
        data: list[str] = []
        for line in response.iter_lines():
            if line.startswith("data:"):
                data.append(line.removeprefix("data:").strip())
            elif not line and data:
                yield json.loads("\n".join(data))
                data = []


def follow(client: httpx.Client, job_id: str, show: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Shows each document of the job until it ends, reconnecting when the stream breaks; returns the last."""
    while True:
        try:
            for document in _documents(client, job_id):
                show(document)
                if document["status"] in TERMINAL_STATUSES:
                    return document
        except httpx.TransportError:
            pass  # the gateway restarted or the connection dropped: reconnect
        time.sleep(RECONNECT_SECONDS)


class StepBars:
    """A bar per step, added when the step begins; a step's bar fills when a later step begins."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._bars: dict[JobStep, TaskID] = {}

    def show(self, document: dict[str, Any]) -> None:
        step = document["step"]
        if document["status"] == JobStatus.COMPLETED:
            for done in STEPS:
                self._progress.update(self._bar(done), completed=100)
        elif step in STEPS:
            for done in STEPS[: STEPS.index(step)]:
                self._progress.update(self._bar(done), completed=100)
            percent = (document.get("progress") or {}).get("percent")
            if percent is not None:
                self._progress.update(self._bar(step), completed=percent)
            else:
                self._bar(step)

    def _bar(self, step: JobStep) -> TaskID:
        if step not in self._bars:
            self._bars[step] = self._progress.add_task(step.lower(), total=100)
        return self._bars[step]


def download(api_url: str, key: str, body: dict[str, Any]) -> int:
    """Submits the job and follows it; returns the exit code (0 once the file is stored)."""
    console = Console(stderr=True)

    def say(text: str) -> None:  # as it is: no wrapping, no markup read in a message
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    with httpx.Client(base_url=api_url, headers={"x-api-key": key}, timeout=30) as client:
        created = client.post("/jobs", json=body)
        if created.status_code not in (200, 201):
            say(f"The job was refused ({_error(created)})")
            return 1
        answer = created.json()
        if "job_id" not in answer:
            say(f"This URL is a playlist: batch {answer['batch_id']} of {answer['total_videos']} jobs")
            return 1
        job_id = answer["job_id"]
        say(f"job {job_id}")
        columns = (TextColumn("{task.description:<12}"), BarColumn(), TaskProgressColumn())
        try:
            with Progress(*columns, console=console) as progress:
                document = follow(client, job_id, StepBars(progress).show)
        except Refused as exc:
            say(f"Cannot follow job {job_id} ({exc})")
            return 1
    if document["status"] != JobStatus.COMPLETED:
        say(f"{document['status']}: {document.get('error')}")
        return 1
    print(document["s3_url"])
    return 0
