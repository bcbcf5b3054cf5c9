"""twister's benchmark suite against the by-hand baseline (not a test: figures, targets, pass/miss).

    .venv/bin/python -m bench                     # every row, 5 runs each, writes docs/benchmarks.md
    .venv/bin/python -m bench --rows single20,get --runs 5 --label "after X" --no-write

Starts its own Temporal, Postgres and S3 (the embedded stack), one gateway and one worker under a temp
dir, and a local media site serving sources made with the bundled ffmpeg (kept in --media-cache).
Rows (see docs/benchmarks.md for what each measures): single20, single200, small, get, finished.
Every job row runs the by-hand baseline (the ``yt-dlp`` command line merging video + audio into an
MP4, then a boto3 multipart upload and presign, each its own process) interleaved with twister,
and reports medians. Raw figures go to ``--json``; a table of the rows goes to stdout and, unless
``--no-write``, between the markers of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.media import BenchMedia, ensure_media
from bench.site import BenchSite
from bench.stack import BenchStack, cpu_by_service, sampling

BY_HAND_FORMAT = "bv*[height<=720]+ba/b[height<=720]"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TIMES = "\u00d7"
ROWS = ("single20", "single200", "small", "get", "finished")


@dataclass
class Row:
    work: str
    twister: str
    baseline: str
    ratio: str
    target: str
    met: bool | None
    notes: str = ""


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


# ---------------------------------------------------------------------------------------- job rows


def single_job(stack: BenchStack, site: BenchSite, media: BenchMedia, rel: str, runs: int) -> dict[str, Any]:
    """One job at a time, twister and by-hand interleaved (A/B, B/A, ...)."""
    stack.use_worker()
    url = site.url(rel)
    stack.job(url, max_resolution="720")  # warm-up: first job pays imports, connections
    twister, by_hand, docs, disk, loads = [], [], [], [], []
    for i in range(runs):
        loads.append(_load())
        order = ("t", "b") if i % 2 == 0 else ("b", "t")
        for who in order:
            if who == "b":
                by_hand.append(stack.by_hand(url, BY_HAND_FORMAT))
                continue
            with sampling(stack) as sampled:
                run = stack.job(url, max_resolution="720")
            twister.append(run.wall)
            docs.append(run.document)
            disk.append(sampled.peak_disk / max(int(run.document.get("file_size") or 1), 1))
    steps = {
        step: _median([float(d.get(step) or 0) / 1000 for d in docs])
        for step in (
            "queue_wait_ms",
            "extract_duration_ms",
            "download_duration_ms",
            "mux_duration_ms",
            "upload_duration_ms",
        )
    }
    return {
        "source_bytes": media.size(rel),
        "twister_s": twister,
        "by_hand_s": by_hand,
        "twister_median_s": _median(twister),
        "by_hand_median_s": _median(by_hand),
        "ratio": _median(twister) / _median(by_hand),
        "steps_median_s": steps,
        "peak_disk_over_output": disk,
        "load": loads,
    }


def _newest(stack: BenchStack, count: int) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    while len(jobs) < count:
        page = stack.api.get("/jobs", params={"limit": min(100, count - len(jobs)), "offset": len(jobs)}).json()
        jobs += page["jobs"]
        if not page["jobs"]:
            break
    return jobs


def small_batch(stack: BenchStack, url: str, count: int, cpu: dict[str, list[float]] | None = None) -> float:
    """``count`` jobs submitted at once; jobs per hour from the first created to the last finished.
    ``cpu`` collects the CPU milliseconds per job of each service (and of this process, the client)."""
    before = cpu_by_service() | {"bench client": time.process_time()}
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: stack.submit(url), range(count)))
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        jobs = [job for job in _newest(stack, count) if job["id"] in ids]
        if len(jobs) == count and all(job.get("finished_at") for job in jobs):
            bad = [job for job in jobs if job["status"] != "Completed"]
            if bad:
                raise RuntimeError(f"{len(bad)} small jobs did not complete, e.g. {bad[0]}")
            span = (max(j["finished_at"] for j in jobs) - min(j["created_at"] for j in jobs)) / 1000
            after = cpu_by_service() | {"bench client": time.process_time()}
            for name, used in after.items():
                if cpu is not None:
                    cpu.setdefault(name, []).append(1000 * (used - before.get(name, 0.0)) / count)
            return float(count / span * 3600)
        time.sleep(0.25)
    raise TimeoutError("small jobs did not finish")


def by_hand_batch(stack: BenchStack, url: str, count: int, lanes: int) -> float:
    """``count`` by-hand jobs, ``lanes`` at a time (a shell loop with ``xargs -P``): jobs per hour."""
    began = time.monotonic()
    with ThreadPoolExecutor(lanes) as pool:
        list(pool.map(lambda _: stack.by_hand(url, "b"), range(count)))
    return count / (time.monotonic() - began) * 3600


def small_jobs(
    stack: BenchStack, site: BenchSite, media: BenchMedia, runs: int, slot_settings: list[int], count: int
) -> dict[str, Any]:
    url = site.url(media.progressive)
    per_slots: dict[int, list[float]] = {slots: [] for slots in slot_settings}
    cpu: dict[int, dict[str, list[float]]] = {slots: {} for slots in slot_settings}
    by_hand: list[float] = []
    loads = []
    for i in range(runs):
        loads.append(_load())
        order = slot_settings if i % 2 == 0 else list(reversed(slot_settings))
        for slots in order:
            stack.use_worker(TWISTER_WORKER_MAX_JOBS=str(slots))
            per_slots[slots].append(small_batch(stack, url, count, cpu[slots]))
        by_hand.append(by_hand_batch(stack, url, 10, 2))
    best = max(slot_settings, key=lambda s: _median(per_slots[s]))
    return {
        "jobs": count,
        "jobs_per_hour": per_slots,
        "median_jobs_per_hour": {s: _median(v) for s, v in per_slots.items()},
        "best_slots": best,
        "cpu_ms_per_job": {s: {name: _median(v) for name, v in by.items()} for s, by in cpu.items()},
        "by_hand_jobs_per_hour": by_hand,
        "by_hand_median": _median(by_hand),
        "load": loads,
    }


# ---------------------------------------------------------------------------------------- GET rows


def loadgen(stack: BenchStack, paths: list[str], rate: float, seconds: float, procs: int) -> dict[str, Any]:
    paths_file = stack.root / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", "--url", stack.settings.api_url, "--paths-file", str(paths_file),
         "--rate", str(rate), "--seconds", str(seconds), "--procs", str(procs),
         "--header", f"x-api-key: {stack.key}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    result["load"] = _load()
    return result


def _gateway_cpu(stack: BenchStack) -> float:
    assert stack.gateway is not None and stack.gateway.pid is not None
    times = psutil.Process(stack.gateway.pid).cpu_times()
    return float(times.user + times.system)


def _measured(stack: BenchStack, paths: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """A load window, with the gateway's CPU use (percent of one core) over it."""
    cpu0, began = _gateway_cpu(stack), time.monotonic()
    result = loadgen(stack, paths, rate, seconds, procs=1)
    result["gateway_cpu_percent"] = round(100 * (_gateway_cpu(stack) - cpu0) / (time.monotonic() - began), 1)
    return result


