"""The system under test: the embedded stack, one gateway and one worker (restarted with other
settings between rows), a key, and the by-hand baseline beside it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.sampling import Sampler
from twister import db
from twister.config import Settings
from twister.crypto import SecretBox
from twister.embedded.children import isolated_settings, twister_process, wait_gateway_ready, wait_worker_ready
from twister.embedded.process import ManagedProcess
from twister.embedded.stack import EmbeddedStack
from twister.keys import new_api_key
from twister.media.binaries import ffmpeg_folder

TERMINAL = {"Completed", "Failed", "Warning", "Skipped"}
YT_DLP = str(Path(sys.executable).with_name("yt-dlp"))


def bench_settings(root: Path) -> Settings:
    """The defaults, on free ports, with the per-key request and job caps out of the way: the bench
    measures the service, one key stands for many clients."""
    return isolated_settings(
        root / "data",
        rate_limit_per_minute=100_000_000,
        max_unfinished_jobs_per_key=100_000,
    )


def _group_name(process: psutil.Process) -> str:
    line = " ".join(process.cmdline())
    for name in ("worker", "gateway", "temporal", "postgres", "weed"):
        if name in line:
            return name
    return str(process.name())


def cpu_by_service() -> dict[str, float]:
    """CPU seconds used so far by each child of this process with its descendants (ffmpeg under the
    worker, Postgres backends under Postgres), the ones that ended included."""
    totals: dict[str, float] = {}
    for child in psutil.Process().children():
        try:
            times = child.cpu_times()
            used = times.user + times.system + times.children_user + times.children_system
            for descendant in child.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    d = descendant.cpu_times()
                    used += d.user + d.system
            name = _group_name(child)
        except psutil.NoSuchProcess:
            continue
        totals[name] = totals.get(name, 0.0) + used
    return totals


@dataclass
class JobRun:
    wall: float
    document: dict[str, Any]


class BenchStack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = bench_settings(root)
        self._stack = EmbeddedStack(self.settings, ui=False)
        self.worker: ManagedProcess | None = None
        self.worker_env: dict[str, str] = {}
        self.gateway: ManagedProcess | None = None
        self.key = new_api_key()
        self.work_root = root / "work"
        self.api: httpx.Client

    def __enter__(self) -> BenchStack:
        self._stack.start()
        try:
            self.gateway = self._stack.add(twister_process(self.settings, "gateway", "gateway").start())
            wait_gateway_ready(self.gateway, self.settings.api_url)
            asyncio.run(self._make_key())
            self.api = httpx.Client(base_url=self.settings.api_url, headers={"x-api-key": self.key}, timeout=60)
        except BaseException:
            self._stack.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.api.close()
        if self.worker is not None:
            self.worker.stop()
        self._stack.stop()

    async def _make_key(self) -> None:
        pool = await db.create_pool(self.settings.database_url, self.settings.database_timeout)
        try:
            await db.create_api_key(pool, SecretBox.from_settings(self.settings), "bench", self.key)
        finally:
            await pool.close()

    def use_worker(self, **env: str) -> ManagedProcess:
        """A worker with these TWISTER_* settings (the running one is kept when they are the same)."""
        env = {"TWISTER_WORK_DIR": str(self.work_root), **env}
        if self.worker is not None and self.worker_env == env and self.worker.running():
            return self.worker
        if self.worker is not None:
            self.worker.stop()
        self.worker = twister_process(self.settings, "worker", "worker", **env).start()
        self.worker_env = env
        wait_worker_ready(self.worker)
        return self.worker

    # ------------------------------------------------------------------ jobs through the API
    def submit(self, url: str, **options: Any) -> str:
        response = self.api.post("/jobs", json={"url": url, **options})
        response.raise_for_status()
        return str(response.json()["job_id"])

    def wait(self, job_id: str, every: float = 0.02, timeout: float = 900) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            document: dict[str, Any] = self.api.get(f"/jobs/{job_id}").json()
            if document.get("status") in TERMINAL:
                return document
            time.sleep(every)
        raise TimeoutError(f"job {job_id} did not end within {timeout} s")

    def job(self, url: str, **options: Any) -> JobRun:
        """One job as a client sees it: from the POST to the GET that shows it finished."""
        began = time.monotonic()
        document = self.wait(self.submit(url, **options))
        wall = time.monotonic() - began
        if document["status"] != "Completed":
            raise RuntimeError(f"bench job did not complete: {document}")
        return JobRun(wall, document)

    # ------------------------------------------------------------------ the by-hand baseline
    def by_hand(self, url: str, fmt: str) -> float:
        """``yt-dlp`` merging video + audio into an MP4, then a boto3 multipart upload and presign:
        two processes, as a user would run them; the wall time of both."""
        out_dir = self.root / "by-hand" / uuid.uuid4().hex
        out_dir.mkdir(parents=True)
        out = out_dir / "video.mp4"
        env = {**os.environ, **self.settings.as_env()}
        began = time.monotonic()
        subprocess.run(
            [YT_DLP, "-q", "--no-progress", "--no-cache-dir", "-f", fmt, "--merge-output-format", "mp4",
             "--ffmpeg-location", ffmpeg_folder(self.settings.ffmpeg_path, self.settings.ffprobe_path),
             "-o", str(out), url],
            check=True, env=env,
        )  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "bench.byhand_upload", str(out), f"by-hand/{out_dir.name}.mp4"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        wall = time.monotonic() - began
        shutil.rmtree(out_dir, ignore_errors=True)
        return wall


@contextlib.contextmanager
def sampling(stack: BenchStack) -> Iterator[Sampler]:
    assert stack.worker is not None and stack.worker.pid is not None
    with Sampler(stack.worker.pid, stack.work_root) as sampler:
        yield sampler
