"""The ``twister`` command: run the embedded stack, a worker, the gateway; manage API keys; see,
cancel and replay jobs; set up a Temporal namespace; download a video through the API.

Every setting comes from a TWISTER_* environment variable (listed below); `twister settings`
shows their current values.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer

from twister.cli_common import exit_now, load_settings
from twister.config import UP_WORKER_METRICS_ADDRESS, Settings, settings_help
from twister.crypto import SecretBox
from twister.operate.jobs_cli import jobs_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, epilog="Settings:\n\n" + settings_help())
keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys (only their hashes are stored).")
app.add_typer(keys_app, name="keys")
app.add_typer(jobs_app, name="jobs")
temporal_app = typer.Typer(no_args_is_help=True, help="The Temporal namespace twister runs in.")
app.add_typer(temporal_app, name="temporal")


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
        exit_now(1)
    exit_now(0)


@app.command()
def up(ui: bool = typer.Option(True, help="Serve the Temporal Web UI.")) -> None:
    """Run everything on this machine: Temporal (+ UI), Postgres, S3, a worker and the gateway.

    Data stays under TWISTER_DATA_DIR across restarts, readable by this user only. A child that crashes
    is restarted (with backoff) until it crashes too often; Ctrl-C stops every child.
    """
    from twister.embedded.children import twister_process, wait_gateway_ready, wait_worker_ready
    from twister.embedded.postgres import with_app_password
    from twister.embedded.process import ManagedProcess, ensure_port_free
    from twister.embedded.stack import EmbeddedStack
    from twister.embedded.supervisor import GaveUp

    settings = with_app_password(load_settings(), create=True)
    metrics_address = settings.worker_metrics_address or UP_WORKER_METRICS_ADDRESS
    settings = settings.model_copy(update={"worker_metrics_address": metrics_address})
    ensure_port_free(int(metrics_address.rsplit(":", 1)[1]), "The worker's metrics", "TWISTER_WORKER_METRICS_ADDRESS")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def wait_gateway(proc: ManagedProcess) -> None:
        wait_gateway_ready(proc, settings.api_url)

    typer.echo(f"Starting the embedded stack in {settings.data_dir} ...")
    code = 0
    with EmbeddedStack(settings, ui=ui) as stack:
        key = asyncio.run(_dev_key(settings))
        worker = stack.keep(lambda: twister_process(settings, "worker", "worker").start(), wait_worker_ready)
        gateway = stack.keep(lambda: twister_process(settings, "gateway", "gateway").start(), wait_gateway)
        wait_worker_ready(worker)
        wait_gateway(gateway)
        typer.echo(_banner(settings, key, ui))
        try:
            stack.supervise(stop)
        except GaveUp as exc:
            typer.echo(str(exc), err=True)
            code = 1
        typer.echo("Stopping ...")
    exit_now(code)


async def _dev_key(settings: Settings) -> str:
    from twister import db

    pool = await db.create_pool(settings.database_url, settings.database_timeout)
    try:
        await db.migrate(pool)
        return await db.dev_api_key(pool, SecretBox.from_settings(settings), settings.data_dir / "dev-api-key")
    finally:
        await pool.close()


def _banner(settings: Settings, key: str, ui: bool) -> str:
    lines = [
        "",
        "twister is running.",
        f"  API          {settings.api_url}",
        f"  Temporal UI  http://127.0.0.1:{settings.temporal_ui_port}" if ui else "  Temporal UI  off (--no-ui)",
        f"  API key      {key}   (dev key, kept in {settings.data_dir / 'dev-api-key'})",
        f"  metrics      {settings.api_url}/metrics (gateway)",
        f"               http://{settings.worker_metrics_address}/metrics (worker)",
        f"  logs         {settings.data_dir / 'logs'}",
        "",
        "Submit a job:",
        f"  curl -X POST {settings.api_url}/jobs -H 'x-api-key: {key}' -H 'content-type: application/json' \\",
        '       -d \'{"url": "https://example.com/video.mp4"}\'',
        f"  curl {settings.api_url}/jobs/<job_id> -H 'x-api-key: {key}'",
        "",
        'Failed jobs: search JobStatus="Failed" in the Temporal UI; replay them all with',
        "  twister jobs replay --status failed --since 1h",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


@app.command()
def worker() -> None:
    """Run a worker: job workflows plus this host's Download, Mux and Upload steps."""
    from twister.worker.main import run_worker

    settings = load_settings()
    _run_until_signal(lambda stop: run_worker(settings, stop))


