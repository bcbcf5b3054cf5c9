"""S3 from SeaweedFS (``weed mini``: master, volume, filer and S3 gateway in one process).

Only the S3 port, with the settings' credentials, gives access to the data over HTTP: the master's and
the filer's HTTP APIs are off (``-disableHttp``), the volume server's wants a JWT signed with a key of
this run. Their gRPC ports (127.0.0.1 only) stay unauthenticated.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from twister.config import Settings
from twister.embedded.process import (
    ManagedProcess,
    ensure_port_free,
    find_binary,
    free_port,
    port_is_free,
    private_dir,
    stop_leftover,
)
from twister.storage import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

READY_PROBE_KEY = ".twister-ready-probe"

# Ports `weed mini` opens besides S3; each defaults to a fixed number, so two stacks would collide.
INTERNAL_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def _ports_path(settings: Settings) -> Path:
    return settings.data_dir / "run" / "s3-ports.json"


def _saved_ports(settings: Settings) -> dict[str, int]:
    try:
        saved = json.loads(_ports_path(settings).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict) or set(saved) != set(INTERNAL_PORTS):
        return {}
    return {flag: port for flag, port in saved.items() if isinstance(port, int)}


def _internal_ports(settings: Settings) -> dict[str, int]:
    """The internal ports of the last run if all are still free, else new free ones (saved for next time).

    Stable ports matter: the master keeps its state in ``<dir>/m<master port>``.
    """
    saved = _saved_ports(settings)
    if len(saved) == len(INTERNAL_PORTS) and all(
        port != settings.s3_port and port_is_free(port) for port in saved.values()
    ):
        return saved
    ports: dict[str, int] = {}
    while len(ports) < len(INTERNAL_PORTS):
        port = free_port()
        if port != settings.s3_port and port not in ports.values():
            ports[INTERNAL_PORTS[len(ports)]] = port
    path = _ports_path(settings)
    private_dir(path.parent)
    path.write_text(json.dumps(ports, indent=2))
    return ports


def _write_private(path: Path, text: str) -> Path:
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    return path


def _write_identities(settings: Settings) -> Path:
    identity = {
        "name": settings.s3_access_key,
        "credentials": [{"accessKey": settings.s3_access_key, "secretKey": settings.s3_secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path = settings.data_dir / "run" / "s3-identities.json"
    return _write_private(path, json.dumps({"identities": [identity]}, indent=2))


def _write_security_config(settings: Settings) -> Path:
    """A config dir whose security.toml has new random JWT keys: the volume server then reads and writes
    only with a token signed by this run's master or filer (the S3 gateway in the same process gets them).
    The filer keys do the same for the filer's HTTP API (off anyway) and guard its IAM gRPC service."""
    sections = ["jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read"]
    toml = "".join(f'[{section}]\nkey = "{secrets.token_hex(32)}"\n\n' for section in sections)
    directory = settings.data_dir / "run" / "s3-config"
    _write_private(directory / "security.toml", toml)
    return directory


def _remove_sockets(ports: list[int]) -> None:
    """weed leaves unix sockets named after its ports in the temp dir (seaweedfs-<service>-<port>.sock).

    Only those of ports nobody listens on: another stack may use a port this one used before.
    """
    for port in ports:
        if not port_is_free(port):
            continue
        for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
            if sock.is_socket():
                sock.unlink(missing_ok=True)


def launch_s3(settings: Settings) -> ManagedProcess:
    """Spawn ``weed mini`` without waiting for it (see ``wait_s3``)."""
    directory = settings.data_dir / "s3"
    stop_leftover("s3", settings.data_dir)
    ensure_port_free(settings.s3_port, "S3 (SeaweedFS)", "TWISTER_S3_ENDPOINT_URL")
    _remove_sockets([settings.s3_port, *_saved_ports(settings).values()])  # of a killed previous run
    ports = _internal_ports(settings)
    private_dir(directory)
    # `mini` merges this file of remembered flags into the command line: a flag we stopped passing
    # (or an old port) would come back from it. Every flag that matters is passed each time instead.
    (directory / "mini.options").unlink(missing_ok=True)
    argv = [
        find_binary("weed"),
        "-logtostderr",  # else glog writes weed.* files into /tmp
        f"-config_dir={_write_security_config(settings)}",
        "mini",
        "-disableHttp",  # of the master and the filer: S3 reaches them through gRPC
        f"-dir={directory}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={settings.s3_port}",
        f"-s3.config={_write_identities(settings)}",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # A master resuming its raft state may not be leader yet when the volume server first calls in;
        # the next heartbeat then comes 5 s later. Fresh, it leads at once and rebuilds the topology from
        # that heartbeat (volume ids keep counting up from the volumes found).
        "-master.resumeState=false",
        "-volume.preStopSeconds=0",  # a grace period for other nodes to notice; there are none
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    sockets = [settings.s3_port, *ports.values()]
    return ManagedProcess("s3", argv, data_dir=settings.data_dir, after_stop=[lambda: _remove_sockets(sockets)]).start()


def _ensure_bucket(client: S3Client, settings: Settings) -> None:
    try:
        client.head_bucket(Bucket=settings.s3_bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    if settings.s3_region == "us-east-1":
        client.create_bucket(Bucket=settings.s3_bucket)
    else:
        client.create_bucket(
            Bucket=settings.s3_bucket,
            CreateBucketConfiguration={"LocationConstraint": settings.s3_region},  # type: ignore[typeddict-item]
        )


def wait_s3(settings: Settings, proc: ManagedProcess, timeout: float) -> None:
    """Wait until an object can be written with the settings' credentials, creating the bucket if missing."""
    probe = s3_client(settings, timeout=2.0, attempts=1)

    def ready() -> bool:
        # S3 answers before the volume server has registered with the master (its first heartbeat can
        # hit "not current leader" after a restart): until then every GET of existing data fails. A write
        # needs a registered volume server too (a non-empty body goes to a volume).
        _ensure_bucket(probe, settings)
        probe.put_object(Bucket=settings.s3_bucket, Key=READY_PROBE_KEY, Body=b"ready")
        probe.delete_object(Bucket=settings.s3_bucket, Key=READY_PROBE_KEY)
        return True

    proc.wait_ready(
        ready,
        timeout,
        hint=f"S3 should answer on {settings.s3_endpoint_url} (TWISTER_S3_ENDPOINT_URL) "
        f"with the access key {settings.s3_access_key!r}; its data dir is {settings.data_dir / 's3'}.",
    )


def internal_ports(settings: Settings) -> list[int]:
    """The internal ports of the embedded S3 server run with these settings; none when it never ran here."""
    return list(_saved_ports(settings).values())
