"""`LocalCluster`: a scheduler and workers on this machine, in one call.

Blocking use starts the cluster at once in trident's background event loop:
``with LocalCluster(n_workers=2) as cluster: ...``. Asynchronous use starts it in the
caller's trio loop (``async with LocalCluster(asynchronous=True)``); under asyncio the
cluster runs in the background loop and is reached over TCP.
"""

from __future__ import annotations

import math
import os
import secrets
import tempfile
import threading
from collections.abc import Generator
from types import TracebackType
from typing import Any

import anyio
import attrs
import psutil
import sniffio
import trio

from .._dashboard_url import dashboard_url
from .._loop_thread import LoopThread
from .._public import publish
from ..client.local_cluster import register_local_cluster
from ..comm.routes import is_loopback
from ..security import Security
from ..sizes import parse_memory
from ..worker import memory
from ..worker.config import HEARTBEAT_INTERVAL, WorkerConfig
from . import adaptive
from .runtime import ClusterRuntime, WorkerHandle

#: `WorkerConfig` settings that LocalCluster sets from its own arguments.
_OWN_SETTINGS = frozenset(
    {"nthreads", "name", "memory_limit", "resources", "listen_address", "memory", "log_level"}
)

_AUTO = "auto"
#: The dashboard's port unless told otherwise (dask's too).
DEFAULT_DASHBOARD_PORT = 8787


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_layout(cpus: int, processes: bool) -> tuple[int, int]:
    """(workers, threads per worker) for `cpus` cores, as dask.distributed chooses."""
    if not processes:
        return 1, cpus
    if cpus <= 4:
        return cpus, 1
    workers = min(f for f in range(1, cpus + 1) if cpus % f == 0 and f >= math.sqrt(cpus))
    return workers, cpus // workers


