"""`KeyHolds`: keys the scheduler keeps alive for values it stores or hands to clients.

A `Future` inside a value put into a `Queue` or `Variable`, published as a dataset or on
a topic must keep its key alive while the scheduler holds the value, even after every
client dropped its own futures. One pseudo-client record (`HOLDER_ID`, never a real
peer) wants every held key; a count per key says how many stored values hold it.

Values that reach a client go through a *handoff*: the scheduler keeps their keys held
until the client has made its own futures for them and says so (`HandoffsDone`), so a
key cannot be forgotten while it travels.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .records import ClientRecord

if TYPE_CHECKING:
    from .state import SchedulerState

#: The peer id of the pseudo-client that wants held keys; messages to it are dropped.
HOLDER_ID = "scheduler-holds"


class KeyHolds:
    """Reference counts of held keys, and the handoffs clients have not acknowledged."""

    def __init__(self, state: SchedulerState):
        self._state = state
        self.record = ClientRecord(HOLDER_ID, "stored values")
        #: key -> how many stored values and handoffs hold it
        self.counts: dict[str, int] = {}
        #: handoff id -> (client id, the keys it holds)
        self._handoffs: dict[int, tuple[str, list[str]]] = {}
        self._by_client: dict[str, set[int]] = {}
        self._ids = itertools.count(1)

    def hold(self, keys: Iterable[str]) -> list[str]:
        """Keep `keys` alive; returns those the scheduler knows (the others are not held).

        Release exactly the returned list later with `release`.
        """
        tasks = self._state.tasks
        record = self.record
        held = []
        for key in keys:
            ts = tasks.get(key)
            if ts is None:
                continue
            self.counts[key] = self.counts.get(key, 0) + 1
            # A forced cancel may have dropped the holder while counts remained.
            if record not in ts.who_wants:
                ts.who_wants.add(record)
                record.wants.add(ts)
            held.append(key)
        return held

    def release(self, keys: Iterable[str]) -> None:
        """Undo one `hold` of each key; keys nothing holds any more may be released."""
        tasks = self._state.tasks
        record = self.record
        for key in keys:
            count = self.counts.get(key, 0) - 1
            if count > 0:
                self.counts[key] = count
                continue
            self.counts.pop(key, None)
            ts = tasks.get(key)
            if ts is not None and record in ts.who_wants:
                ts.who_wants.discard(record)
                record.wants.discard(ts)
                self._state.release_if_unneeded(ts)

    # --- handoffs ---------------------------------------------------------------------

    def hand_off(self, client_id: str, held: list[str]) -> int | None:
        """Move the holds on `held` (already counted) into a new handoff to `client_id`.

        Returns the handoff id, or None when there is nothing to hold.
        """
        if not held:
            return None
        handoff = next(self._ids)
        self._handoffs[handoff] = (client_id, held)
        self._by_client.setdefault(client_id, set()).add(handoff)
        return handoff

    def hand_off_copy(self, client_id: str, keys: Iterable[str]) -> int | None:
        """Hold `keys` once more and hand those holds to `client_id` (see `hand_off`)."""
        return self.hand_off(client_id, self.hold(keys))

    def handoffs_done(self, client_id: str, handoffs: Iterable[int]) -> None:
        """`client_id` acknowledged these handoffs; ids of other clients are ignored."""
        owned = self._by_client.get(client_id)
        if not owned:
            return
        for handoff in handoffs:
            if handoff in owned:
                owned.discard(handoff)
                _, keys = self._handoffs.pop(handoff)
                self.release(keys)
        if not owned:
            del self._by_client[client_id]

    def client_removed(self, client_id: str) -> None:
        """The client left: release whatever was in transit to it."""
        for handoff in self._by_client.pop(client_id, ()):
            _, keys = self._handoffs.pop(handoff)
            self.release(keys)

    def validate(self) -> None:
        """Check that every held key is wanted by the holder record (for tests)."""
        record = self.record
        for key, count in self.counts.items():
            assert count > 0, f"{key} held {count} times"
        for ts in record.wants:
            assert ts.key in self.counts, f"{ts} wanted by the holder but not held"
            assert record in ts.who_wants
        in_transit = sum(len(keys) for _, keys in self._handoffs.values())
        assert in_transit <= sum(self.counts.values())
        for client_id, ids in self._by_client.items():
            for handoff in ids:
                assert self._handoffs[handoff][0] == client_id
