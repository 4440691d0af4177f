"""`FunctionStore`: the functions clients defined, counted by the tasks and clients using them.

A client sends each function once (`UpdateGraph.functions`, token -> serialized
payload); tasks name it by token. The scheduler sends a worker the payload
(`DefineFunction`) before the first task that uses it there (see `Assignments.assign`),
and once no client and no task refers to a token any more it forgets the payload and
tells the workers that have it (`ForgetFunctions`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from ..protocol import messages as m
from ..protocol.serialize import Serialized
from .records import ClientRecord, WorkerRecord


class FunctionStore:
    """Function payloads by token, and how many clients and tasks refer to each.

    Arguments:
        workers: the scheduler's workers by address (read only), whose `functions`
            say which tokens each one was sent.
        send: queues a message for a peer.
    """

    def __init__(
        self, workers: Mapping[str, WorkerRecord], send: Callable[[str, Any], None]
    ) -> None:
        self._workers = workers
        self._send = send
        #: token -> payload of every function in use
        self.payloads: dict[str, Serialized] = {}
        self._refs: dict[str, int] = defaultdict(int)

    def define(self, cs: ClientRecord, functions: Mapping[str, Serialized]) -> None:
        """`cs` sent these functions: each counts once per client that defined it."""
        for token, payload in functions.items():
            if token not in cs.functions:
                cs.functions.add(token)
                self._refs[token] += 1
                self.payloads.setdefault(token, payload)

    def ref(self, token: str) -> None:
        """A new task uses `token`."""
        self._refs[token] += 1

    def unref(self, token: str) -> None:
        """A task or client let go of `token`; the last one forgets it everywhere."""
        self._refs[token] -= 1
        if self._refs[token] <= 0:
            del self._refs[token]
            self.payloads.pop(token, None)
            for ws in self._workers.values():
                if token in ws.functions:
                    ws.functions.discard(token)
                    self._send(ws.address, m.ForgetFunctions([token]))