@app.command()
def gateway() -> None:
    """Run the HTTP API (TWISTER_API_HOST:TWISTER_API_PORT)."""
    import uvicorn

    from twister.gateway.app import create_app

    settings = load_settings()
    api = create_app(settings)
    # log_config None: uvicorn's lines go through twister's logging, in its format. No access log:
    # a line per request was ~0.08 ms of CPU (~12 % of a GET); the metrics count requests instead.
    uvicorn.run(
        api, host=settings.api_host, port=settings.api_port, log_level="info", log_config=None, access_log=False
    )
    exit_now(0)


RESOLUTION_CAPS = (2160, 1440, 1080, 720, 480, 360)

MaxResolution = Annotated[
    int | None,
    typer.Option("--max-resolution", help=f"Cap on the shorter side of the picture: one of {RESOLUTION_CAPS}."),
]
MaxDuration = Annotated[int | None, typer.Option("--max-duration", help="Longest source (seconds).")]
MaxFilesize = Annotated[int | None, typer.Option("--max-filesize", help="Largest source (bytes).")]
StorageLimit = Annotated[
    float | None,
    typer.Option("--storage-limit-gb", help="Storage the key's files may use (GiB)."),
]
MaxConcurrent = Annotated[
    int | None,
    typer.Option("--max-concurrent-jobs", help="Unfinished jobs the key may have at once."),
]


def _caps(
    max_resolution: int | None,
    max_duration: int | None,
    max_filesize: int | None,
    storage_limit_gb: float | None,
    max_concurrent_jobs: int | None,
) -> dict[str, int | float | None]:
    """The caps given on the command line, by KeyLimits field; 0 means "remove this cap"."""
    given = {
        "max_resolution": max_resolution,
        "max_duration_seconds": max_duration,
        "max_filesize_bytes": max_filesize,
        "storage_limit_gb": storage_limit_gb,
        "max_concurrent_jobs": max_concurrent_jobs,
    }
    if max_resolution and max_resolution not in RESOLUTION_CAPS:
        raise typer.BadParameter(f"must be one of {RESOLUTION_CAPS}", param_hint="--max-resolution")
    if any(value is not None and value < 0 for value in given.values()):
        raise typer.BadParameter("caps are positive numbers (0 removes a cap)")
    return {name: (value or None) for name, value in given.items() if value is not None}


