"""`Scheduler`, `Worker` and `Nanny` as users start them in their own program, as in
dask::

    async with Scheduler() as s, Worker(s.address) as w:
        async with Client(s.address, asynchronous=True) as client:
            ...

(`Nanny(s.address)` in place of `Worker` runs the worker in a process of its own.)

Thin wrappers over the actors (`trident.scheduler.actor.Scheduler`,
`trident.worker.actor.Worker`) that wire the defaults the layers below cannot import:
the scheduler's dashboard factory, and the client a worker lends to its tasks
(`lending.lend_client`). ``async with`` serves the actor until the block ends: under
trio in a nursery of the caller's loop; under asyncio in trident's loop thread
(`trident._loop_thread.LoopThread`), since the actors run on trio.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

import anyio
import sniffio
import trio

from .._loop_thread import LoopThread
from .._public import publish
from ..dashboard import dashboard_for
from ..scheduler.actor import Scheduler as SchedulerActor
from ..security import Security
from ..worker.actor import Worker as WorkerActor
from ..worker.config import WorkerConfig
from ..worker.nanny import Nanny as NannyActor
from .lending import lend_client


class _ServedInBlock:
    """``async with`` for an actor with ``serve(task_status=...)`` (see the module)."""

    _nursery_manager: Any = None
    _loop: LoopThread | None = None
    _scope: trio.CancelScope | None = None
    _done: threading.Event | None = None

    _block_nursery: trio.Nursery | None = None
    #: the actor's ``serve`` (the actor class beside this one in the bases provides it)
    serve: Any

    async def __aenter__(self) -> Self:
        if sniffio.current_async_library() == "trio":
            self._nursery_manager = trio.open_nursery()
            nursery = self._block_nursery = await self._nursery_manager.__aenter__()
            try:
                await nursery.start(self.serve)
            except BaseException:
                nursery.cancel_scope.cancel()
                await self._nursery_manager.__aexit__(None, None, None)
                raise
            return self
        loop = self._loop = LoopThread.acquire()
        self._done = threading.Event()
        try:
            await anyio.to_thread.run_sync(loop.start_service, self._serve_in_loop_thread)
        except BaseException:
            loop.release()
            raise
        return self

    async def _serve_in_loop_thread(self, *, task_status: Any) -> None:
        assert self._done is not None
        try:
            with trio.CancelScope() as self._scope:
                await self.serve(task_status=task_status)
        finally:
            self._done.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._nursery_manager is not None:
            manager, self._nursery_manager = self._nursery_manager, None
            assert self._block_nursery is not None
            self._block_nursery.cancel_scope.cancel()
            await manager.__aexit__(None, None, None)
            return
        loop, self._loop = self._loop, None
        if loop is None:
            return
        scope, done = self._scope, self._done
        assert done is not None
        if scope is not None:
            loop.call_soon(scope.cancel)
        await anyio.to_thread.run_sync(done.wait)
        loop.release()


class Scheduler(_ServedInBlock, SchedulerActor):
    """The trident scheduler, as dask's ``Scheduler``: ``async with Scheduler() as s``.

    Takes the arguments of `trident.scheduler.actor.Scheduler` (``address`` defaults to
    a free TCP port on loopback; ``dashboard_address=":0"`` serves the dashboard).
    """

    def __init__(self, address: str = "tcp://127.0.0.1:0", **options: Any):
        options.setdefault("dashboard_factory", dashboard_for)
        super().__init__(address, **options)


class Worker(_ServedInBlock, WorkerActor):
    """A trident worker, as dask's ``Worker``: ``async with Worker(s.address) as w``.

    Takes the arguments of `trident.worker.actor.Worker`; its tasks get a client
    (`get_client()`) unless ``client_factory=None``.
    """

    def __init__(self, scheduler_address: str, **options: Any):
        options.setdefault("client_factory", lend_client)
        super().__init__(scheduler_address, **options)


class Nanny(_ServedInBlock, NannyActor):
    """A worker in a process of its own, supervised (restarted when it dies), as dask's
    ``Nanny``: ``async with Nanny(s.address, nthreads=2) as n``; the block returns once
    the worker registered, `worker_address` and `worker_pid` name it.

    Keyword arguments are the worker's settings (`trident.worker.config.WorkerConfig`:
    ``nthreads``, ``memory_limit``, ``resources``, ``name``, ``env``, ...) and the
    nanny's own (``security``, ``backoff``, ``memory_terminate_fraction``,
    ``memory_check_interval``). Raises `TypeError` for any other.
    """

    def __init__(self, scheduler_address: str, *, security: Security | None = None, **options: Any):
        own = {
            name: options.pop(name)
            for name in ("backoff", "memory_terminate_fraction", "memory_check_interval")
            if name in options
        }
        unknown = set(options) - WorkerConfig.option_names()
        if unknown:
            raise TypeError(
                f"Nanny() got unexpected keyword arguments: {', '.join(sorted(unknown))}"
            )
        super().__init__(scheduler_address, WorkerConfig(**options), security=security, **own)


publish(globals())
