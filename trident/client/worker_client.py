"""The client that code running on a worker uses: `get_client`, `worker_client`.

Every worker owns one `WorkerClient`, connected to the scheduler from the worker's own
trio loop. From a task's thread its methods block (the calls run in the worker's loop);
from the loop itself (``async def`` tasks and actor methods) they return coroutines.

Tasks a task submits belong to it: when the task fails or is cancelled, its unfinished
subtasks are cancelled too (`fire_and_forget` opts a subtask out). When it succeeds,
its subtasks simply go on.

The worker and the client never import each other: a worker is handed a factory that
builds its `WorkerClient` from above (`trident.cluster.lending.lend_client`), which also
passes in what the client needs of the worker's task context (`TaskHooks`). Inside a
task, `get_client` finds the lent client through `trident._lending`.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import attrs
import trio

from .._lending import current_lender
from .._public import publish
from ..protocol import messages as m
from ..security import Security
from .client import DEFAULT_TIMEOUT, Client, default_client
from .core import ClientCore


class LendingWorker(Protocol):
    """What a `WorkerClient` reads of the worker that lends it."""

    @property
    def name(self) -> str | None: ...

    @property
    def scheduler_address(self) -> str: ...

    @property
    def heartbeat_interval(self) -> float: ...

    @property
    def scheduler_timeout(self) -> float: ...

    @property
    def reconnect_timeout(self) -> float: ...


@attrs.frozen
class TaskHooks:
    """What the worker's client needs of the worker's task context, handed down from
    above (the worker package defines them; the client cannot import it)."""

    #: the key of the task the calling code runs for, if any
    current_task_key: Callable[[], str | None]
    #: a block in which a task waiting for futures gives its thread slot up
    seceded_while_waiting: Callable[[], contextlib.AbstractContextManager[None]]
    #: `worker_client`'s block: secede for it, rejoin after (nothing outside a task)
    seceded_for_block: Callable[[], contextlib.AbstractContextManager[None]]


class WorkerClient:
    """The bridge of the client a worker lends to its tasks (see the module docstring).

    It owns that client's `ClientCore`, runs it in the worker's trio loop (`serve`), and
    is what `Client` calls through: from a task's thread calls block, in the loop they
    return coroutines. `client` is the `Client` user code gets. It also keeps which
    task submitted which subtasks, to cancel them when their parent fails.
    """

    borrowed = True

    def __init__(
        self,
        worker: LendingWorker,
        security: Security,
        ssl_context: ssl.SSLContext | None,
        hooks: TaskHooks,
    ):
        self._hooks = hooks
        core = ClientCore(
            worker.scheduler_address,
            name=f"{m.WORKER_CLIENT_PREFIX}{worker.name}",
            token=security.token,
            timeout=DEFAULT_TIMEOUT,
            callbacks_in_thread=True,
            ssl_context=ssl_context,
            heartbeat_interval=worker.heartbeat_interval,
            scheduler_timeout=worker.scheduler_timeout,
            reconnect_timeout=worker.reconnect_timeout,
        )
        core.loss_log_level = logging.DEBUG
        self._core = core
        #: the client tasks and actor methods on this worker get (`get_client()`)
        self.client = Client._over(core, self, address=worker.scheduler_address, security=security)
        self.client.id = f"Client-worker-{worker.name}"
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._children: dict[str, set[str]] = {}
        self._children_lock = threading.Lock()

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Connect and serve in the worker's loop until the worker stops."""
        self._trio_token = trio.lowlevel.current_trio_token()
        await self._core.serve(task_status=task_status)

    # --- the bridge (see `bridge.Bridge`) ---------------------------------------------

    @property
    def asynchronous(self) -> bool:
        """True in the worker's event loop (async tasks, async actor methods)."""
        return self._core.in_loop_thread

    def run(self, async_fn: Callable[..., Any], *args: Any) -> Any:
        if self.asynchronous:
            return async_fn(*args)
        if self._trio_token is None:
            raise RuntimeError("the worker's client is not running yet")
        return trio.from_thread.run(async_fn, *args, trio_token=self._trio_token)

    def waiting(self) -> contextlib.AbstractContextManager[None]:
        """A task waiting for futures gives its thread slot up meanwhile (`secede`)."""
        return self._hooks.seceded_while_waiting()

    def seceded_for_block(self) -> contextlib.AbstractContextManager[None]:
        """`worker_client`'s block: the task secedes for it and rejoins after."""
        return self._hooks.seceded_for_block()

    # --- subtasks -----------------------------------------------------------------------

    def submitted(self, keys: list[str]) -> None:
        parent = self._hooks.current_task_key()
        if parent is None:
            return
        with self._children_lock:
            self._children.setdefault(parent, set()).update(keys)

    def forgotten(self, keys: list[str]) -> None:
        with self._children_lock:
            for children in self._children.values():
                children.difference_update(keys)

    def log_event(self, topic: str | list[str] | tuple[str, ...], msg: Any) -> None:
        """Store `msg` on the scheduler under `topic` (`Worker.log_event`); from any
        thread of the worker, never waits."""
        self.client.log_event(topic, msg)

    def task_ended(self, key: str, *, succeeded: bool) -> None:
        """Task `key` ended: on failure or cancellation, cancel what it still runs.

        Call from the worker's loop.
        """
        with self._children_lock:
            children = self._children.pop(key, None)
        if children and not succeeded and self._core.status == "running":
            reason = f"its parent task {key!r} failed or was cancelled"
            self._core.cancel_now(sorted(children), False, reason)


def lent_client() -> Client | None:
    """The client the worker running the calling code lends it; None outside tasks and
    actor methods, and before the worker's client is connected."""
    lender = current_lender()
    lent = lender.client if lender is not None else None
    return lent.client if isinstance(lent, WorkerClient) else None


def get_client(
    address: str | None = None, timeout: float | None = None, resolve_address: bool = True
) -> Client:
    """The client to use here: the worker's own inside a task, else the default client.

    Raises `ValueError` outside a task when no client is running. `resolve_address` is
    accepted for dask's sake (addresses are compared as given).
    """
    lender = current_lender()
    if lender is not None:
        lent = lent_client()
        if lent is None:
            raise RuntimeError(f"worker {lender.address} has no client yet")
        return lent
    client = default_client()
    if address is not None and address not in (
        client.scheduler_address,
        client.scheduler_address_for_others,
    ):
        return Client(address, timeout=timeout if timeout is not None else DEFAULT_TIMEOUT)
    return client


@contextmanager
def worker_client(timeout: float | None = None, separate_thread: bool = True) -> Iterator[Client]:
    """``with worker_client() as client:`` — the worker's client, for use inside a task.

    With `separate_thread` (the default, as in dask) the task secedes for the block
    (another task may use its thread slot meanwhile) and rejoins when it ends. Waits
    for futures secede by themselves anyway; see `trident.secede`.
    """
    client = get_client(timeout=timeout)
    bridge = client._bridge
    if not separate_thread or not isinstance(bridge, WorkerClient):
        yield client
        return
    with bridge.seceded_for_block():
        yield client


@contextmanager
def local_client(timeout: float | None = None, separate_thread: bool = True) -> Iterator[Client]:
    """dask's older name for `worker_client`: the same context manager."""
    with worker_client(timeout, separate_thread) as client:
        yield client


publish(globals())
