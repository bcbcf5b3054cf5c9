"""A local webhook receiver that answers with scripted status codes and keeps what it got."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    statuses: list[int]
    deliveries: list[Delivery] = field(default_factory=list)


@contextmanager
def webhook_receiver(statuses: list[int]) -> Iterator[Receiver]:
    """Answers the n-th request with ``statuses[n]`` (the last one repeats)."""
    receiver = Receiver(url="", statuses=statuses)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            receiver.deliveries.append(Delivery({k.lower(): v for k, v in self.headers.items()}, body))
            index = min(len(receiver.deliveries), len(statuses)) - 1
            self.send_response(statuses[index])
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/twister"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
