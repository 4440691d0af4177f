"""`dashboard_url`: the dashboard's URL as a client or a command line prints it."""

from __future__ import annotations

import urllib.parse

_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def dashboard_url(dashboard: str, scheduler_address: str, token: str | None) -> str:
    """The dashboard's URL as a client of `scheduler_address` reaches it.

    A dashboard listening on every interface is reached on the scheduler's host (or
    loopback for an in-process scheduler). The token, if any, is added as ``?token=``;
    the dashboard then keeps it in a cookie.
    """
    host, _, port = dashboard.rpartition(":")
    if host in _WILDCARDS:
        host = "127.0.0.1"
        if scheduler_address.startswith(("tcp://", "tls://")):
            location = scheduler_address.split("://", 1)[1]
            scheduler_host = location.rpartition(":")[0]
            if scheduler_host not in _WILDCARDS:
                host = scheduler_host
    url = f"http://{host}:{port}/status"
    if token:
        url += "?" + urllib.parse.urlencode({"token": token})
    return url
