"""Dashboard addresses in, URLs out."""

from __future__ import annotations

import pytest

from trident._dashboard_url import dashboard_url
from trident.dashboard.server import parse_dashboard_address


@pytest.mark.parametrize(
    ("dashboard", "scheduler", "token", "url"),
    [
        ("127.0.0.1:8787", "tcp://127.0.0.1:4000", None, "http://127.0.0.1:8787/status"),
        ("127.0.0.1:8787", "inproc://s-1", "a b", "http://127.0.0.1:8787/status?token=a+b"),
        ("0.0.0.0:8787", "tcp://10.1.2.3:4000", None, "http://10.1.2.3:8787/status"),
        ("0.0.0.0:9000", "inproc://s-1", None, "http://127.0.0.1:9000/status"),
        ("0.0.0.0:9000", "tcp://0.0.0.0:4000", None, "http://127.0.0.1:9000/status"),
    ],
)
def test_dashboard_url(dashboard, scheduler, token, url):
    assert dashboard_url(dashboard, scheduler, token) == url


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (8787, ("127.0.0.1", 8787)),
        (":9000", ("127.0.0.1", 9000)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:8787", ("localhost", 8787)),
        ("[::1]:8787", ("::1", 8787)),
        ("8787", ("127.0.0.1", 8787)),
    ],
)
def test_parse_dashboard_address(address, expected):
    assert parse_dashboard_address(address) == expected


@pytest.mark.parametrize("address", ["host:port", "host:70000", ""])
def test_invalid_dashboard_addresses(address):
    with pytest.raises(ValueError, match="dashboard"):
        parse_dashboard_address(address)
