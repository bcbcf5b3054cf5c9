"""A TCP proxy in front of a real service, to stage that service's outages for one client without
touching the service the rest of the test session uses.

Modes: ``pass`` forwards both ways; ``slow`` forwards what the client sends at ``slow_rate`` bytes/s
(an upload that takes a while); ``refuse`` stops listening (connections are refused) and cuts
open ones; ``blackhole`` forwards what the client sends but swallows every answer, so a request
reaches the service while the client sees only a timeout; ``silent`` accepts new connections and
forwards nothing, so nothing reaches the service and the client sees only a timeout. Leaving
``blackhole`` or ``silent`` cuts the open connections (their protocol state is broken) and the
client reconnects.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Literal, Self
from urllib.parse import urlsplit

from twister.embedded.process import free_port

Mode = Literal["pass", "slow", "refuse", "blackhole", "silent"]


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.mode: Mode = "pass"
        self.slow_rate = 256 * 1024
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        self._listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_listener()
        self._cut_connections()

    def set_mode(self, mode: Mode) -> None:
        previous, self.mode = self.mode, mode
        if mode == "refuse":
            self._close_listener()
            self._cut_connections()
        elif previous == "refuse":
            self._listen()
        if previous in ("blackhole", "silent") and mode != previous:
            self._cut_connections()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _cut_connections(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.mode == "silent":
                with self._lock:
                    self._connections.add(client)
                threading.Thread(target=self._drain, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    @staticmethod
    def _drain(client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while client.recv(65536):
                pass

    def _pump(self, source: socket.socket, target: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(16384):
                if answers and self.mode == "blackhole":
                    continue
                if not answers and self.mode == "slow":
                    time.sleep(len(data) / self.slow_rate)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


def via(url: str, proxy: FaultProxy) -> str:
    """``url`` (a DSN or an http URL on 127.0.0.1, credentials kept) pointed at ``proxy`` instead."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{proxy.port}").geturl()
