"""Open-loop HTTP/1.1 GET load: requests leave at a fixed rate whether or not earlier ones were answered.

    python -m bench.loadgen --url http://127.0.0.1:8000 --rate 500 --seconds 15 \\
        --header 'x-api-key: ...' --paths-file paths.txt [--procs 2]

Each request has a scheduled send time (``start + i / rate``); its latency runs from that time to the
last byte of its answer, so a slow server cannot slow the generator down and hide its own queue
(no coordinated omission). Keep-alive connections are reused; a request due while all are busy
opens another (up to ``--max-connections``, after which requests wait for one — and that wait is in
their latency too). It prints one JSON object: counts by status, latency percentiles, the rate
achieved, and the generator's own CPU use, to show it was not the bottleneck. Built on asyncio's
transports (no HTTP library), one process sustains a few thousand requests per second here;
``--procs`` splits the rate over several processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class _Pending:
    path: str
    due: float


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    retry_after: int = 0


class _Connection(asyncio.Protocol):
    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.current: _Pending | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.gen.opened()
        self.gen.ready(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.current is not None:
            self.gen.finish(self.current, "error", False)
            self.current = None
        self.gen.lost(self)

    def send(self, request: _Pending) -> None:
        assert self.transport is not None
        self.current = request
        self.transport.write(self.gen.request_bytes(request.path))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.current is not None:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buffer[:head_end]).decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < head_end + 4 + length:
                return
            del self.buffer[: head_end + 4 + length]
            request, self.current = self.current, None
            self.gen.finish(request, head[0].split(" ", 2)[1], "retry-after" in headers)
            if headers.get("connection", "").lower() == "close":
                assert self.transport is not None
                self.transport.close()
            else:
                self.gen.ready(self)


class _Generator:
    def __init__(self, host: str, port: int, headers: list[str], max_connections: int) -> None:
        self.host, self.port = host, port
        extra = "".join(f"{h}\r\n" for h in headers)
        self._template = "GET {} HTTP/1.1\r\nHost: " + f"{host}:{port}\r\n{extra}\r\n"
        self.max_connections = max_connections
        self.idle: deque[_Connection] = deque()
        self.waiting: deque[_Pending] = deque()
        self.opening = 0
        self.open = 0
        self.tally = Tally()
        self.outstanding = 0
        self.peak_connections = 0

    def request_bytes(self, path: str) -> bytes:
        return self._template.format(path).encode("latin-1")

    def submit(self, request: _Pending) -> None:
        self.outstanding += 1
        while self.idle:
            conn = self.idle.popleft()
            if not conn.closed:
                conn.send(request)
                return
        self.waiting.append(request)
        if self.open + self.opening < self.max_connections:
            self.opening += 1
            asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        try:
            await asyncio.get_running_loop().create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError:
            self.opening -= 1
            if self.waiting:
                self.finish(self.waiting.popleft(), "connect-error", False)

    def opened(self) -> None:
        self.opening -= 1
        self.open += 1
        self.peak_connections = max(self.peak_connections, self.open)

    def ready(self, conn: _Connection) -> None:
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            self.idle.append(conn)

    def lost(self, conn: _Connection) -> None:
        self.open -= 1

    def finish(self, request: _Pending, status: str, retry_after: bool) -> None:
        self.outstanding -= 1
        self.tally.latencies.append(time.monotonic() - request.due)
        self.tally.statuses[status] += 1
        self.tally.retry_after += retry_after


async def _run(args: argparse.Namespace, rate: float, paths: list[str]) -> dict[str, Any]:
    parts = urlsplit(args.url)
    gen = _Generator(parts.hostname or "127.0.0.1", parts.port or 80, args.header, args.max_connections)
    total = int(rate * args.seconds)
    start = time.monotonic() + 0.05
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    late = 0.0
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        else:
            late = max(late, -delay)
        gen.submit(_Pending(paths[i % len(paths)], due))
    sent_by = time.monotonic()
    deadline = sent_by + args.timeout
    while gen.outstanding and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    unanswered = gen.outstanding
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "latencies": gen.tally.latencies,
        "statuses": dict(gen.tally.statuses) | ({"timeout": unanswered} if unanswered else {}),
        "retry_after": gen.tally.retry_after,
        "sent": total,
        "send_seconds": sent_by - start,
        "cpu_seconds": cpu,
        "max_send_lag": late,
        "peak_connections": gen.peak_connections,
    }


def _worker(args: argparse.Namespace, rate: float, paths: list[str], out: Any) -> None:
    out.put(asyncio.run(_run(args, rate, paths)))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    paths = [line.strip() for line in open(args.paths_file) if line.strip()]  # noqa: SIM115
    per_proc = args.rate / args.procs
    queue: Any = multiprocessing.get_context("fork").Queue()
    procs = [
        multiprocessing.get_context("fork").Process(
            target=_worker, args=(args, per_proc, paths[i :: args.procs] or paths, queue)
        )
        for i in range(args.procs)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    latencies = [x for r in results for x in r["latencies"]]
    statuses: Counter[str] = Counter()
    for r in results:
        statuses.update(r["statuses"])
    send_seconds = max(r["send_seconds"] for r in results)
    return {
        "rate_asked": args.rate,
        "seconds": args.seconds,
        "sent": sum(r["sent"] for r in results),
        "rate_sent": round(sum(r["sent"] for r in results) / max(send_seconds, 1e-9), 1),
        "statuses": dict(statuses),
        "with_retry_after": sum(r["retry_after"] for r in results),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
        "generator_cpu_percent": round(100 * sum(r["cpu_seconds"] for r in results) / max(send_seconds, 1e-9), 1),
        "max_send_lag_ms": round(max(r["max_send_lag"] for r in results) * 1000, 1),
        "peak_connections": sum(r["peak_connections"] for r in results),
        "procs": args.procs,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--paths-file", required=True, help="one path a line, sent in turn")
    p.add_argument("--rate", type=float, required=True, help="requests per second, all processes together")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--header", action="append", default=[], help="'name: value', repeatable")
    p.add_argument("--procs", type=int, default=1)
    p.add_argument("--max-connections", type=int, default=512, help="per process")
    p.add_argument("--timeout", type=float, default=30, help="how long to wait for answers after the last send")
    return p


if __name__ == "__main__":
    print(json.dumps(run(parser().parse_args())))
