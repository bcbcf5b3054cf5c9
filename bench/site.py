"""The bench's media site: static files on 127.0.0.1, sent with sendfile so the site is never what
is measured, with Range support and an optional delay before each answer (a CDN's round trip).

``/lat/<ms>/<path>`` answers after ``ms`` milliseconds, ``/rate/<bytes per s>/<path>`` sends at that
pace (per response); plain ``/<path>`` uses the site's default delay.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".mp4": "video/mp4"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root: Path
    delay: float
    timeout = 30

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
            self._serve(body=True)

    def do_HEAD(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
            self._serve(body=False)

    def _serve(self, body: bool) -> None:
        parts = [p for p in unquote(urlsplit(self.path).path).split("/") if p]
        delay, rate = self.delay, 0
        while len(parts) > 2 and parts[0] in ("lat", "rate") and parts[1].isdigit():
            if parts[0] == "lat":
                delay = int(parts[1]) / 1000
            else:
                rate = int(parts[1])
            parts = parts[2:]
        target = self.root.joinpath(*parts)
        if delay:
            time.sleep(delay)
        if not parts or ".." in parts or not target.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = target.stat().st_size
        start, end, status = 0, size - 1, 200
        match = _RANGE.match(self.headers.get("Range", "").strip())
        if match and (match.group(1) or match.group(2)):
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:
                start = max(0, size - int(last))
            status = 206
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("Content-Type", _TYPES.get(target.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body or not length:
            return
        self.wfile.flush()
        with target.open("rb") as fh:
            if not rate:
                self.connection.sendfile(fh, start, length)
                return
            began, sent = time.monotonic(), 0
            chunk = max(4096, rate // 20)
            while sent < length:
                n = self.connection.sendfile(fh, start + sent, min(chunk, length - sent))
                if not n:
                    break
                sent += n
                pause = began + sent / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (a cancelled job): nothing to report


class BenchSite:
    def __init__(self, root: Path, delay_ms: int = 0) -> None:
        handler = type("BenchHandler", (_Handler,), {"root": root, "delay": delay_ms / 1000})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="bench-site", daemon=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, rel: str, *, delay_ms: int | None = None, rate: int | None = None) -> str:
        prefix = (f"/lat/{delay_ms}" if delay_ms is not None else "") + (f"/rate/{rate}" if rate else "")
        return f"{self.base_url}{prefix}/{rel}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":  # a quick look: serve a folder until Ctrl-C
    import sys

    with BenchSite(Path(sys.argv[1]), int(os.environ.get("DELAY_MS", "0"))) as site:
        print(site.base_url, flush=True)
        threading.Event().wait()
