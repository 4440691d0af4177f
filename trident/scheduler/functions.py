"""`FunctionStore`: the functions clients defined, counted by the tasks and clients using them.

A client sends each small function once (`UpdateGraph.functions`, token -> serialized
payload), and it counts as used as long as that client is connected; tasks name it by
token. A large payload (over `KEPT_FUNCTION_MAX_BYTES`: a callable object carrying
data) comes with every batch of tasks that use it and counts as used by those tasks
only (`is_kept_function`). The scheduler sends a worker the payload
(`DefineFunction`) before the first task that uses it there (see `Assignments.assign`),
and once no client and no task refers to a token any more it forgets the payload and
tells the workers that have it (`ForgetFunctions`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..protocol import messages as m
from ..protocol.serialize import Serialized, is_kept_function
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
        """`cs` sent these functions: each kept one counts once per client that defined
        it; a large one only until `forget_unused` (tasks `ref` it meanwhile)."""
        for token, payload in functions.items():
            if not is_kept_function(payload):
                self.payloads.setdefault(token, payload)
            elif token not in cs.functions:
                cs.functions.add(token)
                self._refs[token] += 1
                self.payloads.setdefault(token, payload)

    def ref(self, token: str) -> None:
        """A new task uses `token`."""
        self._refs[token] += 1

    def forget_unused(self, tokens: Iterable[str]) -> None:
        """Forget the payloads of `tokens` that nothing refers to (large functions sent
        with tasks that all existed already)."""
        for token in tokens:
            if not self._refs.get(token):
                self._refs.pop(token, None)
                self.payloads.pop(token, None)

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