def get_running(
    stack: BenchStack, site: BenchSite, media: BenchMedia, runs: int, rates: list[float], seconds: float
) -> dict[str, Any]:
    """GETs of running jobs while 16 run on one worker (16 slots): each run a new batch of 16 jobs on
    the 20 MB HLS source sent at 600 kB/s per response (so they stay running), an open-loop window
    at each rate, and the worker's peak memory (process tree, ffmpeg included) until they end."""
    stack.use_worker(TWISTER_WORKER_MAX_JOBS="16")
    url = site.url(media.hls_small, rate=600_000)
    results: dict[str, list[dict[str, Any]]] = {str(rate): [] for rate in rates}
    rss: list[int] = []
    rss_summed: list[int] = []
    for _ in range(runs):
        with sampling(stack) as sampled:
            ids = [stack.submit(url, max_resolution="720") for _ in range(16)]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                states = [stack.api.get(f"/jobs/{job_id}").json() for job_id in ids]
                if all(s.get("step") == "Downloading" for s in states):
                    break
                time.sleep(0.5)
            for rate in rates:
                result = _measured(stack, [f"/jobs/{job_id}" for job_id in ids], rate, seconds)
                result["running_after"] = sum(
                    stack.api.get(f"/jobs/{job_id}").json().get("status") == "Processing" for job_id in ids
                )
                results[str(rate)].append(result)
            for job_id in ids:
                stack.wait(job_id, every=0.5)
        rss.append(sampled.peak_rss)
        rss_summed.append(sampled.peak_rss_summed)
    return {"rates": results, "worker_peak_rss": rss, "worker_peak_rss_summed": rss_summed}


