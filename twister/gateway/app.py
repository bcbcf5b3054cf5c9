"""The FastAPI application: starts workflows and answers job status. It never downloads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

from fastapi import FastAPI
from temporalio.client import Client
from temporalio.service import RetryConfig

from twister import db
from twister.config import Settings
from twister.crypto import SecretBox
from twister.gateway import batches, events, jobs, metadata, metrics, ready, user
from twister.gateway.body_limit import BodyLimit
from twister.gateway.deps import Services
from twister.gateway.errors import install_error_handlers
from twister.gateway.listeners import StreamLimit
from twister.gateway.rate_limit import RateLimiter
from twister.gateway.shedding import LoadShedding
from twister.gateway.starts import reconcile_forever
from twister.gateway.status import read_live_state
from twister.gateway.watch import StatusWatcher
from twister.heap import freeze_startup_objects
from twister.net.infrastructure import infrastructure_endpoints
from twister.storage import PresignedUrls, s3_client


def create_app(settings: Settings) -> FastAPI:
    gateway_metrics = metrics.GatewayMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await db.create_pool(settings.database_url, settings.database_timeout)
        with contextlib.suppress(OSError):  # the database is down: requests answer 503 until it is back
            await db.migrate(pool)
        temporal = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            lazy=True,
            # a request waits for Temporal at most this long, then answers 503
            retry_config=RetryConfig(max_elapsed_time_millis=int(settings.temporal_rpc_timeout * 1000)),
        )
        s3 = s3_client(settings)
        services = Services(
            settings=settings,
            pool=pool,
            temporal=temporal,
            s3=s3,
            s3_probe=s3_client(settings, timeout=settings.ready_timeout, attempts=1),
            metrics=gateway_metrics,
            rate_limiter=RateLimiter(settings.rate_limit_per_minute),
            box=SecretBox.from_settings(settings),
            blocked_endpoints=await asyncio.to_thread(infrastructure_endpoints, settings),
            watcher=StatusWatcher(
                partial(read_live_state, temporal, rpc_timeout=timedelta(seconds=settings.temporal_rpc_timeout)),
                refresh_seconds=settings.status_refresh_seconds,
                max_jobs=settings.status_watch_max_jobs,
            ),
            event_streams=StreamLimit(settings.max_event_streams_per_key),
            presigned=PresignedUrls(s3, settings.presign_ttl_seconds),
        )
        app.state.services = services
        reconciler = asyncio.create_task(reconcile_forever(services))
        freeze_startup_objects()
        yield
        reconciler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconciler
        await pool.close()

    # redirect_slashes off: "/jobs/" is a 404 like any unknown path, not a redirect without a body
    app = FastAPI(title="twister", version="0.1.0", lifespan=lifespan, redirect_slashes=False)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(LoadShedding, max_concurrent=settings.max_concurrent_requests)
    app.add_middleware(metrics.RequestMetrics, metrics=gateway_metrics)  # outermost: counts 413s too

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(ready.router)
    app.include_router(metrics.router)
    for routes in (jobs.router, events.router, batches.router, metadata.router, user.router):
        app.include_router(routes)
    return app
