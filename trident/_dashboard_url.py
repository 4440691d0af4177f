"""`dashboard_url`: the dashboard's URL as a client or a command line prints it, and
`login_key`, the dashboard-only credential its login links carry."""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse

_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def login_key(token: str) -> str:
    """The dashboard login key of a cluster with `token`: an HMAC of the token that lets
    a browser into the dashboard (``?login=``, and the cookie it then keeps) and
    authenticates nothing else, so a printed link does not give the cluster token away."""
    return hmac.new(token.encode(), b"trident-dashboard-cookie", hashlib.sha256).hexdigest()


def dashboard_url(
    dashboard: str, scheduler_address: str, token: str | None, *, login_only: bool = False
) -> str:
    """The dashboard's URL as a client of `scheduler_address` reaches it.

    A dashboard listening on every interface is reached on the scheduler's host (or
    loopback for an in-process scheduler). The token, if any, is added as ``?token=``
    (with `login_only`, its `login_key` as ``?login=``); the dashboard then keeps a
    cookie and drops it from the address bar.
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
        query = {"login": login_key(token)} if login_only else {"token": token}
        url += "?" + urllib.parse.urlencode(query)
    return url