def get_finished(stack: BenchStack, runs: int, rates: list[float], seconds: float) -> dict[str, Any]:
    ids = [job["id"] for job in _newest(stack, 100) if job["status"] == "Completed"]
    results: dict[str, list[dict[str, Any]]] = {str(rate): [] for rate in rates}
    for _ in range(runs):
        for rate in rates:
            result = _measured(stack, [f"/jobs/{job_id}" for job_id in ids], rate, seconds)
            results[str(rate)].append(result)
    return {"rates": results, "jobs": len(ids)}


# ---------------------------------------------------------------------------------------- report


def _p99(results: list[dict[str, Any]]) -> float:
    return _median([r["p99_ms"] for r in results])


def _ok(results: list[dict[str, Any]]) -> str:
    answered = sum(r["statuses"].get("200", 0) for r in results)
    sent = sum(r["sent"] for r in results)
    shed = sum(r["statuses"].get("503", 0) for r in results)
    return f"{100 * answered / max(sent, 1):.1f} % 200" + (f", {100 * shed / max(sent, 1):.1f} % 503" if shed else "")


def rows(figures: dict[str, Any]) -> list[Row]:
    out = []
    for key, label, target in (
        ("single20", "one job, 20 MB HLS 720p + audio", 0.70),
        ("single200", "one job, 200 MB HLS", 0.90),
    ):
        if key in figures:
            f = figures[key]
            steps = ", ".join(f"{k.split('_')[0]} {v:.2f}" for k, v in f["steps_median_s"].items())
            out.append(Row(
                label, f"{f['twister_median_s']:.2f} s", f"{f['by_hand_median_s']:.2f} s", f"{f['ratio']:.2f}{TIMES}",
                f"≤ {target:.2f}{TIMES}", f["ratio"] <= target, f"steps (s): {steps}; load {', '.join(f['load'])}",
            ))  # fmt: skip
    if "small" in figures:
        f = figures["small"]
        per = ", ".join(f"{s} slots {v:,.0f}" for s, v in f["median_jobs_per_hour"].items())
        used = f["cpu_ms_per_job"][f["best_slots"]]
        per += "; CPU ms per job at that setting: " + ", ".join(
            f"{name} {ms:.0f}" for name, ms in sorted(used.items(), key=lambda item: -item[1])
        )
        best = f["median_jobs_per_hour"][f["best_slots"]]
        out.append(Row(
            f"{f['jobs']} small (1 MB) jobs, one worker", f"{best:,.0f} jobs/h ({f['best_slots']} slots)",
            f"{f['by_hand_median']:,.0f} jobs/h (2 at a time)", f"{best / f['by_hand_median']:.2f}{TIMES} the rate",
            "≥ 18,000 jobs/h", best >= 18000, f"{per}; load {', '.join(f['load'])}",
        ))  # fmt: skip
    if "get" in figures:
        f = figures["get"]
        for rate, results in f["rates"].items():
            p99 = _p99(results)
            target_rate = float(rate) == 500
            out.append(Row(
                f"GET running job, {float(rate):.0f} req/s open-loop, 16 jobs running",
                f"p99 {p99:.0f} ms (p50 {_median([r['p50_ms'] for r in results]):.1f})", "—", "—",
                "p99 ≤ 50 ms" if target_rate else "fast 503 + Retry-After beyond capacity",
                (p99 <= 50) if target_rate else None,
                f"{_ok(results)}; gateway CPU {_median([r['gateway_cpu_percent'] for r in results]):.0f} %, "
                f"generator CPU {_median([r['generator_cpu_percent'] for r in results]):.0f} %; "
                f"load {', '.join(r['load'] for r in results)}",
            ))  # fmt: skip
        rss = _median([float(x) for x in f["worker_peak_rss"]]) / 1e6
        summed = ", ".join(f"{x / 1e6:.0f}" for x in f.get("worker_peak_rss_summed", []))
        out.append(Row(
            "worker RSS with 16 jobs (ffmpeg included)", f"{rss:.0f} MB", "—", "—", "≤ 400 MB", rss <= 400,
            f"each process counted once (a child between fork and exec is the worker's pages); "
            f"summed as each process reports it: {summed} MB" if summed else "",
        ))  # fmt: skip
    if "finished" in figures:
        f = figures["finished"]
        for rate, results in f["rates"].items():
            p99 = _p99(results)
            target_rate = float(rate) == 500
            out.append(Row(
                f"GET finished job, {float(rate):.0f} req/s open-loop",
                f"p99 {p99:.0f} ms (p50 {_median([r['p50_ms'] for r in results]):.1f})", "—", "—",
                "p99 ≤ 10 ms" if target_rate else "fast 503 + Retry-After beyond capacity",
                (p99 <= 10) if target_rate else None,
                f"{_ok(results)}; gateway CPU {_median([r['gateway_cpu_percent'] for r in results]):.0f} %, "
                f"generator CPU {_median([r['generator_cpu_percent'] for r in results]):.0f} %",
            ))  # fmt: skip
    for key in ("single200", "single20"):
        if key in figures:
            disk = _median(figures[key]["peak_disk_over_output"])
            out.append(
                Row(
                    f"peak work-dir disk per job ({key})",
                    f"{disk:.2f}{TIMES} the output",
                    "—",
                    "—",
                    f"≤ 1.2{TIMES}",
                    disk <= 1.2,
                )
            )
            break
    return out


