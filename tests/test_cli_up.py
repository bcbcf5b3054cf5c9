"""The README's run command: `twister up` starts everything (Postgres as an unprivileged user), prints
what a user needs, keeps data (jobs, files, the dev key) across restarts, brings a killed service back
while the rest keeps running, opens nothing to other local users, and Ctrl-C stops every child."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil
import pytest

from tests.conftest import wait_terminal
from tests.media_site import MediaSite
from twister.config import Settings
from twister.embedded.children import isolated_settings
from twister.embedded.postgres import SUPERUSER, socket_dir
from twister.embedded.process import free_port


@dataclass
class Up:
    """A running `twister up` and what it printed so far."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    output: str = ""

    def wait_output(self, pattern: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while re.search(pattern, self.output, re.DOTALL) is None:
            try:
                self.output += self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} in {timeout:g} s:\n{self.output}") from None

    def children(self) -> list[psutil.Process]:
        children: list[psutil.Process] = psutil.Process(self.process.pid).children(recursive=True)
        return children


@contextmanager
def twister_up(env: dict[str, str]) -> Iterator[Up]:
    """Runs `twister up` until its banner and yields it, then sends Ctrl-C and checks every child is gone."""
    process = subprocess.Popen(
        [sys.executable, "-m", "twister", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    up = Up(process, queue.Queue())

    def read_lines() -> None:
        for line in process.stdout or []:
            up.lines.put(line)

    threading.Thread(target=read_lines, daemon=True).start()
    children: list[psutil.Process] = []
    try:
        up.wait_output("Ctrl-C stops everything", timeout=120)
        yield up
    finally:
        children = up.children()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running: {[p.info for p in alive]}"


def child_pids(settings: Settings) -> dict[str, int]:
    return {path.stem: json.loads(path.read_text())["pid"] for path in (settings.data_dir / "run").glob("*.pid")}


def test_up_serves_jobs_heals_keeps_data_and_stops_cleanly(tmp_path: Path, media: MediaSite) -> None:
    settings = isolated_settings(tmp_path / "data", worker_metrics_address=f"127.0.0.1:{free_port()}")
    env = {**os.environ, **settings.as_env()}
    api_url, ui_url = settings.api_url, f"http://127.0.0.1:{settings.temporal_ui_port}"
    worker_metrics = f"http://{settings.worker_metrics_address}/metrics"
    with twister_up(env) as up:
        assert api_url in up.output and ui_url in up.output and "curl -X POST" in up.output
        assert f"{api_url}/metrics" in up.output and worker_metrics in up.output
        assert httpx.get(f"{api_url}/ready", timeout=10).status_code == 200
        assert len(up.children()) >= 5
        if os.geteuid() == 0:  # initdb refuses root: the embedded Postgres runs as the configured user
            postgres = [p for p in up.children() if p.name() == "postgres"]
            assert postgres and {p.uids().real for p in postgres} == {pwd.getpwnam(settings.postgres_os_user).pw_uid}
        key = re.search(r"API key\s+(\S+)", up.output)
        assert key is not None
        assert httpx.get(ui_url, timeout=10).status_code == 200
        with httpx.Client(base_url=api_url, headers={"x-api-key": key.group(1)}, timeout=30) as api:
            created = api.post("/jobs", json={"url": media.progressive_url})
            assert created.status_code == 201, created.text
            job_id = created.json()["job_id"]
            job = wait_terminal(api, job_id)
            assert job["status"] == "Completed"
            assert "twister_uploaded_bytes_total" in httpx.get(worker_metrics, timeout=10).text

            assert_s3_internals_refuse_anonymous(settings, job["s3_url"])
            asyncio.run(assert_postgres_wants_passwords(settings))
            assert_private_files(settings)

            before = child_pids(settings)
            os.kill(before["postgres"], signal.SIGKILL)
            up.wait_output("postgres was killed by SIGKILL.*postgres is back", timeout=30)
            deadline = time.monotonic() + 15
            while (status := api.get(f"/jobs/{uuid.uuid4()}").status_code) != 404:
                assert time.monotonic() < deadline, f"GET /jobs still answers {status}"
                time.sleep(0.2)
            after = child_pids(settings)
            assert after.pop("postgres") != before.pop("postgres")
            assert after == before and set(after) == {"temporal", "s3", "worker", "gateway"}

    with twister_up(env) as up, httpx.Client(base_url=api_url, timeout=30) as api:
        assert key.group(1) in up.output
        again = api.get(f"/jobs/{job_id}", headers={"x-api-key": key.group(1)})
        assert again.status_code == 200 and again.json()["status"] == "Completed"
        assert httpx.get(again.json()["s3_url"], timeout=10).status_code == 200


def assert_s3_internals_refuse_anonymous(settings: Settings, presigned_url: str) -> None:
    """SeaweedFS's own HTTP ports give nothing without credentials: the filer and the master's API are
    off, the volume server wants a JWT; the object stays downloadable through S3."""
    object_path = urlsplit(presigned_url).path
    ports = json.loads((settings.data_dir / "run" / "s3-ports.json").read_text())
    filer, master, volume = (f"http://127.0.0.1:{ports[name]}" for name in ("filer.port", "master.port", "volume.port"))
    requests = [
        *((method, f"{filer}/buckets{object_path}") for method in ("PUT", "GET", "DELETE")),
        ("PUT", f"{filer}/buckets/{settings.s3_bucket}/planted"),
        ("GET", f"{master}/dir/assign"),
        ("GET", f"{master}/col/delete?collection={settings.s3_bucket}"),
        *((method, f"{volume}/1,0123456789") for method in ("PUT", "GET", "DELETE")),
    ]
    for method, url in requests:
        response = httpx.request(method, url, content=b"x" if method == "PUT" else None, timeout=5)
        assert response.status_code in {401, 404}, (method, url, response.status_code, response.text)
    assert httpx.get(presigned_url, timeout=10).status_code == 200


async def assert_postgres_wants_passwords(settings: Settings) -> None:
    """No password, or a wrong one, gets no connection, over TCP or the unix socket; the DSN's does."""
    dsn = urlsplit(settings.database_url)
    for host in ("127.0.0.1", str(socket_dir(settings.database_port))):
        for user in (dsn.username, SUPERUSER):
            for password in (None, "wrong"):
                with pytest.raises(asyncpg.InvalidPasswordError):
                    await asyncpg.connect(
                        host=host, port=settings.database_port, user=user, password=password, database="postgres"
                    )
        conn = await asyncpg.connect(
            host=host, port=settings.database_port, user=dsn.username, password=dsn.password, database="twister"
        )
        await conn.close()


def assert_private_files(settings: Settings) -> None:
    """Other users may not list the data dir (only pass through it, for Postgres' OS user when root), nor
    enter or read anything in it; Temporal's database and the logs are the owner's only."""
    data = settings.data_dir
    assert stat.S_IMODE(data.stat().st_mode) & 0o076 == 0
    inside = [*data.iterdir(), *data.glob("temporal/*"), *data.glob("logs/*")]
    assert data / "temporal" / "temporal.db" in inside and data / "logs" / "postgres.log" in inside
    loose = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in inside if path.stat().st_mode & 0o077}
    assert not loose
