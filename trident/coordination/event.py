"""`Event`: a flag kept by the scheduler that clients and tasks can wait for."""

from __future__ import annotations

from typing import Any

from ..protocol import messages as m
from .base import Primitive
from .waiting import Done, caller_task, seconds, wait_for_answer


class Event(Primitive):
    """A cluster-wide event, like `threading.Event` (dask's `distributed.Event`).

    Arguments:
        name: events with the same name are the same event; a random name by default.
        client: the client to use; ``get_client()`` by default (the worker's client
            inside tasks).

    The flag starts cleared. `set` wakes every waiter; `clear` makes later waits block.
    """

    _prefix = "event"

    def wait(self, timeout: Any = None) -> Any:
        """Wait until the event is set; True, or False after `timeout` seconds.

        A coroutine with an asynchronous client.
        """
        return self._sync(self._wait, seconds(timeout), caller_task()[0])

    async def _wait(self, timeout: float | None, task: str | None) -> bool:
        name = self.name

        def build(request_id: int) -> m.EventWait:
            return m.EventWait(request_id, name, task)

        return bool(await wait_for_answer(self.client._scheduler_link, build, timeout))

    def set(self) -> Any:
        """Set the flag and wake every waiter (a coroutine with an asynchronous client)."""
        return self._update(True)

    def clear(self) -> Any:
        """Clear the flag (a coroutine with an asynchronous client)."""
        return self._update(False)

    def _update(self, flag: bool) -> Any:
        core, name = self.client._scheduler_link, self.name
        return self._sync(core.request, lambda rid: m.EventSet(rid, name, flag))

    def is_set(self) -> Any:
        """True if the flag is set (a coroutine with an asynchronous client)."""
        return self._sync(self._wait, 0.0, None)

    def __await__(self) -> Any:
        return Done(self).__await__()

    def __reduce__(self) -> tuple:
        return (Event, (self.name,))
