"""The FastAPI application: starts workflows and answers job status. It never downloads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from temporalio.client import Client
from temporalio.service import RetryConfig

from twister import db
from twister.config import Settings
from twister.gateway import jobs
from twister.gateway.deps import Services
from twister.gateway.errors import error_response, install_error_handlers
from twister.gateway.starts import reconcile_forever
from twister.storage import s3_client


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await db.create_pool(settings.database_url)
        with contextlib.suppress(OSError):  # the database is down: requests answer 503 until it is back
            await db.migrate(pool)
        temporal = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            lazy=True,
            # a request waits for Temporal at most this long, then answers 503
            retry_config=RetryConfig(max_elapsed_time_millis=int(settings.temporal_rpc_timeout * 1000)),
        )
        services = Services(settings=settings, pool=pool, temporal=temporal, s3=s3_client(settings))
        app.state.services = services
        reconciler = asyncio.create_task(reconcile_forever(services))
        yield
        reconciler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconciler
        await pool.close()

    app = FastAPI(title="twister", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_body_bytes:
            return error_response(413, f"Request body is larger than {settings.max_body_bytes} bytes")
        response: Response = await call_next(request)
        return response

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(jobs.router)
    return app