def _with_pool(work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Runs ``work(pool)`` against the migrated database."""
    settings = load_settings()

    async def run() -> Any:
        from twister import db

        pool = await db.create_pool(settings.database_url, settings.database_timeout)
        try:
            await db.migrate(pool)
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", help="Who the key is for."),
    max_resolution: MaxResolution = None,
    max_duration: MaxDuration = None,
    max_filesize: MaxFilesize = None,
    storage_limit_gb: StorageLimit = None,
    max_concurrent_jobs: MaxConcurrent = None,
) -> None:
    """Create an API key, with optional caps, and print it once."""
    from twister import db
    from twister.keys import new_api_key
    from twister.models import KeyLimits

    caps = _caps(max_resolution, max_duration, max_filesize, storage_limit_gb, max_concurrent_jobs)
    key = new_api_key()
    box = SecretBox.from_settings(load_settings())
    _with_pool(lambda pool: db.create_api_key(pool, box, name, key, KeyLimits(**caps)))  # type: ignore[arg-type]
    typer.echo(key)
    exit_now(0)


@keys_app.command("list")
def keys_list() -> None:
    """List the keys: id, name, state and caps (never the key itself)."""
    from twister import db

    for key in _with_pool(db.list_api_keys):
        state = "revoked" if key.pop("revoked_at") else "active"
        caps = " ".join(f"{name}={value}" for name, value in key.items() if value is not None)
        typer.echo(f"{state:8} {caps}")
    exit_now(0)


@keys_app.command("revoke")
def keys_revoke(key_id: int = typer.Argument(..., help="The key's id (twister keys list).")) -> None:
    """Revoke a key: it gets 401 from then on; its jobs and files stay."""
    from twister import db

    if not _with_pool(lambda pool: db.revoke_api_key(pool, key_id)):
        typer.echo(f"No active key has id {key_id}", err=True)
        exit_now(1)
    typer.echo(f"Key {key_id} revoked")
    exit_now(0)


@keys_app.command("set")
def keys_set(
    key_id: int = typer.Argument(..., help="The key's id (twister keys list)."),
    max_resolution: MaxResolution = None,
    max_duration: MaxDuration = None,
    max_filesize: MaxFilesize = None,
    storage_limit_gb: StorageLimit = None,
    max_concurrent_jobs: MaxConcurrent = None,
) -> None:
    """Change a key's caps (0 removes one); jobs already accepted keep the limits they started with."""
    from twister import db

    caps = _caps(max_resolution, max_duration, max_filesize, storage_limit_gb, max_concurrent_jobs)
    if not caps:
        typer.echo("Nothing to set: give at least one cap option", err=True)
        exit_now(2)
    if not _with_pool(lambda pool: db.set_key_limits(pool, key_id, caps)):
        typer.echo(f"No key has id {key_id}", err=True)
        exit_now(1)
    typer.echo(f"Key {key_id}: " + " ".join(f"{name}={value}" for name, value in caps.items()))
    exit_now(0)


@app.command("secret-key")
def secret_key(
    reseal: bool = typer.Option(
        False, "--reseal", help="Seal every stored secret with the current key (after a key rotation)."
    ),
) -> None:
    """Print a new random server key for TWISTER_SECRET_KEY, or with --reseal move every stored secret to it."""
    if not reseal:
        from twister.crypto import new_secret_key

        typer.echo(new_secret_key())
        return
    from twister import db

    box = SecretBox.from_settings(load_settings())
    count = _with_pool(lambda pool: db.reseal_secrets(pool, box))
    typer.echo(f"{count} secrets sealed with the current server key; TWISTER_PREVIOUS_SECRET_KEYS may now be emptied")
    exit_now(0)


@temporal_app.command("setup")
def temporal_setup() -> None:
    """Register the search attributes job workflows set (JobStatus, JobStep, SourceHost, ApiKeyId) in
    TWISTER_TEMPORAL_NAMESPACE. Once per production cluster, before the first worker; safe to repeat.
    `twister up` needs none of this."""
    from temporalio.client import Client

    from twister.temporal_setup import SetupNeeded, register_search_attributes

    settings = load_settings()

    async def setup() -> list[str]:
        client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
        return await register_search_attributes(client, settings.temporal_namespace)

    try:
        added = asyncio.run(setup())
    except SetupNeeded as exc:
        typer.echo(str(exc), err=True)
        exit_now(1)
    namespace = settings.temporal_namespace
    typer.echo(f"Registered in {namespace}: {', '.join(added)}" if added else f"{namespace} is set up already")
    exit_now(0)


@app.command("download")
def download(
    url: Annotated[str, typer.Argument(help="The video's URL.")],
    key: Annotated[
        str | None,
        typer.Option("--key", envvar="TWISTER_API_KEY", help="An API key (default: the dev key of `twister up`)."),
    ] = None,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="The gateway (default: TWISTER_API_HOST/_PORT).")
    ] = None,
    output_format: Annotated[
        str | None, typer.Option("--format", help="mp4, mkv, webm, mov, m4a, mp3, ogg, opus.")
    ] = None,
    max_resolution: Annotated[str | None, typer.Option("--max-resolution", help="best, 2160 ... 360.")] = None,
    audio_only: Annotated[bool, typer.Option("--audio-only", help="The audio stream only.")] = False,
) -> None:
    """Download a video through the gateway's API, as a client would: a progress bar per step, then
    the file's presigned URL."""
    from twister.operate.download import download as follow_download

    settings = Settings()
    dev_key = settings.data_dir / "dev-api-key"
    key = key or (dev_key.read_text().strip() if dev_key.exists() else None)
    if not key:
        raise typer.BadParameter("no API key: give --key or set TWISTER_API_KEY", param_hint="--key")
    body: dict[str, Any] = {"url": url, "format": output_format, "max_resolution": max_resolution}
    body = {name: value for name, value in body.items() if value is not None} | (
        {"audio_only": True} if audio_only else {}
    )
    exit_now(follow_download(api_url or settings.api_url, key, body))


@app.command("settings")
def showload_settings() -> None:
    """List every TWISTER_* setting with its current value (secrets masked)."""
    settings = Settings()
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if name in ("s3_secret_key", "secret_key") and value:
            value = "***"
        elif name == "database_url":
            value = _without_password(value)
        typer.echo(f"TWISTER_{name.upper()}={value}    # {field.description or ''}".rstrip(" #"))


def _without_password(dsn: str) -> str:
    parts = urlsplit(dsn)
    if not parts.password:
        return dsn
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def main() -> None:
    app()
