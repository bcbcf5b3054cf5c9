"""Refuses URLs that would make twister reach into private networks (SSRF).

Source and webhook URLs are checked when a job is created and again right before twister
connects, because a DNS name can point elsewhere by then.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeUrlError(ValueError):
    """The URL is malformed or points at an address twister may not reach."""


def parse_http_url(url: str, field: str) -> tuple[str, int]:
    """Returns (host, port) of an absolute http(s) URL, or raises UnsafeUrlError naming ``field``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrlError(f"{field} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrlError(f"{field} must be an http or https URL")
    if not parts.hostname:
        raise UnsafeUrlError(f"{field} has no host")
    if parts.username or parts.password:
        raise UnsafeUrlError(f"{field} must not contain credentials")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_addresses(host: str, addresses: Sequence[str], allowed_networks: Sequence[IPNetwork], field: str) -> None:
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if is_public(address) or any(address in network for network in allowed_networks):
            continue
        raise UnsafeUrlError(
            f"{field} points at {host} ({address}), a private or loopback address; "
            "ask the operator to list its network in TWISTER_ALLOWED_NETWORKS if this is intended"
        )


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrlError(f"host {host!r} could not be resolved ({exc})") from None
    return sorted({str(info[4][0]) for info in infos})


def checked_addresses(host: str, port: int, allowed_networks: Sequence[IPNetwork], field: str) -> list[str]:
    """Blocking: the addresses ``host`` resolves to, once every one of them may be reached."""
    addresses = resolve(host, port)
    check_addresses(host, addresses, allowed_networks, field)
    return addresses


def check_url(url: str, allowed_networks: Sequence[IPNetwork], field: str = "url") -> None:
    """Blocking check: the URL is http(s) and every address its host resolves to may be reached."""
    host, port = parse_http_url(url, field)
    checked_addresses(host, port, allowed_networks, field)