def table(result_rows: list[Row]) -> str:
    lines = ["| work | twister | by hand | twister / by hand | target | met | notes |", "|---|---|---|---|---|---|---|"]
    for r in result_rows:
        met = "—" if r.met is None else ("met" if r.met else "**missed**")
        lines.append(f"| {r.work} | {r.twister} | {r.baseline} | {r.ratio} | {r.target} | {met} | {r.notes} |")
    return "\n".join(lines)


def machine() -> str:
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def write_docs(name: str, section: str) -> None:
    """Replaces the text between the markers of section ``name`` (appended when missing)."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if begin not in text:
        text = f"{text.rstrip()}\n\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    DOCS.write_text(f"{head}{begin}\n{section}\n{end}{tail}")


def main() -> None:
    p = argparse.ArgumentParser(description="twister vs by hand")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--slots", default="4,8,16", help="worker slot settings of the small-jobs row")
    p.add_argument("--small-jobs", type=int, default=100)
    p.add_argument("--get-rates", default="500,1500")
    p.add_argument("--get-seconds", type=float, default=10)
    p.add_argument("--delay-ms", type=int, default=0, help="the media site's delay before each answer")
    p.add_argument("--media-cache", type=Path, default=Path(tempfile.gettempdir()) / "twister-bench-media")
    p.add_argument("--json", type=Path, help="raw figures to this file")
    p.add_argument("--label", default="current tree")
    p.add_argument("--section", default="latest", help="the marked section of docs/benchmarks.md to (re)write")
    p.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    args = p.parse_args()
    wanted = [r for r in args.rows.split(",") if r]
    unknown = set(wanted) - set(ROWS)
    if unknown:
        p.error(f"unknown rows {sorted(unknown)}")
    media = ensure_media(args.media_cache)
    figures: dict[str, Any] = {"machine": machine(), "label": args.label, "delay_ms": args.delay_ms}
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="twister-bench-") as tmp,
        BenchSite(media.root, args.delay_ms) as site,
        BenchStack(Path(tmp)) as stack,
    ):
        figures["load_at_start"] = _load()
        if "single20" in wanted:
            figures["single20"] = single_job(stack, site, media, media.hls_small, args.runs)
            print("single20", json.dumps(figures["single20"]), flush=True)
        if "single200" in wanted:
            figures["single200"] = single_job(stack, site, media, media.hls_large, args.runs)
            print("single200", json.dumps(figures["single200"]), flush=True)
        slots = [int(s) for s in args.slots.split(",")]
        if "small" in wanted:
            figures["small"] = small_jobs(stack, site, media, args.runs, slots, args.small_jobs)
            print("small", json.dumps(figures["small"]), flush=True)
        elif "finished" in wanted:  # finished jobs to ask about
            stack.use_worker(TWISTER_WORKER_MAX_JOBS=str(max(slots)))
            small_batch(stack, site.url(media.progressive), args.small_jobs)
        rates = [float(r) for r in args.get_rates.split(",")]
        if "finished" in wanted:
            figures["finished"] = get_finished(stack, args.runs, rates, args.get_seconds)
            print("finished", json.dumps(figures["finished"]), flush=True)
        if "get" in wanted:
            figures["get"] = get_running(stack, site, media, args.runs, rates, args.get_seconds)
            print("get", json.dumps(figures["get"]), flush=True)
    figures["seconds"] = round(time.monotonic() - began)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"### {args.label} ({stamp})\n\n{machine()}; media site delay {args.delay_ms} ms; "
        f"{args.runs} runs a row, medians; 1/5-min load at start {figures['load_at_start']}; "
        f"took {figures['seconds']} s.\n\n{table(rows(figures))}\n"
    )
    print(section)
    if not args.no_write:
        write_docs(args.section, section)


if __name__ == "__main__":
    main()
