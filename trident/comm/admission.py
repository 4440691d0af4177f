"""`HandshakeGate`: a bound on connections that have not authenticated yet.

Every accepted connection must finish its handshake within `HANDSHAKE_TIMEOUT`; a real
peer needs milliseconds. A flood of connections that never speak (slow-loris peers,
port scanners, thousands of idle sockets) would otherwise each hold a task, a buffer
and a file descriptor for the whole timeout. The gate admits at most `limit` of them at
a time and, when a new one arrives at the limit, evicts the one that has waited
longest: a real peer, which completes its handshake quickly, is never the oldest for
long, so it gets through while the flood only churns.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import trio

logger = logging.getLogger("trident.comm")

#: Connections allowed in their handshake at once, per server.
MAX_PENDING_HANDSHAKES = 256
#: At most one log record per this many seconds about evictions.
EVICTION_LOG_INTERVAL = 5.0


class HandshakeGate:
    """Admits connections into their handshake, evicting the oldest beyond `limit`."""

    def __init__(
        self,
        name: str,
        limit: int = MAX_PENDING_HANDSHAKES,
        *,
        waiting_for: str = "their handshake",
    ):
        """`name` and `waiting_for` (what the connections wait for) word the log."""
        self.name = name
        self.limit = limit
        self.waiting_for = waiting_for
        #: connections evicted so far
        self.evicted = 0
        self._pending: OrderedDict[int, trio.CancelScope] = OrderedDict()
        self._ids = itertools.count()
        self._logged_at = -EVICTION_LOG_INTERVAL
        self._logged_evictions = 0

    @property
    def pending(self) -> int:
        """Connections in their handshake now."""
        return len(self._pending)

    @contextmanager
    def admit(self) -> Iterator[trio.CancelScope]:
        """Run the block (a handshake) in a cancel scope the gate may cancel to make
        room; check ``scope.cancelled_caught`` afterwards to know if it was evicted."""
        while len(self._pending) >= self.limit:
            _, oldest = self._pending.popitem(last=False)
            oldest.cancel()
            self._evicted()
        key = next(self._ids)
        with trio.CancelScope() as scope:
            self._pending[key] = scope
            try:
                yield scope
            finally:
                self._pending.pop(key, None)

    def _evicted(self) -> None:
        self.evicted += 1
        now = trio.current_time()
        if now - self._logged_at >= EVICTION_LOG_INTERVAL:
            logger.warning(
                "%s: %d connections waiting for %s at once: closed %d of the "
                "oldest since the last report",
                self.name,
                self.limit,
                self.waiting_for,
                self.evicted - self._logged_evictions,
            )
            self._logged_at = now
            self._logged_evictions = self.evicted
