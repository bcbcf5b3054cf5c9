"""Refuses URLs that would make twister reach into private networks or its own services (SSRF).

Source and webhook URLs are checked when a job is created and again right before twister
connects, because a DNS name can point elsewhere by then. The checks apply to the resolved
addresses, so every spelling of a host (decimal, octal, short IPv4, IPv6 embeddings) is judged
by where it leads.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection, Sequence
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Endpoint = tuple[Address, int]
"""A listening socket of twister's own infrastructure: (address, port)."""

_NON_PUBLIC_IPV4 = tuple(
    ipaddress.IPv4Network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes 255.255.255.255
    )
)

_NON_PUBLIC_IPV6 = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        # Teredo is refused outright: its packets go through a relay and the client's NAT, so no
        # single embedded IPv4 address says where they land, and no real server is reached that way.
        "2001::/32",
        # Local-use NAT64 places the IPv4 address where the local translator's prefix length says
        # (RFC 6052 allows /32 to /96), so it cannot be read off the address; it is not global anyway.
        "64:ff9b:1::/48",
        "fc00::/7",  # unique-local
        "fec0::/10",  # site-local (deprecated)
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
    )
)

# Prefixes whose addresses lead to the IPv4 address in their last 32 bits.
_IPV4_IN_LAST_32_BITS = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (RFC 2765)
        "::/96",  # IPv4-compatible (deprecated); holds :: and ::1, read as 0.0.0.0 and 0.0.0.1
        "64:ff9b::/96",  # NAT64 well-known prefix
    )
)
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # the IPv4 address is bits 16 to 48


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


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, -translated, -compatible, NAT64 or 6to4 address leads to."""
    if any(address in network for network in _IPV4_IN_LAST_32_BITS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    return None


def _spellings(address: Address) -> list[Address]:
    """``address`` and, for an IPv6 address that embeds one, the IPv4 address it leads to."""
    embedded = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    return [address] if embedded is None else [address, embedded]


def is_public(address: Address) -> bool:
    """Whether ``address`` is globally routable unicast; an IPv6 embedding is judged by its IPv4 address."""
    if isinstance(address, ipaddress.IPv4Address):
        return address.is_global and not any(address in network for network in _NON_PUBLIC_IPV4)
    if any(address in network for network in _NON_PUBLIC_IPV6):
        return False
    embedded = _embedded_ipv4(address)
    return address.is_global if embedded is None else is_public(embedded)


def _is_allowed(address: Address, allowed_networks: Sequence[IPNetwork]) -> bool:
    """Whether an allowed network holds ``address`` or the IPv4 address it embeds.

    So allowing 127.0.0.0/8 also admits ::ffff:127.0.0.1, 64:ff9b::7f00:1 and the other spellings
    of those addresses.
    """
    return any(spelling in network for spelling in _spellings(address) for network in allowed_networks)


def _is_this_host(address: Address) -> bool:
    """Whether connecting to ``address`` stays on this host (loopback or unspecified, in any spelling)."""
    return any(spelling.is_loopback or spelling.is_unspecified for spelling in _spellings(address))


def _reaches_endpoint(address: Address, port: int, endpoint: Endpoint) -> bool:
    """Whether connecting to ``address``:``port`` reaches ``endpoint``.

    An endpoint on a loopback or unspecified address is reached through every local address of its port.
    """
    listener, listener_port = endpoint
    if port != listener_port:
        return False
    if _is_this_host(listener):
        return _is_this_host(address)
    return not set(_spellings(listener)).isdisjoint(_spellings(address))


def check_addresses(
    host: str,
    port: int,
    addresses: Sequence[str],
    allowed_networks: Sequence[IPNetwork],
    field: str,
    *,
    blocked_endpoints: Collection[Endpoint] = (),
) -> None:
    """Raises UnsafeUrlError unless twister may connect to every one of ``addresses`` on ``port``.

    ``blocked_endpoints`` (twister's own services) are refused whatever ``allowed_networks`` says.
    """
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if any(_reaches_endpoint(address, port, endpoint) for endpoint in blocked_endpoints):
            raise UnsafeUrlError(
                f"{field} points at {host} ({address} port {port}), one of twister's own services; "
                "it is never a permitted target"
            )
        if not (is_public(address) or _is_allowed(address, allowed_networks)):
            raise UnsafeUrlError(
                f"{field} points at {host} ({address}), a private, loopback or otherwise non-public address; "
                "ask the operator to list its network in TWISTER_ALLOWED_NETWORKS if this is intended"
            )


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrlError(f"host {host!r} could not be resolved ({exc})") from None
    return sorted({str(info[4][0]) for info in infos})


def checked_addresses(
    host: str,
    port: int,
    allowed_networks: Sequence[IPNetwork],
    field: str,
    *,
    blocked_endpoints: Collection[Endpoint] = (),
) -> list[str]:
    """Blocking: the addresses ``host`` resolves to, once every one of them may be reached."""
    addresses = resolve(host, port)
    check_addresses(host, port, addresses, allowed_networks, field, blocked_endpoints=blocked_endpoints)
    return addresses


def check_url(
    url: str,
    allowed_networks: Sequence[IPNetwork],
    field: str = "url",
    *,
    blocked_endpoints: Collection[Endpoint] = (),
) -> None:
    """Blocking check: the URL is http(s) and every address its host resolves to may be reached."""
    host, port = parse_http_url(url, field)
    checked_addresses(host, port, allowed_networks, field, blocked_endpoints=blocked_endpoints)
