"""Where the time goes: py-spy profiles of the worker and the gateway on the bench's stack.

    .venv/bin/python -m bench.profile OUT_DIR [--what single200,small,get]

``single200``: the worker while one 200 MB HLS job runs; ``small``: the worker while 100 small jobs
run (16 slots); ``get``: the gateway under open-loop GETs of finished jobs. Each writes
``OUT_DIR/<what>-<process>.txt``, py-spy's collapsed stacks (``--idle`` off, subprocesses on), and
prints the twenty hottest frames by own time and the twenty with the most time below them.
py-spy (``pip install py-spy``, in the dev extra) needs ptrace rights: root, or
``kernel.yama.ptrace_scope=0``.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.__main__ import loadgen, small_batch
from bench.media import ensure_media
from bench.site import BenchSite
from bench.stack import BenchStack

PY_SPY = str(Path(sys.executable).with_name("py-spy"))


def record(pid: int, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY_SPY, "record", "--pid", str(pid), "--format", "raw", "--output", str(out), "--rate", "200",
         "--subprocesses", "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(2)  # SIGINT: py-spy writes its file
    spy.wait(timeout=60)


def summary(path: Path, top: int = 20) -> str:
    """Own and total samples by frame, from py-spy's collapsed ("raw") stacks."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{path.name}: {samples} samples", "  own:"]
    lines += [f"    {100 * n / samples:5.1f} % {frame}" for frame, n in own.most_common(top)]
    lines += ["  total:"]
    lines += [f"    {100 * n / samples:5.1f} % {frame}" for frame, n in total.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--what", default="single200,small,get")
    p.add_argument("--media-cache", type=Path, default=Path(tempfile.gettempdir()) / "twister-bench-media")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = args.what.split(",")
    media = ensure_media(args.media_cache)
    with (
        tempfile.TemporaryDirectory(prefix="twister-profile-") as tmp,
        BenchSite(media.root) as site,
        BenchStack(Path(tmp)) as stack,
    ):
        if "single200" in wanted:
            worker = stack.use_worker()
            stack.job(site.url(media.hls_small))  # warm-up
            assert worker.pid is not None
            spy = record(worker.pid, args.out / "single200-worker.txt")
            time.sleep(1)
            run = stack.job(site.url(media.hls_large), max_resolution="720")
            stop(spy)
            print(f"single200: {run.wall:.2f} s", {k: v for k, v in run.document.items() if k.endswith("_ms")})
            print(summary(args.out / "single200-worker.txt"))
        if "small" in wanted or "get" in wanted:
            worker = stack.use_worker(TWISTER_WORKER_MAX_JOBS="16")
            assert worker.pid is not None
            spy = record(worker.pid, args.out / "small-worker.txt")
            time.sleep(1)
            rate = small_batch(stack, site.url(media.progressive), 100)
            stop(spy)
            print(f"small: {rate:,.0f} jobs/h")
            print(summary(args.out / "small-worker.txt"))
        if "get" in wanted:
            ids = [job["id"] for job in stack.api.get("/jobs", params={"limit": 100}).json()["jobs"]]
            assert stack.gateway is not None and stack.gateway.pid is not None
            spy = record(stack.gateway.pid, args.out / "get-gateway.txt")
            time.sleep(1)
            print(loadgen(stack, [f"/jobs/{i}" for i in ids], 400, 10, procs=1))
            stop(spy)
            print(summary(args.out / "get-gateway.txt"))


if __name__ == "__main__":
    main()
