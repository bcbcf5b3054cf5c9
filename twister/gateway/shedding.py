"""Beyond what the gateway can answer quickly, it says so at once: 503 with ``Retry-After``.

Past its capacity a server that accepts everything builds a queue, and every request waits seconds in
it. This middleware lets at most ``max_concurrent`` requests be in progress in this process; one more
is answered 503 at once (a few hundred microseconds), so the admitted ones keep their latency and a
client knows to come back. Event streams (open for a job's whole run) and the health, readiness and
metrics endpoints are never refused or counted.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from twister.gateway.errors import error_response

RETRY_AFTER_SECONDS = 1
_EXEMPT = ("/health", "/ready", "/metrics")


class LoadShedding:
    def __init__(self, app: ASGIApp, max_concurrent: int) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in _EXEMPT or path.endswith("/events"):
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.max_concurrent:
            response = error_response(
                503,
                f"The server is busy ({self.in_progress} requests in progress); retry in {RETRY_AFTER_SECONDS} s",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            await response(scope, receive, send)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1
