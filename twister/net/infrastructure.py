"""twister's own services, which no source or webhook URL may reach whatever
``TWISTER_ALLOWED_NETWORKS`` says: Temporal (and its UI), Postgres, S3 and the gateway."""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from twister.config import Settings
from twister.embedded.s3 import internal_ports
from twister.net.guard import Endpoint

log = logging.getLogger(__name__)

LOOPBACK = ipaddress.ip_address("127.0.0.1")


def _listeners(settings: Settings) -> list[tuple[str, int]]:
    temporal_host = settings.temporal_address.rsplit(":", 1)[0].strip("[]")
    s3 = urlsplit(settings.s3_endpoint_url)
    database = urlsplit(settings.database_url)
    return [
        (temporal_host, settings.temporal_port),
        (temporal_host, settings.temporal_ui_port),
        (database.hostname or "127.0.0.1", settings.database_port),
        (s3.hostname or "127.0.0.1", settings.s3_port),
        (settings.api_host, settings.api_port),
    ]


def infrastructure_endpoints(settings: Settings) -> frozenset[Endpoint]:
    """Blocking (resolves names): every address and port of the services in ``settings``, and the
    internal ports of the embedded S3 server when it runs on this host."""
    endpoints: set[Endpoint] = {(LOOPBACK, port) for port in internal_ports(settings)}
    for host, port in _listeners(settings):
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            log.warning("could not resolve %s to refuse it as a download target: %s", host, exc)
            continue
        endpoints |= {(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]), port) for info in infos}
    return frozenset(endpoints)
