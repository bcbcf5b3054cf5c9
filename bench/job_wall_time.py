"""Wall time of download jobs on the embedded stack (not a test: numbers, no pass/fail).

    .venv/bin/python -m bench.job_wall_time [--jobs 10] [--concurrent 1]

Starts Temporal, Postgres, S3, the media site, one worker and the gateway in a temp dir, submits
DASH jobs (720p + separate audio, 4 s clip) and prints per-job wall time from the job's own
``created_at``/``finished_at`` and the step durations it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.media_site import MediaSite, generate_media
from twister import db
from twister.crypto import SecretBox
from twister.embedded.children import isolated_settings, twister_process, wait_gateway_ready, wait_worker_ready
from twister.embedded.stack import EmbeddedStack
from twister.keys import new_api_key


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="twister-bench-"))
    settings = isolated_settings(root / "data")
    began = time.monotonic()
    with EmbeddedStack(settings, ui=False) as stack, MediaSite(generate_media(root / "media")) as site:
        print(f"stack + media site ready in {time.monotonic() - began:.1f} s")
        worker = stack.add(twister_process(settings, "worker", "worker").start())
        gateway = stack.add(twister_process(settings, "gateway", "gateway").start())
        wait_worker_ready(worker)
        wait_gateway_ready(gateway, settings.api_url)
        key = new_api_key()

        async def make_key() -> None:
            pool = await db.create_pool(settings.database_url, settings.database_timeout)
            await db.create_api_key(pool, SecretBox.from_settings(settings), "bench", key)
            await pool.close()

        asyncio.run(make_key())
        with httpx.Client(base_url=settings.api_url, headers={"x-api-key": key}, timeout=30) as api:
            jobs = []
            for batch_start in range(0, args.jobs, args.concurrent):
                batch = [
                    api.post("/jobs", json={"url": site.dash_url, "max_resolution": "720"}).json()["job_id"]
                    for _ in range(min(args.concurrent, args.jobs - batch_start))
                ]
                for job_id in batch:
                    while (job := api.get(f"/jobs/{job_id}").json())["status"] in ("Pending", "Processing"):
                        time.sleep(0.05)
                    assert job["status"] == "Completed", job
                    jobs.append(job)
    walls = [j["finished_at"] - j["created_at"] for j in jobs]
    print(f"{len(jobs)} jobs, {args.concurrent} at a time")
    print(f"wall ms: median {statistics.median(walls):.0f}, min {min(walls)}, max {max(walls)}")
    for step in (
        "queue_wait_ms",
        "extract_duration_ms",
        "download_duration_ms",
        "mux_duration_ms",
        "upload_duration_ms",
    ):
        print(f"{step}: median {statistics.median(j[step] for j in jobs):.0f}")


if __name__ == "__main__":
    main()
