"""`Outbox`: the messages `SchedulerState` collected for each peer since the last flush.

Peers are worker addresses, client ids and nanny ids. Per-key worker messages
(`FreeKeys`, `CancelTask`) sent in a row to one peer are merged into one, so releasing
20,000 futures costs one message per worker, while the order of different messages
(a free before a new run of the same key) is kept.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..protocol import messages as m


class Outbox:
    """Messages per peer id, in the order they were sent, until `take` hands them out."""

    __slots__ = ("_boxes",)

    def __init__(self) -> None:
        self._boxes: defaultdict[str, list[Any]] = defaultdict(list)

    def send(self, peer: str, message: Any) -> None:
        """Queue `message` for `peer`."""
        self._boxes[peer].append(message)

    def send_key(self, peer: str, kind: type[m.FreeKeys] | type[m.CancelTask], key: str) -> None:
        """Send a per-key worker message, extending the previous one when it is the same kind."""
        box = self._boxes[peer]
        if box and type(box[-1]) is kind:
            box[-1].keys.append(key)
        else:
            box.append(kind([key]))

    def drop(self, peer: str) -> None:
        """Forget what was queued for `peer` (it left; nobody can receive it)."""
        self._boxes.pop(peer, None)

    def take(self) -> defaultdict[str, list[Any]]:
        """Return every queued message by peer, and start empty."""
        out, self._boxes = self._boxes, defaultdict(list)
        return out
