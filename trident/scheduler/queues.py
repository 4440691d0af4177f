"""`QueueRecord`: the scheduler's side of one `Queue`, as pure bookkeeping.

Items are stored values; getters and putters wait in arrival order. A getter of one item
(`batch` 0) or of `batch` items is served when that many items are queued and every
earlier getter has been served; a put waits while the queue is full. `CoordinationState`
turns what these methods return into replies.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .coordination import Stored, Waiter


class QueueGetter:
    __slots__ = ("batch", "waiter")

    def __init__(self, waiter: Waiter, batch: int):
        self.waiter = waiter
        self.batch = batch

    @property
    def wants(self) -> int:
        return max(1, self.batch)


class QueuePutter:
    __slots__ = ("items", "waiter")

    def __init__(self, waiter: Waiter, items: list[Stored]):
        self.waiter = waiter
        self.items = items


class QueueRecord:
    """Items, waiting getters and waiting putters of one named queue."""

    __slots__ = ("getters", "items", "maxsize", "name", "putters")

    def __init__(self, name: str, maxsize: int = 0):
        self.name = name
        self.maxsize = max(0, maxsize)
        self.items: deque[Stored] = deque()
        self.getters: deque[QueueGetter] = deque()
        self.putters: deque[QueuePutter] = deque()

    def full(self) -> bool:
        return bool(self.maxsize) and len(self.items) >= self.maxsize

    def put_back(self, items: list[Stored]) -> None:
        """Return taken items to the front, in their order, regardless of `maxsize`."""
        self.items.extendleft(reversed(items))

    def take_all(self) -> list[Stored]:
        items = list(self.items)
        self.items.clear()
        return items

    def settle(self) -> tuple[list[tuple[QueueGetter, list[Stored]]], list[QueuePutter]]:
        """Serve waiting getters and admit waiting putters while either can progress.

        Returns the getters served with their items and the putters whose items are
        now stored, in the order it happened.
        """
        served: list[tuple[QueueGetter, list[Stored]]] = []
        admitted: list[QueuePutter] = []
        progress = True
        while progress:
            progress = False
            while self.getters and len(self.items) >= self.getters[0].wants:
                getter = self.getters.popleft()
                served.append((getter, [self.items.popleft() for _ in range(getter.wants)]))
                progress = True
            while self.putters and not self.full():
                putter = self.putters.popleft()
                self.items.extend(putter.items)
                admitted.append(putter)
                progress = True
        return served, admitted

    def idle(self) -> bool:
        return not self.getters and not self.putters
