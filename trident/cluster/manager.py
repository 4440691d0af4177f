"""`ClusterManager`: what every cluster class shares, whoever starts its processes.

`LocalCluster` starts a scheduler and workers on this machine; `SSHCluster` over ssh;
the batch and Kubernetes managers through their schedulers' APIs. They differ only in
*where* processes start, so each subclass supplies four hooks, run in the cluster's
trio loop (all ``async def`` except the last two):

- `_start_scheduler` starts the scheduler and returns its address;
- `_start_worker` starts one worker (or one group of workers: a batch job) by name
  and returns a handle for it;
- `_stop_worker` stops one by name and handle;
- `_stop_scheduler` stops the scheduler at close (optional);
- `_manager_log` (plain) returns this manager's own log text (optional);
- `_handle_addresses` (plain) maps a handle to its workers' scheduler addresses.

Everything else lives here, the same for every manager: blocking use (the cluster
runs in trident's background loop thread from construction: ``with Cluster(...) as
cluster``) and asynchronous use (``async with Cluster(..., asynchronous=True)`` or
``await cluster``, in the caller's trio loop; under asyncio in the loop thread),
`scale` (workers, or ``jobs=``), `scale_up` / `scale_down` (what `Adaptive` calls),
`adapt`, `get_logs`, `close`, `scheduler_address`, `dashboard_link`, `workers`, and
the repr. A `Client` connects to any of them with ``Client(cluster)``.

Workers are started concurrently and the cluster's `status` is ``"running"`` once the
scheduler and the first `n_workers` are up. Closing asks every worker to stop (all at
once), then the scheduler, then cancels whatever the hooks left running in the
cluster's nursery; it is bounded by `CLOSE_TIMEOUT`.

Credentials: `security` holds the cluster token (and the TLS pin or files). A manager
hands them to the processes it starts without putting them on a command line, where
``ps`` on that host would show them: in the ``TRIDENT_TOKEN`` environment variable of
the process (`worker_environment`), or written to the process's standard input.
"""

from __future__ import annotations

import abc
import math
import threading
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Self

import anyio
import sniffio
import trio

from .._dashboard_url import dashboard_url
from .._loop_thread import LoopThread
from .._public import publish
from ..security import TOKEN_ENV, Security
from . import adaptive

#: Seconds a `scale` (or the start) may take for its new workers to come up.
START_TIMEOUT = 60.0
#: Seconds closing waits for workers and the scheduler to stop before it cancels them.
CLOSE_TIMEOUT = 30.0


