"""What ``trident up`` and ``trident scheduler`` print once they are ready."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._dashboard_url import dashboard_url
from ..scheduler.actor import Scheduler
from ..security import Security


def connect_lines(
    address: str,
    scheduler_file: Path,
    security: Security,
    *,
    token_known: bool,
    dashboard: Sequence[str] = (),
) -> list[str]:
    """How to reach the cluster: the address, the scheduler file (then the `dashboard`
    lines), what to type.

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
        *dashboard,
        "connect from Python as this user on this machine (the token is found for you):",
        f'  Client("{address}")',
        "or from anywhere the scheduler file is:",
        f'  Client(scheduler_file="{scheduler_file}")',
    ]
    pinned = security.tls_fingerprint is not None and not security.require_client_cert
    if pinned and security.token is not None:
        # Nothing but the credential (the token and the certificate's fingerprint).
        lines.append(f'  Client("{address}", security=CREDENTIAL)  # "credential" in the file')
        lines.append(f"  (its TLS certificate's SHA-256: {security.tls_fingerprint})")
    if not security.tls and security.token is not None:
        if token_known:
            lines.append(f'  Client("{address}", security=TOKEN)  # your token')
        else:
            lines.append(f'  Client("{address}", security=TOKEN)  # TOKEN: "token" in the file')
    lines += [
        "add workers (this machine, or another that sees the file):",
        f"  trident worker {address}",
        f"  trident worker --scheduler-file {scheduler_file}",
    ]
    return lines


def remote_worker_lines(address: str, security: Security, *, shown: bool) -> list[str]:
    """What a worker on another machine needs, once `shown` (``--print-credentials``):
    the command with the credential (the token and the TLS certificate's pin), or with
    the CA, certificate and key files to copy when the cluster requires client
    certificates. Otherwise a hint where to find it."""
    if security.token is None and not security.tls:
        return []
    if not shown:
        return ["  (--print-credentials prints the command for a worker on another machine)"]
    command = f"trident worker {address}"
    if security.tls and security.require_client_cert:
        lines = [
            "a worker on another machine: copy these files there (keep the key private), then",
            f"  {security.tls_ca_file}",
            f"  {security.tls_cert}",
            f"  {security.tls_key}",
        ]
        command += (
            f" --tls-ca {security.tls_ca_file} --tls-cert {security.tls_cert}"
            f" --tls-key {security.tls_key}"
        )
        if security.token is not None:
            command += f" --token {security.token}"
        return [*lines, f"  {command}"]
    credential = security.credential
    note = "a worker on another machine (the credential is a secret: pass it privately):"
    if credential is not None:
        return [note, f"  TRIDENT_TOKEN='{credential}' {command}"]
    return ["a worker on another machine:", f"  {command}"]


def dashboard_lines(scheduler: Scheduler, address: str) -> list[str]:
    """Where the dashboard is, if the scheduler serves one: a link that logs the browser
    in with the dashboard login key (`trident._dashboard_url.login_key`: it opens the
    dashboard and nothing else, so the cluster token itself is not printed)."""
    if scheduler.dashboard_address is None:
        return []
    url = dashboard_url(scheduler.dashboard_address, address, scheduler.token, login_only=True)
    return [f"  dashboard       {url}"]
