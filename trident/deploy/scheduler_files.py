"""Where ``trident up`` and ``trident scheduler`` write their scheduler file.

With ``--scheduler-file PATH`` a cluster writes PATH. Without, it writes the default
file (``~/.trident/scheduler.json``) unless that names another cluster of this user
that still runs (one with a live record in the runtime directory, see
`trident._local_credentials`); then it writes a file of its own beside it,
``scheduler-PORT.json``, so a second ``trident up`` never takes the first one's file.
Stopping, a cluster removes only files that name it: the one it wrote, and the default
file if that names it. If the default file is then gone and other clusters of this user
still run, it is written again for the newest of them: it always names a live cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from .. import _local_credentials as local_credentials
from .._scheduler_file import (
    SchedulerFileError,
    read_scheduler_file,
    remove_scheduler_file,
    write_scheduler_file,
)
from ..comm.address import parse_address, parse_host_port
from ..security import Security


def default_scheduler_file() -> Path:
    """``~/.trident/scheduler.json``: where ``up`` and ``scheduler`` write by default and
    ``worker`` and ``info`` read by default."""
    return Path.home() / ".trident" / "scheduler.json"


def _names_live_cluster(path: Path, address: str) -> bool:
    """Whether `path` names a running cluster of this user other than `address`."""
    try:
        named, _ = read_scheduler_file(path)
    except SchedulerFileError:
        return False
    return named != address and local_credentials.lookup(named) is not None


def choose_scheduler_file(requested: Path | None, address: str) -> Path:
    """The file a cluster at `address` writes (see the module docstring)."""
    if requested is not None:
        return requested
    default = default_scheduler_file()
    default.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _names_live_cluster(default, address):
        return default
    port = parse_host_port(parse_address(address)[1])[1]
    return default.with_name(f"scheduler-{port}.json")


@contextlib.contextmanager
def published(requested: Path | None, address: str, security: Security) -> Iterator[Path]:
    """Write the scheduler file of the cluster at `address`; yield its path; remove it
    (and point the default file at another live cluster) when the block exits.

    Raises `OSError` if the file cannot be written.
    """
    path = choose_scheduler_file(requested, address)
    write_scheduler_file(path, address, security)
    try:
        yield path
    finally:
        remove_scheduler_file(path, address)
        if requested is None:
            # The default file may name this cluster even if another wrote it, when that
            # one stopped first: it goes too, and names a live cluster again if any.
            default = default_scheduler_file()
            remove_scheduler_file(default, address)
            if not default.exists():
                _point_default_at_live_cluster(default, address)


def _point_default_at_live_cluster(default: Path, leaving: str) -> None:
    for address in local_credentials.live_addresses():
        security = local_credentials.lookup(address)
        if address != leaving and security is not None:
            with contextlib.suppress(OSError):
                write_scheduler_file(default, address, security)
            return
