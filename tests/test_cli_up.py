"""The README's run command: `twister up` starts everything (Postgres as an unprivileged user), prints
what a user needs, keeps data (jobs, files, the dev key) across restarts, and Ctrl-C stops every child."""

from __future__ import annotations

import os
import pwd
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from tests.conftest import wait_terminal
from tests.media_site import MediaSite
from twister.embedded.children import isolated_settings


@contextmanager
def twister_up(env: dict[str, str]) -> Iterator[tuple[str, list[psutil.Process]]]:
    """Runs `twister up` until its banner; yields the banner and the children, then sends Ctrl-C."""
    process = subprocess.Popen(
        [sys.executable, "-m", "twister", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()

    def read_lines() -> None:
        for line in process.stdout or []:
            lines.put(line)

    threading.Thread(target=read_lines, daemon=True).start()
    banner = ""
    try:
        while "Ctrl-C stops everything" not in banner:
            banner += lines.get(timeout=120)
        children = psutil.Process(process.pid).children(recursive=True)
        yield banner, children
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running: {[p.info for p in alive]}"


def test_up_serves_jobs_keeps_data_and_stops_cleanly(tmp_path: Path, media: MediaSite) -> None:
    settings = isolated_settings(tmp_path / "data")
    env = {**os.environ, **settings.as_env()}
    api_url, ui_url = settings.api_url, f"http://127.0.0.1:{settings.temporal_ui_port}"
    with twister_up(env) as (banner, children):
        assert api_url in banner and ui_url in banner and "curl -X POST" in banner
        assert len(children) >= 5
        if os.geteuid() == 0:  # initdb refuses root: the embedded Postgres runs as the configured user
            postgres = [p for p in children if p.name() == "postgres"]
            assert postgres and {p.uids().real for p in postgres} == {pwd.getpwnam(settings.postgres_os_user).pw_uid}
        key = re.search(r"API key\s+(\S+)", banner)
        assert key is not None
        assert httpx.get(ui_url, timeout=10).status_code == 200
        with httpx.Client(base_url=api_url, headers={"x-api-key": key.group(1)}, timeout=30) as api:
            created = api.post("/jobs", json={"url": media.progressive_url})
            assert created.status_code == 201, created.text
            job_id = created.json()["job_id"]
            assert wait_terminal(api, job_id)["status"] == "Completed"

    with twister_up(env) as (banner, _), httpx.Client(base_url=api_url, timeout=30) as api:
        assert key.group(1) in banner
        again = api.get(f"/jobs/{job_id}", headers={"x-api-key": key.group(1)})
        assert again.status_code == 200 and again.json()["status"] == "Completed"
        assert httpx.get(again.json()["s3_url"], timeout=10).status_code == 200
