"""What a client's outgoing queue holds, and how a flush turns it into messages.

The queue (`ClientCore.enqueue`, `add_tasks`, releases from `Future.__del__`) keeps
submits and releases in the order the user made them; `queue_releases` turns the keys
whose last future was dropped into `Release` markers in it, and `batch_messages` groups
runs of task specs into one `UpdateGraph` each and runs of releases into one
`ReleaseKeys`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import MutableMapping
from typing import Any

from ..protocol import messages as m
from ..protocol.serialize import Serialized


class Release:
    """Marker in the outgoing queue: the last future of `key` was dropped."""

    __slots__ = ("key",)

    def __init__(self, key: str):
        self.key = key


def queue_releases(
    released: deque[str],
    refcount: dict[str, int],
    futures: MutableMapping[str, Any],
    outgoing: list[Any],
) -> None:
    """Take one reference off each key in `released` (emptied); a key left with none is
    forgotten (from `refcount` and `futures`) and queued as a `Release` in `outgoing`.

    Keys without a count (forgotten already) are skipped. Call under the client's lock.
    """
    while released:
        key = released.popleft()
        count = refcount.get(key)
        if count is None:
            continue
        if count > 1:
            refcount[key] = count - 1
        else:
            del refcount[key]
            futures.pop(key, None)
            outgoing.append(Release(key))


def batch_messages(outgoing: list[Any], functions: dict[str, Serialized]) -> list[Any]:
    """Group runs of task specs into `UpdateGraph`s and runs of releases into one message.

    `functions` travel with the first `UpdateGraph`, or in one of their own when the
    batch has no task."""
    messages: list[Any] = []
    specs: list[m.TaskSpec] = []
    releases: list[str] = []

    def close_runs() -> None:
        nonlocal specs, releases, functions
        if specs:
            messages.append(m.UpdateGraph(functions, specs))
            specs, functions = [], {}
        if releases:
            messages.append(m.ReleaseKeys(releases))
            releases = []

    for item in outgoing:
        kind = type(item)
        if kind is m.TaskSpec:
            if releases:
                close_runs()
            specs.append(item)
        elif kind is Release:
            if specs:
                close_runs()
            releases.append(item.key)
        else:
            close_runs()
            messages.append(item)
    close_runs()
    if functions:
        # No task of this batch carried them (``client.map(f, [])`` defines `f` with no
        # task): define them first anyway, since the client counts them as sent.
        messages.insert(0, m.UpdateGraph(functions, []))
    return messages
