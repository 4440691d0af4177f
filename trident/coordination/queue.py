"""`Queue`: a multi-producer, multi-consumer queue kept by the scheduler."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..client.stored import acknowledge, pack, unpack
from ..protocol import messages as m
from .base import Primitive
from .waiting import Done, caller_task, seconds, wait_for_answer

if TYPE_CHECKING:
    from ..client.client import Client

#: The request id of messages whose answer nobody waits for (real ids start at 1).
UNANSWERED = 0


class Queue(Primitive):
    """A queue shared by every client and task of the cluster (dask's `distributed.Queue`).

    Arguments:
        name: queues with the same name are the same queue; a random name by default.
        client: the client to use; ``get_client()`` by default (the worker's client
            inside tasks).
        maxsize: how many items the queue holds before `put` waits (0: unbounded). The
            first object to create a queue of this name sets it.

    Items are pickled and kept by the scheduler: send small values, and futures for big
    data. Futures in items (at any depth) stay alive while they are queued and come
    out as futures of the receiving client.
    """

    _prefix = "queue"

    def __init__(self, name: str | None = None, client: Client | None = None, maxsize: int = 0):
        super().__init__(name, client)
        self.maxsize = int(maxsize)
        self._created = False
        if client is not None:
            self._create()

    def _create(self) -> None:
        if not self._created:
            self._created = True
            self.client._scheduler_link.enqueue(m.QueueCreate(self.name, self.maxsize))

    def put(self, value: Any, timeout: Any = None) -> Any:
        """Append `value`, waiting while the queue is full.

        Raises `TimeoutError` if there is no room after `timeout` seconds, and
        `SerializationError` for values that cannot be pickled. A coroutine with an
        asynchronous client.
        """
        self._create()
        item = pack(value, f"the value put into queue {self.name!r}")
        return self._sync(self._put, item, seconds(timeout), caller_task()[0])

    async def _put(self, item: m.StoredValue, timeout: float | None, task: str | None) -> None:
        name = self.name

        def build(request_id: int) -> m.QueuePut:
            return m.QueuePut(request_id, name, [item], False, task)

        if await wait_for_answer(self.client._scheduler_link, build, timeout) is None:
            raise TimeoutError(f"queue {name!r} had no room within {timeout} s")

    def get(self, timeout: Any = None, batch: bool | int = False) -> Any:
        """Take the oldest item, waiting until there is one.

        `batch`: True takes every queued item now (a list, maybe empty, never waits);
        an integer n waits for n items and returns them as a list. Raises
        `TimeoutError` after `timeout` seconds. A coroutine with an asynchronous client;
        cancelling it puts taken items back at the front.
        """
        self._create()
        if batch is True:
            size = -1
        elif batch is False or batch is None:
            size = 0
        else:
            size = int(batch)
            if size < 1:
                raise ValueError(f"batch must be True, False or a positive int, not {batch!r}")
        return self._sync(self._get, size, seconds(timeout), caller_task()[0])

    async def _get(self, size: int, timeout: float | None, task: str | None) -> Any:
        client, name = self.client, self.name
        core = client._scheduler_link

        def build(request_id: int) -> m.QueueGet:
            return m.QueueGet(request_id, name, size, task)

        def give_back(answer: Any) -> None:
            items, handoff = answer
            values = [m.StoredValue(payload, keys) for payload, keys in items]
            if values:
                core.enqueue(m.QueuePut(UNANSWERED, name, values, True, None))
            acknowledge(client, handoff)

        # Taking everything (size -1) never waits on the scheduler.
        answer = await wait_for_answer(core, build, None if size < 0 else timeout, give_back)
        if answer is None:
            raise TimeoutError(f"queue {name!r} had no item within {timeout} s")
        items, handoff = answer
        try:
            values = [unpack(client, payload, keys, None) for payload, keys in items]
        finally:
            acknowledge(client, handoff)
        return values if size else values[0]

    def qsize(self) -> Any:
        """How many items are queued now (a coroutine with an asynchronous client)."""
        self._create()
        core, name = self.client._scheduler_link, self.name
        return self._sync(core.request, lambda rid: m.QueueSize(rid, name))

    def close(self) -> Any:
        """Drop the queue and its items for everyone; waiting `get` and `put` calls fail.

        Takes effect at once (awaitable with an asynchronous client).
        """
        self.client._scheduler_link.enqueue(m.QueueClose(self.name))
        self._created = False
        return Done(None) if self.client.asynchronous else None

    def __await__(self) -> Any:
        self._create()
        return Done(self).__await__()

    def __reduce__(self) -> tuple:
        return (Queue, (self.name, None, self.maxsize))
