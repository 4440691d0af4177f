"""`LocalCluster`: a scheduler and workers on this machine, in one call.

Blocking use starts the cluster at once in trident's background event loop:
``with LocalCluster(n_workers=2) as cluster: ...``. Asynchronous use starts it in the
caller's trio loop (``async with LocalCluster(asynchronous=True)``); under asyncio the
cluster runs in the background loop and is reached over TCP.
"""

from __future__ import annotations

import html
import logging
import math
import os
import secrets
import tempfile
from typing import Any

import attrs
import psutil
import trio

from .._html import html_table
from .._public import publish
from ..client.local_cluster import register_local_cluster
from ..comm.routes import interface_address, is_loopback
from ..security import Security
from ..sizes import parse_memory
from ..worker import memory
from ..worker.config import HEARTBEAT_INTERVAL, WorkerConfig
from . import adaptive
from .manager import START_TIMEOUT, ClusterManager
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


#: dask's ``scheduler_kwargs`` that trident's scheduler takes, and their argument here
_SCHEDULER_KWARGS = {
    "host": "host",
    "port": "scheduler_port",
    "protocol": "protocol",
    "dashboard_address": "dashboard_address",
}


def _dask_placement(
    host: str,
    scheduler_port: int,
    protocol: str | None,
    dashboard_address: Any,
    ip: str | None,
    interface: str | None,
    scheduler_kwargs: dict[str, Any] | None,
) -> tuple[str, int, str | None, Any]:
    """`host`, `scheduler_port`, `protocol` and `dashboard_address` once dask's ways to
    give them (``ip=``, ``interface=``, ``scheduler_kwargs=``, ``protocol="tcp://"``)
    are applied."""
    settings: dict[str, Any] = {
        "host": host,
        "scheduler_port": scheduler_port,
        "protocol": protocol,
        "dashboard_address": dashboard_address,
    }
    extra = dict(scheduler_kwargs or {})
    unknown = set(extra) - set(_SCHEDULER_KWARGS)
    if unknown:
        raise TypeError(
            f"LocalCluster(scheduler_kwargs=...) has settings trident's scheduler does not "
            f"take: {', '.join(sorted(unknown))} (it takes {', '.join(_SCHEDULER_KWARGS)})"
        )
    for key, value in extra.items():
        settings[_SCHEDULER_KWARGS[key]] = value
    if ip is not None:
        settings["host"] = ip
    if interface is not None:
        settings["host"] = interface_address(interface)
    protocol = settings["protocol"]
    if isinstance(protocol, str) and protocol.endswith("://"):
        settings["protocol"] = protocol[: -len("://")]
    return (
        settings["host"],
        settings["scheduler_port"],
        settings["protocol"],
        settings["dashboard_address"],
    )


