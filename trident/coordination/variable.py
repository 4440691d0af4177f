"""`Variable`: one named value kept by the scheduler, shared by clients and tasks."""

from __future__ import annotations

from typing import Any

from ..client.stored import acknowledge, pack, unpack
from ..protocol import messages as m
from .base import Primitive
from .waiting import Done, caller_task, seconds, wait_for_answer


class Variable(Primitive):
    """A global variable of the cluster (dask's `distributed.Variable`).

    Arguments:
        name: variables with the same name are the same variable; a random name by
            default.
        client: the client to use; ``get_client()`` by default (the worker's client
            inside tasks).

    The value is pickled and kept by the scheduler: store small values, and futures for
    big data. A future stored in a variable stays alive until the value is replaced or
    deleted, and `get` returns a future of the calling client.
    """

    _prefix = "variable"

    def set(self, value: Any, timeout: Any = None) -> Any:
        """Store `value` (replacing the previous one) and wake every waiting `get`.

        Returns once the scheduler stored it; a coroutine with an asynchronous client.
        Raises `SerializationError` for values that cannot be pickled. `timeout` is
        accepted for dask compatibility (storing never waits).
        """
        item = pack(value, f"the value of variable {self.name!r}")
        return self._sync(self._set, item)

    async def _set(self, item: m.StoredValue) -> None:
        name = self.name
        await self.client._scheduler_link.request(lambda rid: m.VariableSet(rid, name, item))

    def get(self, timeout: Any = None) -> Any:
        """The value, waiting until the variable has one.

        Raises `TimeoutError` after `timeout` seconds. A coroutine with an asynchronous
        client.
        """
        return self._sync(self._get, seconds(timeout), caller_task()[0])

    async def _get(self, timeout: float | None, task: str | None) -> Any:
        client, name = self.client, self.name

        def build(request_id: int) -> m.VariableGet:
            return m.VariableGet(request_id, name, task)

        def give_back(answer: Any) -> None:
            acknowledge(client, answer[2])

        answer = await wait_for_answer(client._scheduler_link, build, timeout, give_back)
        if answer is None:
            raise TimeoutError(f"variable {name!r} has no value after {timeout} s")
        payload, keys, handoff = answer
        return unpack(client, payload, keys, handoff)

    def delete(self) -> Any:
        """Forget the value for everyone (waiting `get` calls keep waiting).

        Takes effect at once (awaitable with an asynchronous client).
        """
        self.client._scheduler_link.enqueue(m.VariableDelete(self.name))
        return Done(None) if self.client.asynchronous else None

    def __reduce__(self) -> tuple:
        return (Variable, (self.name,))
