"""SSRF guard: non-public targets are refused unless an allowed network names them, and twister's
own services are refused always, whatever spelling of the address a URL uses."""

import ipaddress
import socket

import pytest

from twister.net.egress import EgressProxy
from twister.net.guard import Endpoint, UnsafeUrlError, check_url

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
NOT_PUBLIC = "TWISTER_ALLOWED_NETWORKS"
OWN_SERVICE = "one of twister's own services"


@pytest.mark.parametrize(
    "url",
    [
        # loopback and "this host", in the spellings getaddrinfo accepts
        "http://127.0.0.1/x",
        "http://localhost:9000/a.mpd",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://0x7f000001/",
        "http://017700000001/",
        "http://127.255.255.254/",
        "http://0/",
        "http://0.0.0.0/",
        # IPv4 special ranges
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data",
        "http://0xa9fea9fe/",
        "http://100.64.0.1/",
        "http://100.127.255.254/",
        "http://192.0.0.8/",
        "http://192.0.0.9/",
        "http://192.0.2.1/",
        "http://192.88.99.1/",
        "http://198.18.0.1/",
        "http://198.19.255.255/",
        "http://198.51.100.7/",
        "http://203.0.113.9/",
        "http://224.0.0.1/",
        "http://239.255.255.250/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        # IPv6 loopback and unspecified
        "http://[::1]/",
        "http://[::]/",
        # IPv4-mapped and IPv4-translated
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[0:0:0:0:0:ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:100.64.0.1]/",
        "http://[::ffff:0.0.0.0]/",
        "http://[::ffff:255.255.255.255]/",
        "http://[::ffff:0:127.0.0.1]/",
        # IPv4-compatible
        "http://[::127.0.0.1]/",
        "http://[::a9fe:a9fe]/",
        # NAT64, well-known and local-use (the latter refused whatever it embeds)
        "http://[64:ff9b::7f00:1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[64:ff9b::10.0.0.1]/",
        "http://[64:ff9b::e000:1]/",
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "http://[64:ff9b:1::808:808]/",
        # 6to4
        "http://[2002:7f00:1::]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[2002:c0a8:1::]/",
        # Teredo, refused whatever it embeds
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        "http://[2001:0:808:808::f7f7:f7f7]/",
        "http://[2001::]/",
        # unique-local, site-local, link-local, multicast, discard, documentation
        "http://[fd00::1]/",
        "http://[fc00::1]/",
        "http://[fec0::1]/",
        "http://[fe80::1]/",
        "http://[fe80::1%lo]/",
        "http://[ff02::1]/",
        "http://[ff0e::1]/",
        "http://[100::1]/",
        "http://[2001:db8::1]/",
    ],
)
def test_non_public_targets_refused_by_default(url: str) -> None:
    with pytest.raises(UnsafeUrlError, match=NOT_PUBLIC):
        check_url(url, [])


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/",
        "https://1.1.1.1/a.mpd",
        "http://134744072/",
        "http://[2606:4700:4700::1111]/",
        "http://[2001:4860:4860::8888]/",
        "http://[::ffff:8.8.8.8]/",
        "http://[::8.8.8.8]/",
        "http://[64:ff9b::808:808]/",
        "http://[2002:808:808::]/",
    ],
)
def test_public_targets_allowed(url: str) -> None:
    check_url(url, [])


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a",
        "file:///etc/passwd",
        "http:///nohost",
        "notaurl",
        "http://u:p@example.com/",
        "http://[fe80::1%25nosuchif]/",
    ],
)
def test_malformed_urls_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        check_url(url, [])


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/x", "http://2130706433/", "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::7f00:1]/"]
)
def test_allowed_network_admits_every_spelling_of_its_addresses(url: str) -> None:
    check_url(url, LOOPBACK)


def test_allowed_network_admits_only_itself() -> None:
    with pytest.raises(UnsafeUrlError, match=NOT_PUBLIC):
        check_url("http://10.0.0.1/x", LOOPBACK)
    check_url("http://[fd00::1]/", [ipaddress.ip_network("fd00::/8")])


LOCAL_TEMPORAL: list[Endpoint] = [(ipaddress.ip_address("127.0.0.1"), 7233)]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:7233/",
        "http://127.0.0.2:7233/",
        "http://2130706433:7233/",
        "http://localhost:7233/",
        "http://0.0.0.0:7233/",
        "http://[::1]:7233/",
        "http://[::ffff:127.0.0.1]:7233/",
        "http://[64:ff9b::7f00:1]:7233/",
    ],
)
def test_own_services_refused_even_when_allowed(url: str) -> None:
    with pytest.raises(UnsafeUrlError, match=OWN_SERVICE):
        check_url(url, LOOPBACK, blocked_endpoints=LOCAL_TEMPORAL)


def test_other_ports_of_a_blocked_host_stay_allowed() -> None:
    check_url("http://127.0.0.1:7234/", LOOPBACK, blocked_endpoints=LOCAL_TEMPORAL)


def test_endpoint_on_an_unspecified_address_is_reached_through_loopback() -> None:
    blocked: list[Endpoint] = [(ipaddress.ip_address("::"), 8000)]
    with pytest.raises(UnsafeUrlError, match=OWN_SERVICE):
        check_url("http://127.0.0.1:8000/", LOOPBACK, blocked_endpoints=blocked)


def test_endpoint_on_a_network_address_is_matched_by_address() -> None:
    blocked: list[Endpoint] = [(ipaddress.ip_address("10.0.0.5"), 5432)]
    private = [ipaddress.ip_network("10.0.0.0/8")]
    for url in ("http://10.0.0.5:5432/", "http://[::ffff:10.0.0.5]:5432/"):
        with pytest.raises(UnsafeUrlError, match=OWN_SERVICE):
            check_url(url, private, blocked_endpoints=blocked)
    check_url("http://10.0.0.6:5432/", private, blocked_endpoints=blocked)
    check_url("http://10.0.0.5:80/", private, blocked_endpoints=blocked)


def test_egress_proxy_refuses_own_services() -> None:
    with EgressProxy(LOOPBACK, LOCAL_TEMPORAL) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as client:
            client.sendall(b"CONNECT 127.0.0.1:7233 HTTP/1.1\r\n\r\n")
            reply = client.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 403") and OWN_SERVICE in reply
