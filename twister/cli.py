"""The ``twister`` command: run the embedded stack, a worker, the gateway; manage API keys.

Every setting comes from a ``TWISTER_*`` environment variable; ``twister settings`` lists them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import typer

from twister.config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys (only their hashes are stored).")
app.add_typer(keys_app, name="keys")


def _settings() -> Settings:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return Settings()


def _exit(code: int) -> None:
    """Leaves without interpreter finalization: the Temporal client's Rust threads can abort it
    (temporalio/sdk-python#300) after all work is done."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    try:
        asyncio.run(runner())
    except Exception as exc:
        logging.getLogger("twister").error("%s", exc)
        _exit(1)
    _exit(0)


@app.command()
def worker() -> None:
    """Run a worker: job workflows plus this host's Download, Mux and Upload steps."""
    from twister.worker import run_worker

    settings = _settings()
    _run_until_signal(lambda stop: run_worker(settings, stop))


@app.command()
def gateway() -> None:
    """Run the HTTP API (TWISTER_API_HOST:TWISTER_API_PORT)."""
    import uvicorn

    from twister.gateway.app import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info")
    _exit(0)


@keys_app.command("create")
def keys_create(name: str = typer.Option(..., "--name", help="Who the key is for.")) -> None:
    """Create an API key and print it once."""
    from twister.keys import new_api_key

    settings = _settings()
    key = new_api_key()

    async def create() -> None:
        from twister import db

        pool = await db.create_pool(settings.database_url)
        try:
            await db.ensure_schema(pool)
            await db.create_api_key(pool, name, key)
        finally:
            await pool.close()

    asyncio.run(create())
    typer.echo(key)
    _exit(0)


@app.command("settings")
def show_settings() -> None:
    """List every TWISTER_* setting with its current value (secrets masked)."""
    settings = Settings()
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if "secret" in name or ("key" in name and "access" not in name):
            value = "***"
        typer.echo(f"TWISTER_{name.upper()}={value}    # {field.description or ''}".rstrip(" #"))


def main() -> None:
    app()
