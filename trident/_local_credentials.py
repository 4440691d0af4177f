"""Credentials of the clusters running on this machine, for their owner's clients.

A cluster started here (`LocalCluster`, ``trident up``, ``trident scheduler``) records
its token and TLS settings in a private *runtime directory* while it runs, the way
Jupyter keeps its kernels' connection files: ``$TRIDENT_RUNTIME_DIR``, else
``$XDG_RUNTIME_DIR/trident``, else ``~/.trident/runtime``; the directory has mode 0700
and each record mode 0600, so only the user who started the cluster (and root) can read
it. A `Client`, ``trident info`` or ``trident worker`` given only an address then finds
the credentials (`lookup`): authentication stays on, and is invisible to the owner.
Another user on this machine, or any other machine, still needs the token.

A record (one JSON file per scheduler, in the format of a scheduler file plus its
``addresses`` and the ``pid`` of the process serving it) matches an address with the
port of one of the cluster's listening addresses and a host that reaches it: the same
host; for a cluster on loopback, any loopback name or address; for one on every
interface (``0.0.0.0``), any name or address of this machine. Records of processes that
no longer run are ignored, and removed by the next `record`. In-process addresses
(``inproc://``) are kept in memory only.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil

from ._scheduler_file import SchedulerFileError, read_scheduler_file, write_scheduler_file
from .comm.address import AddressError, parse_address, parse_host_port
from .comm.routes import is_loopback, is_unspecified
from .security import Security

RUNTIME_DIR_ENV = "TRIDENT_RUNTIME_DIR"

_inproc: dict[str, Security] = {}


def runtime_directory() -> Path:
    """Where this user's clusters record their credentials (see the module docstring)."""
    if explicit := os.environ.get(RUNTIME_DIR_ENV):
        return Path(explicit)
    if xdg := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(xdg) / "trident"
    return Path.home() / ".trident" / "runtime"


def _private_directory() -> Path | None:
    """The runtime directory, created with mode 0700 (and made 0700 if it is ours);
    None when it cannot be made or belongs to someone else."""
    directory = runtime_directory()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = directory.stat()
        if status.st_uid != os.getuid():
            return None
        if status.st_mode & 0o077:
            directory.chmod(0o700)
    except OSError:
        return None
    return directory


def record(addresses: Iterable[str], security: Security) -> Path | None:
    """Record that this process serves a scheduler at `addresses` with `security`.

    Returns the record's path (None when there was nothing to record, only in-process
    addresses, or the runtime directory is unusable: the cluster then simply needs its
    token, as before). Never raises `OSError`.
    """
    addresses = list(addresses)
    for address in addresses:
        if address.startswith("inproc://"):
            _inproc[address] = security
    network = [a for a in addresses if not a.startswith("inproc://")]
    if not network or (security.token is None and not security.tls):
        return None
    directory = _private_directory()
    if directory is None:
        return None
    _remove_stale(directory)
    port = parse_host_port(parse_address(network[0])[1])[1]
    path = directory / f"scheduler-{port}-{os.getpid()}.json"
    try:
        write_scheduler_file(
            path, network[0], security, extra={"addresses": network, "pid": os.getpid()}
        )
    except OSError:
        return None
    return path


def forget(addresses: Iterable[str], path: Path | None) -> None:
    """Remove what `record` wrote (the file at `path`, the in-process entries); never
    raises."""
    for address in addresses:
        _inproc.pop(address, None)
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def recorded(addresses: Iterable[str], security: Security) -> Iterator[Path | None]:
    """`record` while the block runs, then `forget`."""
    addresses = list(addresses)
    path = record(addresses, security)
    try:
        yield path
    finally:
        forget(addresses, path)


def lookup(address: str) -> Security | None:
    """The credentials a cluster of this user running on this machine recorded for
    `address`, or None (not local, not found, or not readable)."""
    if address in _inproc:
        return _inproc[address]
    try:
        scheme, location = parse_address(address)
        if scheme == "inproc":
            return None
        host, port = parse_host_port(location)
    except AddressError:
        return None
    for info, security in _live_records():
        for listened in info.get("addresses", []):
            with contextlib.suppress(AddressError):
                listened_host, listened_port = parse_host_port(parse_address(listened)[1])
                if listened_port == port and _same_listener(host, listened_host):
                    return security
    return None


def _same_listener(host: str, listened: str) -> bool:
    """Whether connecting to `host` reaches a socket of this machine bound to `listened`
    (on the same port)."""
    if host == listened:
        return True
    if is_unspecified(listened):
        return _is_this_machine(host)
    if is_loopback(listened):
        return is_loopback(host) or is_unspecified(host)
    return False


def complete(address: str, security: Security) -> Security:
    """`security` completed from the record for `address` (see `lookup`): its token when
    `security` has none, and its TLS settings when `security` has none and the tokens
    agree. Unchanged when there is no record."""
    recorded = lookup(address) if security.token is None or not security.tls else None
    if recorded is None:
        return security
    if security.token is None:
        security = security.with_token(recorded.token)
    if not security.tls and recorded.tls and security.token == recorded.token:
        return recorded
    return security


def live_addresses() -> list[str]:
    """The address of every cluster with a live record, newest first."""
    return [info["address"] for info, _ in _live_records()]


def _live_records() -> list[tuple[dict[str, Any], Security]]:
    directory = runtime_directory()
    found = []
    try:
        paths = sorted(directory.glob("scheduler-*.json"), key=_mtime, reverse=True)
    except OSError:
        return []
    for path in paths:
        info = _read(path)
        if info is None or not _alive(info.get("pid")):
            continue
        try:
            _, security = read_scheduler_file(path)
        except SchedulerFileError:
            continue
        found.append((info, security))
    return found


def _remove_stale(directory: Path) -> None:
    for path in directory.glob("scheduler-*.json"):
        info = _read(path)
        if info is not None and not _alive(info.get("pid")):
            with contextlib.suppress(OSError):
                path.unlink()


def _read(path: Path) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("address"), str) else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _alive(pid: object) -> bool:
    return isinstance(pid, int) and psutil.pid_exists(pid)


def _is_this_machine(host: str) -> bool:
    """Whether `host` names this machine (no DNS: names are compared, not resolved)."""
    if is_loopback(host) or is_unspecified(host):
        return True
    if host.lower() in {socket.gethostname().lower(), socket.getfqdn().lower()}:
        return True
    bare = host.strip("[]")
    with contextlib.suppress(OSError):
        for addresses in psutil.net_if_addrs().values():
            if any(a.address.split("%")[0] == bare for a in addresses):
                return True
    return False
