"""`Client.dump_cluster_state`: the whole cluster's state in one file, for post-mortems.

As in dask.distributed: the scheduler answers with its own state (tasks, workers,
clients and its log of recent events) and every worker's (tasks, slots, fetches and its
log of recent events); the client writes it to ``filename + ".msgpack.gz"`` (gzipped
msgpack, the default) or ``filename + ".yaml"``. Load it back with `load_cluster_dump`.
Task values and payloads are never part of it, only their sizes.
"""

from __future__ import annotations

import gzip
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import anyio
import msgpack

from ..protocol import messages as m

if TYPE_CHECKING:
    from .core import ClientCore

#: format -> the suffix added to the file name
SUFFIXES = {"msgpack": ".msgpack.gz", "yaml": ".yaml"}


async def dump_cluster_state(
    core: ClientCore, filename: str, exclude: Collection[str], format: str
) -> str:
    """Ask the scheduler for the cluster's state and write it; return the path written.

    Raises `ValueError` for a format other than ``"msgpack"`` or ``"yaml"`` (before
    asking anything).
    """
    if format not in SUFFIXES:
        raise ValueError(f"format must be one of {sorted(SUFFIXES)}, not {format!r}")
    if format == "yaml":
        _yaml()  # fail before asking the cluster anything
    names = [str(name) for name in exclude]
    state = await core.request(lambda rid: m.DumpClusterState(rid, names))
    path = str(filename) + SUFFIXES[format]
    await anyio.to_thread.run_sync(write_cluster_dump, state, path, format)
    return path


def _yaml() -> Any:
    """PyYAML, imported only for YAML dumps (it is not one of trident's dependencies)."""
    try:
        import yaml
    except ImportError:
        raise ImportError("format='yaml' needs PyYAML: pip install pyyaml") from None
    return yaml


def write_cluster_dump(state: dict[str, Any], path: str, format: str) -> None:
    """Write `state` to `path` as gzipped msgpack or YAML (blocking)."""
    if format == "msgpack":
        with gzip.open(path, "wb") as file:
            file.write(msgpack.packb(state, use_bin_type=True))
    else:
        with open(path, "w", encoding="utf-8") as file:
            _yaml().safe_dump(state, file, sort_keys=False)


def load_cluster_dump(path: str) -> dict[str, Any]:
    """Read a dump written by `Client.dump_cluster_state` (either format)."""
    if path.endswith(".yaml"):
        with open(path, encoding="utf-8") as file:
            loaded: dict[str, Any] = _yaml().safe_load(file)
        return loaded
    with gzip.open(path, "rb") as file:
        data: dict[str, Any] = msgpack.unpackb(file.read(), raw=False, strict_map_key=False)
    return data
