"""`RemoteCalls`: `Client.run_on_scheduler` and `Client.run(..., nanny=True)`, sans-IO.

The state machine never runs user code: a function for the scheduler is handed to the
actor through `run_here` (set by `Scheduler`), which runs it and answers the client.
Functions for nannies are relayed to each nanny (the scheduler's connection to it) and
their `RunResult`s gathered into one `RunResults` for the client. The payloads pass
through unopened.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..protocol import messages as m
from .inspection import select_workers
from .nannies import Nannies, NannyRecord
from .records import ClientRecord, WorkerRecord


@attrs.define(eq=False)
class NannyCall:
    """A `RunOnNannies` waiting for its nannies' results."""

    client_id: str
    request_id: int
    #: relay id -> worker address, for the nannies that have not answered
    waiting: dict[int, str]
    results: dict[str, m.RunResult] = attrs.Factory(dict)


class RemoteCalls:
    """Functions run in the scheduler's process or relayed to nannies."""

    def __init__(
        self,
        workers: Mapping[str, WorkerRecord],
        nannies: Nannies,
        send: Callable[[str, Any], None],
        error_info: Callable[[BaseException], m.ErrorInfo],
    ):
        """`error_info` packages the errors the scheduler reports itself."""
        self._workers = workers
        self._nannies = nannies
        self._send = send
        self._error_info = error_info
        #: runs ``RunFunction`` for the client id given; set by the scheduler actor
        self.run_here: Callable[[str, m.RunFunction], None] | None = None
        self.calls: list[NannyCall] = []
        #: relay id -> (the call, the nanny it went to)
        self._relays: dict[int, tuple[NannyCall, str]] = {}
        self._ids = itertools.count(1)
        nannies.add_handler(m.RunResult, self._on_nanny_result)

    def _error_result(self, request_id: int, exc: BaseException) -> m.RunResult:
        return m.RunResult(request_id, None, self._error_info(exc))

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        return {
            m.RunOnScheduler: self._on_run_on_scheduler,
            m.RunOnNannies: self._on_run_on_nannies,
        }

    def _on_run_on_scheduler(self, cs: ClientRecord, msg: m.RunOnScheduler) -> None:
        if self.run_here is None:
            error = RuntimeError("this scheduler does not run functions (no scheduler actor)")
            self._send(cs.client_id, self._error_result(msg.call.request_id, error))
            return
        self.run_here(cs.client_id, msg.call)

    def _on_run_on_nannies(self, cs: ClientRecord, msg: m.RunOnNannies) -> None:
        call = msg.call
        nanny_of = self._nannies.nanny_of()
        pending = NannyCall(cs.client_id, call.request_id, {})
        for ws in select_workers(self._workers, msg.workers):
            address = ws.address
            nanny = nanny_of.get(address)
            if nanny is None:
                error = ValueError(f"worker {address} has no nanny")
                pending.results[address] = self._error_result(call.request_id, error)
                continue
            relay = next(self._ids)
            pending.waiting[relay] = address
            self._relays[relay] = (pending, nanny)
            self._send(nanny, m.RunFunction(relay, call.function, call.args, call.wait))
        self.calls.append(pending)
        self._finish(pending)

    def _on_nanny_result(self, nanny: NannyRecord, msg: m.RunResult) -> None:
        entry = self._relays.pop(msg.request_id, None)
        if entry is None:
            return
        pending, _ = entry
        address = pending.waiting.pop(msg.request_id)
        pending.results[address] = m.RunResult(pending.request_id, msg.value, msg.error)
        self._finish(pending)

    def _finish(self, pending: NannyCall) -> None:
        if pending.waiting:
            return
        self.calls.remove(pending)
        self._send(pending.client_id, m.RunResults(pending.request_id, pending.results))

    def nanny_removed(self, nanny_id: str) -> None:
        """A nanny left: the calls relayed to it fail for its worker."""
        for relay, (pending, nanny) in list(self._relays.items()):
            if nanny != nanny_id:
                continue
            del self._relays[relay]
            address = pending.waiting.pop(relay)
            error = ConnectionError(f"the nanny of {address} left before answering")
            pending.results[address] = self._error_result(pending.request_id, error)
            self._finish(pending)

    def client_removed(self, client_id: str) -> None:
        for pending in [p for p in self.calls if p.client_id == client_id]:
            self.calls.remove(pending)
            for relay in pending.waiting:
                self._relays.pop(relay, None)
