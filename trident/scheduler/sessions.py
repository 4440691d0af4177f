"""`ClientSessions`: clients that lose their connection and come back.

A client whose connection ends without a goodbye is *away*: the scheduler keeps what it
wants (so its tasks go on) for `LivenessSettings.client_grace` seconds, and ends only
what cannot wait for it: its pending coordination requests (the client failed them
when the connection broke) and values in transit to it. A client that resumes
(`ResumeClient`) within the grace period finds its record; the scheduler then brings
its futures up to date, since messages sent while it was away were lost. A client
that stays away longer is removed for good and its tasks are released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import SchedulerLostError
from ..protocol import messages as m
from ..protocol.failures import error_info_for
from .records import ERRED, MEMORY, ClientRecord, TaskRecord

if TYPE_CHECKING:
    from .state import SchedulerState


class ClientSessions:
    """The away/resume part of `SchedulerState` (sans-IO, sharing its records)."""

    def __init__(self, state: SchedulerState):
        self._state = state

    def welcome(self, cs: ClientRecord) -> None:
        """Tell a client that (re)registered who the scheduler and its workers are."""
        state = self._state
        workers = [ws.info for ws in state.workers.values()]
        state.outbox.send(cs.client_id, m.ClientWelcome(state.id, workers))
        state.outbox.send(cs.client_id, m.SchedulerServices(state.services.get("dashboard")))

    def disconnected(self, client_id: str) -> None:
        """The client's connection ended without a goodbye: it is away until it resumes
        or its grace period ends."""
        state = self._state
        cs = state.clients.get(client_id)
        if cs is None or state.liveness.is_away(client_id):
            return
        state.liveness.client_left(client_id, for_good=False)
        state.coordination.client_away(client_id)
        state.holds.client_removed(client_id)
        state.nannies.forget_client(client_id)
        state.output.client_left(cs)

    def resume(self, msg: m.ResumeClient) -> None:
        """The client registered again: reattach it, or start it afresh if its record
        is gone, and report the outcome of every key it holds."""
        state = self._state
        cs = state.clients.get(msg.client_id)
        known = cs is not None
        if cs is None:
            state.add_client(msg.client_id, msg.name)
            cs = state.clients[msg.client_id]
        else:
            state.liveness.client_joined(msg.client_id)
            self.welcome(cs)
            holding = set(msg.keys)
            for dropped in [ts for ts in cs.wants if ts.key not in holding]:
                state.lifecycle.unwant(cs, dropped)
                state.lifecycle.check_release(dropped)
        for key in msg.keys:
            ts = state.tasks.get(key)
            if ts is None:
                error = SchedulerLostError(
                    f"the scheduler no longer knows {key!r} after the client lost its "
                    "connection (the scheduler restarted, or the client was away too long)"
                )
                state.outbox.send(cs.client_id, m.KeyErred(key, error_info_for(error)))
            elif cs in ts.who_wants:
                self._report(cs, ts)
            else:
                state.lifecycle.want(cs, ts)
        state.outbox.send(cs.client_id, m.ClientResumed(known))

    def _report(self, cs: ClientRecord, ts: TaskRecord) -> None:
        """Tell a resumed client where `ts` stands (it missed what happened meanwhile)."""
        state = self._state
        if ts.state == MEMORY:
            state.outbox.send(cs.client_id, m.KeyDone(ts.key, ts.type_name, ts.nbytes, None))
        elif ts.state == ERRED:
            assert ts.error is not None
            state.outbox.send(cs.client_id, m.KeyErred(ts.key, ts.error))
        else:
            state.outbox.send(cs.client_id, m.KeysLost([ts.key]))

    def expire(self, client_ids: list[str]) -> None:
        """These clients stayed away past their grace period: remove them for good."""
        for client_id in client_ids:
            self._state.remove_client(client_id)
