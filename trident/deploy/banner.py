"""What ``trident up`` and ``trident scheduler`` print once they are ready."""

from __future__ import annotations

from pathlib import Path

from .._dashboard_url import dashboard_url
from ..scheduler.actor import Scheduler
from ..security import Security


def connect_lines(
    address: str, scheduler_file: Path, security: Security, *, token_known: bool
) -> list[str]:
    """How to reach the cluster: the address, the scheduler file, what to type.

    `token_known` says whether the user chose the token (``--token`` or
    ``TRIDENT_TOKEN``); a random token is only ever written to the scheduler file.
    """
    if security.tls:
        auth = "TLS with client certificates" if security.require_client_cert else "TLS"
        auth += " and a token" if security.token is not None else ", no authentication"
    elif security.token is not None:
        auth = "token required"
    else:
        auth = "no authentication"
    lines = [
        f"  scheduler       {address} ({auth})",
        f"  scheduler file  {scheduler_file} (mode 0600: address, token, TLS files, credential)",
        "connect from Python:",
        f'  Client(scheduler_file="{scheduler_file}")',
    ]
    pinned = security.tls_fingerprint is not None and not security.require_client_cert
    if pinned and security.token is not None:
        # Nothing but the credential (the token and the certificate's fingerprint).
        lines.append(f'  Client("{address}", security=CREDENTIAL)  # "credential" in the file')
        lines.append(f"  (its TLS certificate's SHA-256: {security.tls_fingerprint})")
    if not security.tls:
        if security.token is None:
            lines.append(f'  Client("{address}")')
        elif token_known:
            lines.append(f'  Client("{address}", security=TOKEN)  # your token')
        else:
            lines.append(f'  Client("{address}", security=TOKEN)  # TOKEN: "token" in the file')
    lines += [
        "add workers (this or another machine that sees the file):",
        f"  trident worker --scheduler-file {scheduler_file}",
    ]
    return lines


def dashboard_lines(scheduler: Scheduler, address: str) -> list[str]:
    """Where the dashboard is, if the scheduler serves one.

    The URL is printed without the token (a random token lives only in the scheduler
    file); the page asks for it once, and `Client.dashboard_link` includes it.
    """
    if scheduler.dashboard_address is None:
        return []
    url = dashboard_url(scheduler.dashboard_address, address, None)
    note = " (asks for the cluster token once)" if scheduler.token else ""
    return [f"  dashboard       {url}{note}"]
