"""SSRF guard: private and loopback targets are refused unless an allowed network names them."""

import ipaddress

import pytest

from twister.net.guard import UnsafeUrlError, check_url

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:9000/a.mpd",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_targets_refused_by_default(url: str) -> None:
    with pytest.raises(UnsafeUrlError, match="TWISTER_ALLOWED_NETWORKS"):
        check_url(url, [])


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a", "file:///etc/passwd", "http:///nohost", "notaurl", "http://u:p@example.com/"]
)
def test_malformed_urls_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        check_url(url, [])


def test_allowed_network_admits_loopback_only() -> None:
    check_url("http://127.0.0.1:9/x", LOOPBACK)
    with pytest.raises(UnsafeUrlError):
        check_url("http://10.0.0.1/x", LOOPBACK)