class LocalCluster:
    """A scheduler and `n_workers` workers on this machine.

    Arguments:
        n_workers: defaults to what dask.distributed picks for the machine's cores (one
            single-threaded worker per core up to four cores).
        threads_per_worker: threads of each worker (same default rule).
        processes: run each worker in its own process (default) or in this process.
        memory_limit: per worker: bytes, a string like ``"4GB"``, ``"auto"`` (the
            machine's memory divided by the workers) or None.
        host: interface the scheduler and worker processes listen on. On any but a
            loopback host, connections use TLS by default (a throwaway certificate;
            `security.credential` is the token with its fingerprint, all a remote
            client needs); ``protocol="tcp"`` or ``security=False`` keep plain TCP, for
            trusted networks only.
        scheduler_port: 0 picks a free port.
        protocol: ``"tcp"``, ``"tls"`` or ``"inproc"``; defaults to inproc for
            in-process workers, tcp for worker processes, and tls with TLS `security`.
        token: the cluster token (``"auto"``: a random one; None: no authentication).
        security: a `Security` whose TLS files every connection uses (mutual TLS), or
            True for a throwaway CA and certificate made for this cluster and removed
            when it closes (needs the ``cryptography`` package), or False for no TLS.
            Its token, when set, is the cluster's; otherwise `token` applies.
        resources: abstract resources every worker offers, e.g. ``{"GPU": 1}``.
        asynchronous: start with ``async with`` / ``await`` instead of at construction.
        dashboard_address: where the scheduler serves its dashboard: ``"host:port"``,
            ``":port"`` (on `host`) or a port; by default port 8787 on `host`, or a free
            port when 8787 is taken; None serves none.
        allowed_failures: how many workers a task may be running on when they die
            before it fails with `KilledWorker` (dask's
            ``distributed.scheduler.allowed-failures``, 3 by default).
        memory_target_fraction: results beyond this fraction of `memory_limit` are
            spilled to disk (dask's names and defaults throughout; None turns a
            threshold off; see `trident.worker.memory`); 0.6.
        memory_spill_fraction: a worker process using more spills until it is back
            under the target; 0.7.
        memory_pause_fraction: a worker process using more starts no new task; 0.8.
        memory_terminate_fraction: a worker process using more is restarted by its
            nanny; 0.95.
        local_directory: where each worker keeps its files (spilled results); default:
            the system's temporary directory.
        heartbeat_interval: seconds (or text such as ``"500ms"``) between each
            worker's heartbeats to the scheduler; 1.
        preload: modules (names or ``.py`` files) each worker runs when it starts,
            calling their ``dask_setup(worker)`` / ``trident_setup(worker)``.
        worker_kwargs: other `WorkerConfig` settings for every worker (as dask passes
            its extra keyword arguments to the workers), e.g. ``reconnect_timeout``.
            An unknown name raises `TypeError`.

    Worker processes run under nannies, as in dask.distributed: a worker process that
    dies is restarted (with growing pauses when it keeps dying), one that uses more than
    95% of its memory limit is restarted too, and the reason of each death is reported
    to the scheduler (`Client.scheduler_info`, `KilledWorker` errors).

    Attributes: `scheduler_address`, `workers` (name -> handle), `token`, `security`,
    `status`, `dashboard_link`, `adaptive` (the `Adaptive` started by `adapt`, if any),
    `worker_config` (the `WorkerConfig` each new worker gets, with its own name).
    """

    def __init__(
        self,
        n_workers: int | None = None,
        threads_per_worker: int | None = None,
        processes: bool = True,
        memory_limit: int | float | str | None = _AUTO,
        host: str = "127.0.0.1",
        scheduler_port: int = 0,
        *,
        protocol: str | None = None,
        token: str | None = _AUTO,
        security: Security | bool | None = None,
        resources: dict[str, float] | None = None,
        asynchronous: bool = False,
        log_level: str = "WARNING",
        dashboard_address: str | int | None = _AUTO,
        allowed_failures: int = 3,
        memory_target_fraction: float | None = memory.TARGET,
        memory_spill_fraction: float | None = memory.SPILL,
        memory_pause_fraction: float | None = memory.PAUSE,
        memory_terminate_fraction: float | None = memory.TERMINATE,
        local_directory: str | os.PathLike[str] | None = None,
        heartbeat_interval: float | str = HEARTBEAT_INTERVAL,
        preload: str | list[str] | tuple[str, ...] = (),
        **worker_kwargs: Any,
    ):
        unknown = set(worker_kwargs) - (WorkerConfig.option_names() - _OWN_SETTINGS)
        if unknown:
            raise TypeError(
                f"LocalCluster() got unexpected keyword arguments: {', '.join(sorted(unknown))}"
            )
        default_workers, default_threads = default_layout(available_cpus(), processes)
        self.n_workers = default_workers if n_workers is None else int(n_workers)
        self.threads_per_worker = (
            default_threads if threads_per_worker is None else int(threads_per_worker)
        )
        if self.n_workers < 0 or self.threads_per_worker < 1:
            raise ValueError("n_workers must be >= 0 and threads_per_worker >= 1")
        self.processes = processes
        if memory_limit == _AUTO:
            total = psutil.virtual_memory().total
            self.memory_limit = total // max(1, self.n_workers)
        else:
            self.memory_limit = parse_memory(memory_limit)
        self.host = host
        self.scheduler_port = scheduler_port
        self._certificates: tempfile.TemporaryDirectory[str] | None = None
        # Reachable from other machines: TLS unless plain TCP is asked for. The token
        # authenticates peers, so no client certificates: the certificate's fingerprint
        # (in `security.credential`) is all a remote client needs besides the token.
        remote_tls = (
            security is None and processes and protocol in (None, "tls") and not is_loopback(host)
        )
        if security is True or remote_tls:
            self._certificates = tempfile.TemporaryDirectory(prefix="trident-tls-")
            security = Security.self_signed(
                self._certificates.name, require_client_cert=security is True
            )
        elif security is False or security is None:
            security = Security()
        if security.token is None:
            security = security.with_token(secrets.token_urlsafe(24) if token == _AUTO else token)
        self.security = security
        if protocol is None:
            protocol = "tls" if security.tls else "tcp" if processes else "inproc"
        if protocol not in ("tcp", "tls", "inproc"):
            raise ValueError(f"protocol must be 'tcp', 'tls' or 'inproc', got {protocol!r}")
        if protocol == "inproc" and processes:
            raise ValueError("worker processes cannot use the inproc protocol")
        if (protocol == "tls") != security.tls:
            raise ValueError("the tls protocol and TLS security go together")
        self.protocol = protocol
        self.resources = dict(resources or {})
        self.asynchronous = asynchronous
        self.log_level = log_level
        if dashboard_address == _AUTO:
            dashboard_address = f"{host}:{DEFAULT_DASHBOARD_PORT}"
        elif isinstance(dashboard_address, str) and dashboard_address.startswith(":"):
            dashboard_address = f"{host}{dashboard_address}"
        self.dashboard_address = dashboard_address
        self.allowed_failures = allowed_failures
        self.memory_thresholds = memory.MemoryThresholds(
            memory_target_fraction,
            memory_spill_fraction,
            memory_pause_fraction,
            memory_terminate_fraction,
        )
        self.worker_config = WorkerConfig(
            nthreads=self.threads_per_worker,
            memory_limit=self.memory_limit,
            resources=self.resources,
            memory=self.memory_thresholds,
            log_level=log_level,
            local_directory=None if local_directory is None else os.fspath(local_directory),
            heartbeat_interval=heartbeat_interval,
            preload=preload,
            **worker_kwargs,
        )
        self.status = "created"
        self._runtime: ClusterRuntime | None = None
        self._loop: LoopThread | None = None
        self._stopped = threading.Event()
        self._cancel: trio.CancelScope | None = None
        self._in_caller_loop = False
        self._next_name = 0
        self.adaptive: adaptive.Adaptive | None = None
        if not asynchronous:
            self._start_in_loop_thread()

    @property
    def token(self) -> str | None:
        """The cluster token (None: no authentication)."""
        return self.security.token

    # --- specs --------------------------------------------------------------------

    def _specs(self, n: int) -> list[WorkerConfig]:
        names = list(self._runtime.workers) if self._runtime is not None else []
        specs = [self._runtime.workers[name].spec for name in names[:n]] if self._runtime else []
        while len(specs) < n:
            specs.append(attrs.evolve(self.worker_config, name=str(self._next_name)))
            self._next_name += 1
        return specs

    def _make_runtime(self, protocol: str) -> ClusterRuntime:
        if protocol == "inproc":
            from ..comm.transports import unique_inproc_address

            scheduler_address = unique_inproc_address("scheduler")
            worker_listen = None
        else:
            scheduler_address = f"{protocol}://{self.host}:{self.scheduler_port}"
            worker_listen = f"{protocol}://{self.host}:0"
        return ClusterRuntime(
            scheduler_address=scheduler_address,
            processes=self.processes,
            security=self.security,
            worker_listen=worker_listen,
            dashboard_address=self.dashboard_address,
            allowed_failures=self.allowed_failures,
        )

    async def _serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        assert self._runtime is not None
        try:
            with trio.CancelScope() as scope:
                self._cancel = scope
                await self._runtime.serve(self._specs(self.n_workers), task_status=task_status)
        finally:
            self.status = "closed"
            if self._certificates is not None:
                self._certificates.cleanup()
            self._stopped.set()

    # --- starting and stopping ----------------------------------------------------

    def _start_in_loop_thread(self, protocol: str | None = None) -> None:
        self._runtime = self._make_runtime(protocol or self.protocol)
        self._loop = LoopThread.acquire()
        try:
            self._loop.start_service(self._serve)
        except BaseException:
            self._loop.release()
            self._loop = None
            raise
        self.status = "running"

    async def _start_async(self) -> None:
        if self.status != "created":
            return
        if sniffio.current_async_library() == "trio":
            self._runtime = self._make_runtime(self.protocol)
            self._in_caller_loop = True
            self._nursery_manager = trio.open_nursery()
            nursery = await self._nursery_manager.__aenter__()
            try:
                await nursery.start(self._serve)
            except BaseException as exc:
                await self._nursery_manager.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            self.status = "running"
        else:
            protocol = "tls" if self.security.tls else "tcp"  # another loop: no inproc
            await anyio.to_thread.run_sync(self._start_in_loop_thread, protocol)

    def close(self, timeout: float = 10) -> Any:
        """Stop every worker and the scheduler. Idempotent; a coroutine if asynchronous."""
        if self.asynchronous:
            return self._close_async()
        self._close_blocking(timeout)
        return None

    def _close_blocking(self, timeout: float) -> None:
        if self.status == "closed" and self._loop is None:
            return
        if self._loop is not None:
            loop, self._loop = self._loop, None
            if self._cancel is not None:
                loop.call_soon(self._cancel.cancel)
            self._stopped.wait(timeout)
            loop.release()
        self.status = "closed"

    async def _close_async(self) -> None:
        if self._in_caller_loop:
            if self.status == "closed" and self._cancel is None:
                return
            if self._cancel is not None:
                self._cancel.cancel()
                self._cancel = None
                await self._nursery_manager.__aexit__(None, None, None)
            self.status = "closed"
        else:
            await anyio.to_thread.run_sync(self._close_blocking, 10)

    # --- scaling and information ----------------------------------------------------

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
        dask. Replaces an earlier `adapt`; `scale` stops it."""
        if self._runtime is None or self.status != "running":
            raise RuntimeError(f"cannot adapt a cluster that is {self.status}")
        self._stop_adaptive()
        cls = adaptive.Adaptive if Adaptive is None else Adaptive
        scaling = self.adaptive = cls(
            cluster=self,
            interval=interval,
            minimum=minimum,
            maximum=maximum,
            wait_count=wait_count,
            target_duration=target_duration,
            **kwargs,
        )
        self._call_in_loop(self._runtime.spawn, scaling.run)
        return scaling

    def _stop_adaptive(self) -> None:
        if self.adaptive is not None:
            self.adaptive.stop()
            self.adaptive = None

    def _call_in_loop(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` in the cluster's loop: now when called from it, else soon."""
        assert self._runtime is not None
        token = self._runtime.trio_token
        try:
            here = trio.lowlevel.current_trio_token() is token
        except RuntimeError:
            here = False
        if here:
            fn(*args)
        elif token is not None:
            token.run_sync_soon(fn, *args)

    def scale(self, n: int) -> Any:
        """Run exactly `n` workers (starting or stopping some); a coroutine if asynchronous.

        Stops adaptive scaling (`adapt`).
        """
        if n < 0:
            raise ValueError("cannot scale to a negative number of workers")
        self._stop_adaptive()
        if self.asynchronous and self._in_caller_loop:
            return self._scale_async(n)
        if self.asynchronous:
            return anyio.to_thread.run_sync(self._scale_blocking, n)
        self._scale_blocking(n)
        return None

    async def _scale_async(self, n: int) -> None:
        assert self._runtime is not None
        self.n_workers = n
        await self._runtime.scale_to(self._specs(n))

    def _scale_blocking(self, n: int) -> None:
        assert self._loop is not None
        assert self._runtime is not None
        self.n_workers = n
        self._loop.run(self._runtime.scale_to, self._specs(n))

    def scale_up(self, n: int) -> Any:
        """Run at least `n` workers (what `Adaptive` calls); a coroutine if
        asynchronous. Unlike `scale`, adaptive scaling goes on."""
        return self._in_mode(self._scale_up_here, n)

    def scale_down(self, workers: list[str]) -> Any:
        """Stop the workers at these addresses (what `Adaptive` calls once it retired
        them); a coroutine if asynchronous. Workers already retired from the scheduler
        (``retire_workers(..., close=True)``) are given a few seconds to stop by
        themselves; the others are stopped at once, their data lost as when a worker
        dies (retire them first to keep it)."""
        return self._in_mode(self._scale_down_here, list(workers))

    def _in_mode(self, async_fn: Any, *args: Any) -> Any:
        """Run ``async_fn(*args)`` in the cluster's loop as this cluster's mode wants:
        a coroutine (asynchronous) or blocking."""
        if self.asynchronous and self._in_caller_loop:
            return async_fn(*args)
        assert self._runtime is not None
        token = self._runtime.trio_token

        def blocking() -> None:
            trio.from_thread.run(async_fn, *args, trio_token=token)

        if self.asynchronous:
            return anyio.to_thread.run_sync(blocking)
        blocking()
        return None

    async def _scale_up_here(self, n: int) -> None:
        assert self._runtime is not None
        if n > len(self._runtime.workers):
            self.n_workers = n
            await self._runtime.scale_to(self._specs(n))

    async def _scale_down_here(self, addresses: list[str]) -> None:
        runtime = self._runtime
        assert runtime is not None
        leaving = [h for h in runtime.workers.values() if h.address in addresses]
        registered = runtime.scheduler.state.workers
        with trio.move_on_after(adaptive.LEAVE_TIMEOUT):
            for handle in leaving:
                if handle.address not in registered:  # retired: it stops by itself
                    await handle.left.wait()
        staying = [h.spec for h in runtime.workers.values() if h not in leaving]
        self.n_workers = len(staying)
        await runtime.scale_to(staying)

    def get_logs(self, cluster: bool = True, scheduler: bool = True, workers: bool = True) -> Any:
        """Recent log lines: ``{"Cluster": ..., "Scheduler": ..., address: ...}``, one
        string per part, as dask's ``Cluster.get_logs``. A coroutine if asynchronous."""
        from .logs import cluster_logs

        return cluster_logs(self, (cluster, scheduler, workers))

    @property
    def scheduler_address(self) -> str:
        """The scheduler's address (TCP when worker processes or outside clients use it)."""
        return self._runtime.scheduler_address if self._runtime is not None else ""

    @property
    def dashboard_link(self) -> str | None:
        """The dashboard's URL, with the token when the cluster has one; None without one."""
        scheduler = self.scheduler
        address = scheduler.dashboard_address if scheduler is not None else None
        if address is None:
            return None
        return dashboard_url(address, self.scheduler_address, self.token)

    @property
    def workers(self) -> dict[str, WorkerHandle]:
        return dict(self._runtime.workers) if self._runtime is not None else {}

    @property
    def scheduler(self) -> Any:
        """The in-process `Scheduler` actor (for inspection and tests)."""
        return self._runtime.scheduler if self._runtime is not None else None

    def _address_for_client(self, same_loop: bool | None = None) -> str:
        assert self._runtime is not None
        return self._runtime.address_for_caller(same_loop)

    @property
    def loop_thread(self) -> LoopThread | None:
        return self._loop

    def __repr__(self) -> str:
        return (
            f"LocalCluster({self.scheduler_address!r}, workers={len(self.workers)}, "
            f"threads={len(self.workers) * self.threads_per_worker}, status={self.status})"
        )

    # --- context managers -----------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        if self.asynchronous:
            raise TypeError("use 'async with' for an asynchronous LocalCluster")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LocalCluster:
        if not self.asynchronous:
            raise TypeError("use 'with' for a blocking LocalCluster (or asynchronous=True)")
        await self._start_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close_async()

    def __await__(self) -> Generator[Any, None, LocalCluster]:
        async def start() -> LocalCluster:
            await self._start_async()
            return self

        return start().__await__()


register_local_cluster(LocalCluster)


publish(globals())
