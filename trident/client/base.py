"""`ClientBase`: what every `Client` is made of, and the narrow interface its parts use.

A client is composed of a `ClientCore` (the anyio engine, `core.py`) and a bridge to the
loop that core runs in (`bridge.py`). This base holds the two and offers the few calls
the `Client` mixins (`results`, `admin`, `collections`, `kernels`, `datasets`) and the
modules beside them build on: `_sync` (run a coroutine function through the bridge),
`_check_open`, `_waiting`, and the subtask bookkeeping. It knows nothing of how a
client starts (`client.py`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Self, cast

from .._loop_thread import LoopThread
from ..security import Security
from .bridge import Bridge, OwnLoop
from .core import ClientCore
from .link import FutureWatch, SchedulerLink
from .local_cluster import LocalClusterLike

if TYPE_CHECKING:
    from .client import Client

#: "no value given" for arguments whose default is the client's own timeout
NO_DEFAULT = "__no_default__"


class ClientBase:
    """A `ClientCore` and a bridge, composed (see the module docstring)."""

    _core: ClientCore
    _bridge: Bridge
    #: the local cluster this client started or was given, if any
    cluster: LocalClusterLike | None
    _cluster_kwargs: dict[str, Any]

    @property
    def _scheduler_link(self) -> SchedulerLink:
        """This client's way to the scheduler, for code built on it (see `link`)."""
        return self._core

    @property
    def _future_watch(self) -> FutureWatch:
        """How code built on this client watches its futures (see `link`)."""
        return self._core

    @property
    def _client(self) -> Client:
        """This object as the `Client` it is (for the parts typed against `Client`)."""
        return cast("Client", self)

    def _assemble(
        self,
        core: ClientCore,
        bridge: Bridge,
        *,
        address: str | None,
        security: Security,
        set_as_default: bool,
    ) -> None:
        """Compose this client of `core` and `bridge` (every client is built here)."""
        self.id = f"Client-{uuid.uuid4()}"
        self._core = core
        self._bridge = bridge
        self._timeout = core.timeout
        self._set_as_default = set_as_default
        self._closed = False
        self._started = False
        self.cluster = None
        self._owns_cluster = False
        self._cluster_kwargs = {}
        self._task_group: Any = None
        self._address = address
        self._token = security.token
        self._security = security
        self._name = core.name
        core.client = self._client

    @classmethod
    def _over(cls, core: ClientCore, bridge: Bridge, *, address: str, security: Security) -> Self:
        """A client of `core` whose loop `bridge` provides (the worker's client); it is
        started and closed by whoever owns that loop, and is never the default."""
        client = cls.__new__(cls)
        client._assemble(core, bridge, address=address, security=security, set_as_default=False)
        client._started = True
        return client

    @property
    def asynchronous(self) -> bool:
        """True when waiting methods return coroutines (``Client(asynchronous=True)``;
        in a worker's loop, for the worker's client)."""
        return self._bridge.asynchronous

    @property
    def _loop(self) -> LoopThread | None:
        """The loop thread of a blocking client while it runs."""
        return self._bridge.loop if isinstance(self._bridge, OwnLoop) else None

    @property
    def status(self) -> str:
        if self._closed:
            return "closed"
        return self._core.status

    @property
    def scheduler_address(self) -> str:
        return self._core.address

    def _sync(self, async_fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``async_fn(*args)`` through the bridge: a coroutine (asynchronous) or its
        result, blocking the calling thread."""
        return self._bridge.run(async_fn, *args)

    def _answer(self, value: dict[Any, Any]) -> dict[Any, Any]:
        """`value` for a blocking client; for an asynchronous one the same dict, also
        awaitable (`AwaitableDict`): every call that asks the cluster is awaited in dask,
        even one trident answers from the client's own view."""
        return AwaitableDict(value) if self.asynchronous else value

    def _check_open(self) -> None:
        if self._closed or self._core.status in ("closing", "closed"):
            raise RuntimeError(f"the client is {self.status}")

    def _register_submitted(self, keys: list[str]) -> None:
        """The calling code submitted `keys` (the worker's client tracks subtasks)."""
        self._bridge.submitted(keys)

    def _forget_submitted(self, keys: list[str]) -> None:
        """These keys no longer belong to the task that submitted them."""
        self._bridge.forgotten(keys)

    def _waiting(self) -> contextlib.AbstractContextManager[None]:
        """Entered around every wait for futures that are not done.

        The worker's client secedes the calling task there (see `worker_client`).
        """
        return self._bridge.waiting()


class AwaitableDict(dict[Any, Any]):
    """A dict that is also awaitable (to itself): what asynchronous clients return for
    queries answered at once, so ``await client.ncores()`` works as in dask and so does
    using the dict directly."""

    def __await__(self) -> Generator[Any, None, dict[Any, Any]]:
        return self
        yield


class _Done:
    """An awaitable that is already done: what asynchronous clients return for calls
    that take effect at once, so ``await client.forward_logging()`` works as in dask."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


#: what asynchronous clients return for calls that take effect at once
DONE = _Done()
