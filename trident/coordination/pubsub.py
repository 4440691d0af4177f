"""`Pub` and `Sub`: publish values on a named topic to every current subscriber.

The scheduler routes each published value to the clients with a live `Sub` of that
topic; a client hands it to each of its `Sub` objects, which buffer it until read.
Values published while nobody subscribes are dropped, as in dask. Futures inside values
stay alive until every receiving client has its own futures for them.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio

from ..client.client import Client
from ..client.link import SchedulerLink
from ..client.stored import acknowledge, pack, unpack
from ..client.worker_client import WorkerClient
from ..protocol import messages as m
from .waiting import seconds

if TYPE_CHECKING:
    from ..worker.actor import Worker

logger = logging.getLogger("trident.client")


def _resolve_client(worker: Worker | None, client: Client | None) -> Client:
    if worker is not None and client is not None:
        raise ValueError("give a worker or a client, not both")
    if worker is not None:
        if not isinstance(worker.client, WorkerClient):
            raise RuntimeError(f"worker {worker.address} has no client yet")
        return worker.client.client
    if client is not None:
        return client
    from ..client.worker_client import get_client

    return get_client()


class Topics:
    """The subscriptions of one client: which `Sub` objects receive each topic."""

    def __init__(self, client: Client):
        # Weak: the registry of topics is keyed weakly by the client's core, which a
        # strong reference from here would keep alive for ever.
        self._client = weakref.ref(client)
        self._lock = threading.Lock()
        self._subs: dict[str, weakref.WeakSet[Sub]] = {}
        self._counts: dict[str, int] = {}
        client._scheduler_link.on_message(m.Published, self._deliver)

    def subscribe(self, sub: Sub) -> None:
        """Start delivering topic ``sub.name`` to `sub` (any thread)."""
        with self._lock:
            self._subs.setdefault(sub.name, weakref.WeakSet()).add(sub)
            self._counts[sub.name] = self._counts.get(sub.name, 0) + 1
            first = self._counts[sub.name] == 1
        client = self._client()
        if first and client is not None:
            client._scheduler_link.enqueue(m.TopicSubscription(sub.name, True))

    def unsubscribe(self, name: str) -> None:
        """One `Sub` of topic `name` is gone (any thread, or a finalizer)."""
        with self._lock:
            count = self._counts.get(name, 0) - 1
            if count > 0:
                self._counts[name] = count
                return
            self._counts.pop(name, None)
            self._subs.pop(name, None)
        client = self._client()
        if client is not None and client._scheduler_link.status == "running":
            client._scheduler_link.enqueue(m.TopicSubscription(name, False))

    def _deliver(self, msg: m.Published) -> None:
        client = self._client()
        if client is None:
            return
        with self._lock:
            subs = list(self._subs.get(msg.name, ()))
        if not subs:
            acknowledge(client, msg.handoff)
            return
        try:
            value = unpack(client, msg.value.payload, msg.value.keys, msg.handoff)
        except Exception:
            logger.exception("a value published on %r could not be loaded", msg.name)
            return
        for sub in subs:
            sub._receive(value)


_topics: weakref.WeakKeyDictionary[SchedulerLink, Topics] = weakref.WeakKeyDictionary()
_topics_lock = threading.Lock()


def topics_of(client: Client) -> Topics:
    """The `Topics` of `client`, created on first use."""
    with _topics_lock:
        topics = _topics.get(client._scheduler_link)
        if topics is None:
            topics = _topics[client._scheduler_link] = Topics(client)
        return topics


class Pub:
    """Publish values on topic `name` (dask's `distributed.Pub`).

    Arguments:
        name: the topic.
        worker: publish through this worker's client.
        client: publish through this client; ``get_client()`` by default (the worker's
            client inside tasks).

    `put` never waits: values travel through the scheduler in the order they are put.
    """

    def __init__(self, name: str, worker: Worker | None = None, client: Client | None = None):
        self.name = name
        self.client = _resolve_client(worker, client)

    def put(self, msg: Any) -> None:
        """Publish `msg` to every current subscriber of the topic.

        Raises `SerializationError` for values that cannot be pickled.
        """
        value = pack(msg, f"a value published on topic {self.name!r}")
        self.client._scheduler_link.enqueue(m.Publish(self.name, value))

    def __reduce__(self) -> tuple:
        return (Pub, (self.name,))

    def __repr__(self) -> str:
        return f"<Pub: {self.name}>"


class Sub:
    """Receive what is published on topic `name` from now on (dask's `distributed.Sub`).

    Arguments:
        name: the topic.
        worker: subscribe through this worker's client.
        client: subscribe through this client; ``get_client()`` by default (the
            worker's client inside tasks).

    Read with `get`, or iterate: ``for msg in sub`` blocks for each message, ``async
    for msg in sub`` awaits them. The subscription ends when the object is garbage
    collected.
    """

    def __init__(self, name: str, worker: Worker | None = None, client: Client | None = None):
        self.name = name
        self.client = _resolve_client(worker, client)
        self._buffer: deque[Any] = deque()
        self._wakeups: list[anyio.Event] = []
        topics = topics_of(self.client)
        topics.subscribe(self)
        weakref.finalize(self, topics.unsubscribe, name)

    def _receive(self, value: Any) -> None:
        """A published value arrived (in the client's loop)."""
        self._buffer.append(value)
        wakeups, self._wakeups = self._wakeups, []
        for event in wakeups:
            event.set()

    def get(self, timeout: Any = None) -> Any:
        """The next message, waiting for one; `TimeoutError` after `timeout` seconds.

        A coroutine with an asynchronous client.
        """
        return self.client._sync(self._get, seconds(timeout))

    async def _get(self, timeout: float | None) -> Any:
        deadline = math.inf if timeout is None else anyio.current_time() + timeout
        await anyio.lowlevel.checkpoint()
        while not self._buffer:
            event = anyio.Event()
            self._wakeups.append(event)
            with anyio.move_on_after(deadline - anyio.current_time()):
                await event.wait()
            if not self._buffer and anyio.current_time() >= deadline:
                raise TimeoutError(f"nothing was published on {self.name!r} within {timeout} s")
        return self._buffer.popleft()

    def __iter__(self) -> Sub:
        return self

    def __next__(self) -> Any:
        return self.get()

    def __aiter__(self) -> Sub:
        return self

    async def __anext__(self) -> Any:
        return await self._get(None)

    def __reduce__(self) -> tuple:
        return (Sub, (self.name,))

    def __repr__(self) -> str:
        return f"<Sub: {self.name}>"