class LocalCluster(ClusterManager):
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
        name: the cluster's name (`name`); a random one by default.
        silence_logs: dask's way to set `log_level`: a level (``logging.ERROR``,
            ``"error"``) sets it; True or False leave it.
        ip: dask's former name of `host`.
        interface: a network interface (``"eth0"``, ``"lo"``) whose address is `host`.
        scheduler_kwargs: dask's scheduler settings that trident's scheduler has:
            ``host``, ``port`` (`scheduler_port`), ``protocol``, ``dashboard_address``
            (`TypeError` for others).
        worker_dashboard_address: accepted for dask's sake; trident workers serve no
            dashboard of their own (the scheduler's shows every worker).
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
        name: str | None = None,
        silence_logs: int | str | bool = True,
        ip: str | None = None,
        interface: str | None = None,
        scheduler_kwargs: dict[str, Any] | None = None,
        worker_dashboard_address: str | int | None = None,
        **worker_kwargs: Any,
    ):
        host, scheduler_port, protocol, dashboard_address = _dask_placement(
            host, scheduler_port, protocol, dashboard_address, ip, interface, scheduler_kwargs
        )
        if not isinstance(silence_logs, bool):
            log_level = (
                logging.getLevelName(silence_logs)
                if isinstance(silence_logs, int)
                else str(silence_logs).upper()
            )
        if "death_timeout" in worker_kwargs:
            worker_kwargs.setdefault("reconnect_timeout", worker_kwargs.pop("death_timeout"))
        self.name = name if name is not None else secrets.token_hex(4)
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
        self._runtime: ClusterRuntime | None = None
        super().__init__(security=security, n_workers=self.n_workers, asynchronous=asynchronous)
        self._start()

    # --- the manager's hooks -----------------------------------------------------------

    def _use_other_loop(self) -> None:
        self.protocol = "tls" if self.security.tls else "tcp"  # another loop: no inproc

    async def _start_scheduler(self) -> str:
        assert self._nursery is not None
        self._runtime = self._make_runtime(self.protocol)
        await self._nursery.start(self._runtime.serve)
        return self._runtime.scheduler_address

    async def _start_worker(self, name: str) -> WorkerHandle:
        runtime = self._runtime
        assert runtime is not None
        return await runtime.start_worker(attrs.evolve(self.worker_config, name=name))

    async def _scale_to(self, count: int) -> None:
        await super()._scale_to(count)
        runtime = self._runtime
        assert runtime is not None
        with trio.fail_after(START_TIMEOUT):  # every new worker is known to the scheduler
            await runtime.scheduler.wait_for_workers(len(runtime.workers))

    async def _stop_worker(self, name: str, handle: WorkerHandle) -> None:
        assert self._runtime is not None
        self._runtime.stop_worker(handle)

    async def _retire_before_stop(self, addresses: list[str]) -> None:
        """`scale` down stops local workers at once (their results are lost, as when a
        worker dies): retire them first to keep their data."""

    async def _scale_down_here(self, addresses: list[str]) -> None:
        """Workers already retired from the scheduler (``retire_workers(...,
        close=True)``) are given a few seconds to stop by themselves first."""
        runtime = self._runtime
        assert runtime is not None
        leaving = [h for h in runtime.workers.values() if h.address in addresses]
        registered = runtime.scheduler.state.workers
        with trio.move_on_after(adaptive.LEAVE_TIMEOUT):
            for handle in leaving:
                if handle.address not in registered:  # retired: it stops by itself
                    await handle.left.wait()
        await super()._scale_down_here(addresses)

    def _closed(self) -> None:
        if self._certificates is not None:
            self._certificates.cleanup()

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

    # --- information ------------------------------------------------------------------

    def scale_down(self, workers: list[str]) -> Any:
        """Stop the workers at these addresses (what `Adaptive` calls once it retired
        them); a coroutine if asynchronous. Workers already retired from the scheduler
        (``retire_workers(..., close=True)``) are given a few seconds to stop by
        themselves; the others are stopped at once, their data lost as when a worker
        dies (retire them first to keep it)."""
        return super().scale_down(workers)

    @property
    def scheduler_address(self) -> str:
        """The scheduler's address (TCP when worker processes or outside clients use it)."""
        return self._runtime.scheduler_address if self._runtime is not None else ""

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

    def __repr__(self) -> str:
        return (
            f"LocalCluster({self.scheduler_address!r}, workers={len(self.workers)}, "
            f"threads={len(self.workers) * self.threads_per_worker}, status={self.status})"
        )

    def _repr_html_(self) -> str:
        """The cluster as notebooks show it: scheduler, dashboard, workers and threads."""
        link = self.dashboard_link
        rows = [
            ("Scheduler", html.escape(str(self.scheduler_address))),
            (
                "Dashboard",
                f'<a href="{html.escape(link)}" target="_blank">{html.escape(link)}</a>'
                if link
                else "off",
            ),
            ("Workers", str(len(self.workers))),
            ("Threads", str(len(self.workers) * self.threads_per_worker)),
            ("Status", html.escape(str(self.status))),
        ]
        return html_table("LocalCluster", rows)


register_local_cluster(LocalCluster)


publish(globals())