class ClusterManager(abc.ABC):
    """A scheduler and named workers started somewhere; see the module docstring.

    Subclasses set their own attributes, call ``super().__init__(...)``, and call
    `_start` last in their ``__init__`` (a blocking cluster starts there).

    Arguments:
        security: the cluster's token and TLS settings (`Security`), handed to every
            process the manager starts and to ``Client(cluster)``.
        n_workers: workers (or, with `worker_group_size` > 1, groups) to start with.
        asynchronous: start with ``async with`` / ``await`` instead of at construction.
        worker_group_size: worker processes one name runs (a batch job's
            ``processes``); `scale` rounds a number of workers up to whole groups.

    Attributes: `status` (``"created"``, ``"running"`` or ``"closed"``), `security`,
    `token`, `n_workers` (names wanted), `adaptive` (the `Adaptive` started by `adapt`).
    """

    #: The `Adaptive` (sub)class whose hooks decide, when `adapt` is given none.
    _adaptive_class: type[adaptive.Adaptive] = adaptive.Adaptive

    def __init__(
        self,
        *,
        security: Security,
        n_workers: int = 0,
        asynchronous: bool = False,
        worker_group_size: int = 1,
    ):
        if n_workers < 0:
            raise ValueError("n_workers must be >= 0")
        if worker_group_size < 1:
            raise ValueError("worker_group_size must be >= 1")
        self.security = security
        self.n_workers = int(n_workers)
        self.asynchronous = asynchronous
        self.worker_group_size = int(worker_group_size)
        self.status = "created"
        self.adaptive: adaptive.Adaptive | None = None
        self._workers: dict[str, Any] = {}
        self._next_name = 0
        self._scheduler_address = ""
        self._loop: LoopThread | None = None
        self._stopped = threading.Event()
        self._close_requested: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._in_caller_loop = False
        self._nursery_manager: Any = None

    # --- the hooks ----------------------------------------------------------------

    @abc.abstractmethod
    async def _start_scheduler(self) -> str:
        """Start the scheduler and return its address (``tcp://host:port`` or
        ``tls://...``), once it accepts connections.

        Runs once, in the cluster's trio loop, before any worker starts. Long-running
        tasks (a process to watch, an ssh connection to keep) go in `self._nursery`
        (``await self._nursery.start(...)``): they are cancelled when the cluster
        closes, after `_stop_worker` and `_stop_scheduler` ran. Raise to fail the
        start: the cluster's constructor (or ``await cluster``) raises it.
        """

    @abc.abstractmethod
    async def _start_worker(self, name: str) -> Any:
        """Start the worker (or worker group) called `name`; return its handle.

        Called concurrently for the names a `scale` adds, each a fresh name (from
        `_new_worker_name`), with the scheduler running at `self.scheduler_address`.
        Return once the worker registered with the scheduler, or, for managers that
        only submit (batch jobs), once it is submitted. The handle is kept in
        `workers` and given back to `_stop_worker` and `_handle_addresses`. The
        worker's name on the scheduler should be `name` (for a group: ``name-0``,
        ``name-1``, ...). Pass the token as the module docstring says, never in argv.
        Raise when it cannot start; the whole `scale` is bounded by `START_TIMEOUT`.
        """

    @abc.abstractmethod
    async def _stop_worker(self, name: str, handle: Any) -> None:
        """Stop the worker (group) `name` and release what runs it; return when it is
        gone (or, for batch jobs, cancelled).

        The caller already retired its workers from the scheduler when their data
        matters (`scale_down`, `scale` down, `Adaptive`): their results moved to
        the workers that stay, so stopping loses nothing. Also called for every
        worker when the cluster closes. Must not raise for a worker that is already
        gone (it may have died, or stopped by itself after retiring).
        """

    async def _stop_scheduler(self) -> None:
        """Stop the scheduler at close, after every worker was asked to stop.

        By default nothing: managers whose scheduler runs in a task of
        `self._nursery` stop it by that task's cancellation.
        """
        return None

    def _handle_addresses(self, handle: Any) -> set[str]:
        """The scheduler addresses of the workers `handle` runs (``handle.address``
        by default); `scale_down` uses them to find the names to stop."""
        address = getattr(handle, "address", None)
        return {address} if address else set()

    def _manager_log(self) -> str:
        """This manager's own log text: the ``"Cluster"`` entry of `get_logs` (for
        example what remote processes wrote to their standard error). Empty by
        default. Called from any thread: must not block."""
        return ""

    def _worker_left(self, name: str, handle: Any) -> None:
        """For subclasses: the worker `name` stopped by itself (retired, lost, its
        process exited); it leaves `workers`. Call from the cluster's loop."""
        if self._workers.get(name) is handle:
            del self._workers[name]

    def _new_worker_name(self) -> str:
        """A name no worker of this cluster had yet (``"0"``, ``"1"``, ...)."""
        name = str(self._next_name)
        self._next_name += 1
        return name

    def _use_other_loop(self) -> None:
        """Called before an asynchronous cluster starts in the loop thread because its
        caller runs asyncio, not trio (so nothing in-process is shared with it)."""
        return None

    def worker_environment(self) -> dict[str, str]:
        """Environment variables that give a process this cluster's credentials
        (``TRIDENT_TOKEN``: the token, with the TLS pin when there is one); empty
        without a token. `trident worker` and `trident scheduler` read it."""
        credential = self.security.credential
        return {TOKEN_ENV: credential} if credential else {}

    # --- the cluster's loop ---------------------------------------------------------

    def _start(self) -> None:
        """End of a subclass's ``__init__``: a blocking cluster starts now."""
        if not self.asynchronous:
            self._start_in_loop_thread()

    async def _serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the cluster until `close`: start the scheduler and the first workers,
        report started, wait, then stop the workers and the scheduler."""
        self._close_requested = trio.Event()
        self._trio_token = trio.lowlevel.current_trio_token()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    self._scheduler_address = await self._start_scheduler()
                    await self._scale_to(math.ceil(self.n_workers))
                    task_status.started()
                    await self._close_requested.wait()
                finally:
                    self._stop_adaptive()
                    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                        await self._shutdown()
                    nursery.cancel_scope.cancel()
        finally:
            self.status = "closed"
            self._nursery = None
            self._closed()
            self._stopped.set()

    async def _shutdown(self) -> None:
        async with trio.open_nursery() as stopping:
            for name, handle in list(self._workers.items()):
                stopping.start_soon(self._stop_one, name, handle)
        await self._stop_scheduler()

    def _closed(self) -> None:
        """Called once the cluster stopped (in its loop): remove temporary files."""
        return None

    def _start_in_loop_thread(self) -> None:
        self._loop = LoopThread.acquire()
        try:
            self._loop.start_service(self._serve)
        except BaseException as exc:
            self._loop.release()
            self._loop = None
            raise _alone(exc) from None
        self.status = "running"

    async def _start_async(self) -> None:
        """Start an asynchronous cluster (``await cluster``); nothing if it started."""
        if self.status != "created":
            return
        if sniffio.current_async_library() == "trio":
            self._in_caller_loop = True
            self._nursery_manager = trio.open_nursery()
            nursery = await self._nursery_manager.__aenter__()
            try:
                await nursery.start(self._serve)
            except BaseException as exc:
                await self._nursery_manager.__aexit__(type(exc), exc, exc.__traceback__)
                raise _alone(exc) from None
            self.status = "running"
        else:
            self._use_other_loop()
            await anyio.to_thread.run_sync(self._start_in_loop_thread)

    def close(self, timeout: float = 10) -> Any:
        """Stop every worker and the scheduler. Idempotent; a coroutine if asynchronous."""
        if self.asynchronous:
            return self._close_async()
        self._close_blocking(timeout)
        return None

    def _request_close(self) -> None:
        if self._close_requested is not None:
            self._close_requested.set()

    def _close_blocking(self, timeout: float) -> None:
        if self.status == "closed" and self._loop is None:
            return
        if self._loop is not None:
            loop, self._loop = self._loop, None
            loop.call_soon(self._request_close)
            self._stopped.wait(timeout)
            loop.release()
        self.status = "closed"

    async def _close_async(self) -> None:
        if self._in_caller_loop:
            manager, self._nursery_manager = self._nursery_manager, None
            if manager is not None:
                self._request_close()
                await manager.__aexit__(None, None, None)
            self.status = "closed"
        else:
            await anyio.to_thread.run_sync(self._close_blocking, 10)

    def _call_in_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the cluster's loop: now when called from it, else soon."""
        token = self._trio_token
        try:
            here = trio.lowlevel.current_trio_token() is token
        except RuntimeError:
            here = False
        if here:
            fn(*args)
        elif token is not None:
            token.run_sync_soon(fn, *args)

    def _in_mode(self, async_fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``async_fn(*args)`` in the cluster's loop as this cluster's mode wants:
        a coroutine (asynchronous) or blocking."""
        if self.status != "running":
            raise RuntimeError(f"the cluster is {self.status}")
        if self.asynchronous and self._in_caller_loop:
            return async_fn(*args)
        token = self._trio_token

        def blocking() -> None:
            trio.from_thread.run(async_fn, *args, trio_token=token)

        if self.asynchronous:
            return anyio.to_thread.run_sync(blocking)
        blocking()
        return None

    # --- scaling --------------------------------------------------------------------

    async def _scale_to(self, count: int) -> None:
        """Run exactly `count` names: keep the oldest, stop the rest, start new ones."""
        names = list(self.workers)
        leaving = names[count:]
        async with trio.open_nursery() as stopping:
            for name in leaving:
                stopping.start_soon(self._stop_one, name, self.workers[name])
        new = [self._new_worker_name() for _ in range(count - len(names[:count]))]
        self.n_workers = count
        if not new:
            return
        with trio.fail_after(START_TIMEOUT):
            async with trio.open_nursery() as starting:
                for name in new:
                    starting.start_soon(self._start_one, name)
        # Started concurrently: keep them in the order of their names' creation, so
        # that scaling down stops the newest first.
        started = {name: self._workers.pop(name) for name in new if name in self._workers}
        self._workers.update(started)

    async def _start_one(self, name: str) -> None:
        self._workers[name] = await self._start_worker(name)

    async def _stop_one(self, name: str, handle: Any) -> None:
        self._workers.pop(name, None)
        await self._stop_worker(name, handle)

    def _groups(self, n: int | None, jobs: int | None) -> int:
        if jobs is not None:
            if jobs < 0:
                raise ValueError("cannot scale to a negative number of jobs")
            return int(jobs)
        if n is None or n < 0:
            raise ValueError("cannot scale to a negative number of workers")
        return math.ceil(n / self.worker_group_size)

    def scale(self, n: int | None = None, *, jobs: int | None = None) -> Any:
        """Run exactly `n` workers, or `jobs` worker groups (batch jobs), starting or
        stopping some; a coroutine if asynchronous. `n` is rounded up to whole groups.
        Stops adaptive scaling (`adapt`).
        """
        groups = self._groups(n, jobs)
        self._stop_adaptive()
        return self._in_mode(self._scale_down_to, groups)

    async def _scale_down_to(self, groups: int) -> None:
        leaving = list(self.workers.items())[groups:]
        await self._retire_before_stop([a for _, h in leaving for a in self._handle_addresses(h)])
        await self._scale_to(groups)

    async def _retire_before_stop(self, addresses: list[str]) -> None:
        """Retire the workers at `addresses` from the scheduler (their data moved to
        the others) before `scale` stops them. Through a short-lived client by
        default; `LocalCluster` stops them at once, as its `scale` always did."""
        if not addresses:
            return
        from ..client.client import Client

        async with Client(
            self.scheduler_address,
            security=self.security,
            asynchronous=True,
            set_as_default=False,
        ) as client:
            await client.retire_workers(addresses, close_workers=True)

    def scale_up(self, n: int) -> Any:
        """Run at least `n` workers (what `Adaptive` calls); a coroutine if
        asynchronous. Unlike `scale`, adaptive scaling goes on."""
        return self._in_mode(self._scale_up_here, n)

    async def _scale_up_here(self, n: int) -> None:
        groups = self._groups(n, None)
        if groups > len(self.workers):
            await self._scale_to(groups)

    def scale_down(self, workers: list[str]) -> Any:
        """Stop the workers at these addresses (what `Adaptive` calls once it retired
        them); a coroutine if asynchronous. A worker group (batch job) stops when any
        of its workers is named."""
        return self._in_mode(self._scale_down_here, list(workers))

    async def _scale_down_here(self, addresses: list[str]) -> None:
        wanted = set(addresses)
        async with trio.open_nursery() as stopping:
            for name, handle in list(self.workers.items()):
                if self._handle_addresses(handle) & wanted:
                    stopping.start_soon(self._stop_one, name, handle)
        self.n_workers = len(self.workers)

    def adapt(
        self,
        minimum: int = 0,
        maximum: float = math.inf,
        target_duration: float | str = "5s",
        wait_count: int = 3,
        interval: float | str = "1s",
        *,
        Adaptive: type[adaptive.Adaptive] | None = None,  # dask's spelling
        **kwargs: Any,
    ) -> adaptive.Adaptive:
        """Scale the cluster with its load from now on (see `Adaptive`); return the
        `Adaptive`. Workers start when work piles up and retire, their data moved to
        the others first, when they stay idle. Other keyword arguments (``startup_cost``,
        ``scale_factor``, ...) go to `Adaptive`; ``Adaptive=`` takes a subclass, as in
        dask. Replaces an earlier `adapt`; `scale` stops it. With the scheduler in
        another process, each round runs there (`RemoteAdaptive`)."""
        if self.status != "running" or self._nursery is None:
            raise RuntimeError(f"cannot adapt a cluster that is {self.status}")
        self._stop_adaptive()
        cls = self._adaptive_class if Adaptive is None else Adaptive
        if self.scheduler is None:  # the scheduler runs elsewhere: decide there
            from .remote_adaptive import RemoteAdaptive

            kwargs["policy"] = cls
            cls = RemoteAdaptive
        scaling = self.adaptive = cls(
            cluster=self,
            interval=interval,
            minimum=minimum,
            maximum=maximum,
            wait_count=wait_count,
            target_duration=target_duration,
            **kwargs,
        )
        self._call_in_loop(self._spawn, scaling.run)
        return scaling

    def _spawn(self, async_fn: Callable[[], Any]) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(async_fn)

    def _stop_adaptive(self) -> None:
        if self.adaptive is not None:
            self.adaptive.stop()
            self.adaptive = None

    # --- information ----------------------------------------------------------------

    def get_logs(self, cluster: bool = True, scheduler: bool = True, workers: bool = True) -> Any:
        """Recent log lines: ``{"Cluster": ..., "Scheduler": ..., address: ...}``, one
        string per part, as dask's ``Cluster.get_logs``. A coroutine if asynchronous."""
        from .logs import cluster_logs

        return cluster_logs(self, (cluster, scheduler, workers))

    def wait_for_workers(self, n_workers: int = 1, timeout: float | None = None) -> Any:
        """Return once the scheduler has at least `n_workers` workers (dask's
        ``Cluster.wait_for_workers``); `TimeoutError` after `timeout` seconds. A
        coroutine if asynchronous."""
        from .queries import wait_for_workers

        return wait_for_workers(self, n_workers, timeout)

    @property
    def scheduler_info(self) -> dict[str, Any]:
        """What `Client.scheduler_info` returns, asked now (dask's
        ``cluster.scheduler_info``): ``len(cluster.scheduler_info["workers"])``.
        Blocking clusters only (`TypeError` otherwise)."""
        from .queries import scheduler_info

        return scheduler_info(self)

    def get_client(self) -> Any:
        """The default client if it is connected to this cluster, else a new client of
        it (dask's ``Cluster.get_client``)."""
        from .queries import get_client

        return get_client(self)

    @property
    def token(self) -> str | None:
        """The cluster token (None: no authentication)."""
        return self.security.token

    @property
    def scheduler_address(self) -> str:
        """The scheduler's address ("" until it started)."""
        return self._scheduler_address

    @property
    def scheduler(self) -> Any:
        """The in-process `Scheduler` actor, for managers that run one (else None)."""
        return None

    def _dashboard_address(self) -> str | None:
        """``host:port`` of the scheduler's dashboard, None without one."""
        scheduler = self.scheduler
        return scheduler.dashboard_address if scheduler is not None else None

    @property
    def dashboard_link(self) -> str | None:
        """The dashboard's URL, with the token when the cluster has one; None without one."""
        address = self._dashboard_address()
        if address is None:
            return None
        return dashboard_url(address, self.scheduler_address, self.token)

    @property
    def workers(self) -> dict[str, Any]:
        """Name -> handle of the workers (groups) running or starting."""
        return dict(self._workers)

    def _address_for_client(self, same_loop: bool | None = None) -> str:
        return self.scheduler_address

    @property
    def loop_thread(self) -> LoopThread | None:
        return self._loop

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.scheduler_address!r}, "
            f"workers={len(self.workers)}, status={self.status})"
        )

    # --- context managers -------------------------------------------------------------

    def __enter__(self) -> Self:
        if self.asynchronous:
            raise TypeError(f"use 'async with' for an asynchronous {type(self).__name__}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        if not self.asynchronous:
            raise TypeError(
                f"use 'with' for a blocking {type(self).__name__} (or asynchronous=True)"
            )
        await self._start_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close_async()

    def __await__(self) -> Generator[Any, None, Self]:
        async def start() -> Self:
            await self._start_async()
            return self

        return start().__await__()


def _alone(exc: BaseException) -> BaseException:
    """The one error inside nested exception groups (why a start failed, as the
    caller of a constructor expects it), else `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


publish(globals())
