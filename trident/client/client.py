"""`Client`: the public face of trident, with the API of dask.distributed's Client.

One class serves both worlds. ``Client(asynchronous=True)`` is used with ``async with``
in trio or asyncio programs and its waiting methods return coroutines. A blocking
``Client()`` runs its engine in trident's background loop thread and its methods block
the calling thread only. Submitting never waits in either mode: tasks are queued and
sent in batches by the event loop.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import html
import logging
import os
import threading
import weakref
from collections.abc import Callable, Generator, Iterable
from types import TracebackType
from typing import Any

import anyio
import attrs
import sniffio

from .. import _local_credentials as local_credentials
from .._dashboard_url import dashboard_url
from .._html import html_table
from .._keys import decode_key, encode_key
from .._loop_thread import in_trio_run
from .._public import publish
from .._scheduler_file import read_scheduler_file, write_scheduler_file
from ..comm.liveness import RECONNECT_TIMEOUT, SCHEDULER_TIMEOUT
from ..protocol import messages as m
from ..security import TOKEN_ENV, Security
from ..sizes import format_bytes, parse_duration
from .actor_handle import Actor
from .admin import worker_names
from .annotations import with_active_annotations
from .base import NO_DEFAULT
from .bridge import OwnLoop
from .calls import CallMethods
from .collections import GraphMethods, use_as_dask_scheduler
from .core import HEARTBEAT_INTERVAL, ClientCore
from .datasets import DatasetMethods
from .events import EventMethods
from .future import Future
from .kernels import KernelMethods
from .local_cluster import LocalClusterLike, start_local_cluster
from .plugins import PluginMethods
from .remote_output import PRINT_TOPIC, WARN_TOPIC, show_print, show_warning
from .structures import futures_of
from .task_group import TaskGroup
from .task_specs import (
    DEFAULT_MAX_CONCURRENCY,
    TaskOptions,
    pickle_function,
    pop_actor_options,
    task_spec,
)

DEFAULT_TIMEOUT = 30.0

_default_client: Client | None = None
#: the client of the innermost `Client.as_current` block in this context
_current_client: contextvars.ContextVar[Client | None] = contextvars.ContextVar(
    "trident_current_client", default=None
)
_default_lock = threading.Lock()
_live_blocking_clients: weakref.WeakSet[Client] = weakref.WeakSet()
#: every started client made with ``set_as_default=True``, oldest first: when the
#: default closes, the newest one still open takes over (as in dask)
_default_candidates: list[weakref.ref[Client]] = []


def _is_open(client: Client | None) -> bool:
    return client is not None and client.status not in ("closing", "closed")


def _newest_open_candidate() -> Client | None:
    """The newest started ``set_as_default`` client still open (call under the lock)."""
    _default_candidates[:] = [ref for ref in _default_candidates if _is_open(ref())]
    return _default_candidates[-1]() if _default_candidates else None


def default_client(c: Client | None = None) -> Client:
    """The default client: `c` itself when given (dask's ``default_client(c)``); inside
    ``with client.as_current():`` that client; else the one most recently created with
    ``set_as_default=True``, or, once it closed, the newest such client still open (as
    dask's).

    Raises `ValueError` if there is none.
    """
    if c is not None:
        return c
    current = _current_client.get()
    if _is_open(current):
        assert current is not None
        return current
    client = _default_client
    if _is_open(client):
        assert client is not None
        return client
    with _default_lock:
        client = _newest_open_candidate()
    if client is None:
        raise ValueError("no trident client is running; create one with trident.Client()")
    return client


def _set_default(client: Client | None) -> None:
    global _default_client
    with _default_lock:
        if client is not None:
            _default_candidates.append(weakref.ref(client))
        _default_client = client
        use_as_dask_scheduler(client)


class Client(KernelMethods, GraphMethods, DatasetMethods, CallMethods, EventMethods, PluginMethods):
    """Connect to a trident cluster and run computations on it.

    Arguments:
        address: a scheduler address (``tcp://host:port``), a `LocalCluster`, or None to
            start a `LocalCluster` owned by this client (extra keyword arguments such as
            ``n_workers``, ``threads_per_worker`` and ``processes`` go to it).
        timeout: seconds to wait for the scheduler when connecting: a scheduler not
            listening yet is tried again until then (`OSError` ``no scheduler at ADDRESS
            after N s (connection refused)``); a host that does not resolve fails at
            once (``cannot resolve HOST``). Inside ``trio.run`` only asynchronous
            clients work (a blocking one raises `RuntimeError` saying so).
        set_as_default: make this the client `Future(key)` and tasks use by default.
        scheduler_file: a JSON file written by `write_scheduler_file` or ``trident up``
            (address, token and TLS files; an explicit `security` takes precedence).
        security: a `Security` (token and TLS files) or a token string, or a
            credential ``TOKEN#tls-sha256=HEX`` (the token and the fingerprint of the
            cluster's TLS certificate, which is then all a ``tls://`` address needs);
            the token (or credential) defaults to ``TRIDENT_TOKEN``, then, for an
            address of a cluster this user runs on this machine, to the token (and TLS
            settings) it recorded in the private runtime directory (see
            `trident._local_credentials` and docs/deploy.md).
        asynchronous: use from async code (``async with Client(asynchronous=True)``).
        name: a name for this client in logs.
        forward_logging: show the ``print`` and ``logging`` output of this client's
            tasks here, prefixed with worker and key (see `forward_logging`).
        heartbeat_interval: milliseconds between the client's heartbeats to the
            scheduler (as in dask; default 1000).
        scheduler_timeout: seconds the scheduler may stay silent before the client
            treats the connection as lost and reconnects (default 60).
        reconnect_timeout: seconds the client keeps trying to reach a lost scheduler;
            then its pending futures fail with `SchedulerLostError` and it closes
            (default 60).
    """

    #: the local cluster this client started or was given, if any
    cluster: LocalClusterLike | None
    _cluster_kwargs: dict[str, Any]

    def __init__(
        self,
        address: str | LocalClusterLike | None = None,
        loop: Any = None,
        timeout: float | str = NO_DEFAULT,
        set_as_default: bool = True,
        scheduler_file: str | None = None,
        security: Security | str | None = None,
        asynchronous: bool = False,
        name: str | None = None,
        heartbeat_interval: float | None = None,
        direct_to_workers: bool | None = None,
        forward_logging: bool = False,
        *,
        scheduler_timeout: float = SCHEDULER_TIMEOUT,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        **cluster_kwargs: Any,
    ):
        if not asynchronous and in_trio_run():
            raise RuntimeError(
                "Client() is a blocking client, and this code runs inside trio.run: use "
                "'async with Client(..., asynchronous=True) as client' and await its "
                "methods (or create the blocking client in a thread)"
            )
        cluster: LocalClusterLike | None = None
        chosen: Security = (
            # A token, or a credential: the token with the TLS certificate's pin.
            security if isinstance(security, Security) else Security().with_credential(security)
        )
        if scheduler_file is not None:
            address, from_file = read_scheduler_file(scheduler_file)
            if not chosen.tls:
                chosen = attrs.evolve(from_file, token=chosen.token or from_file.token)
            elif chosen.token is None:
                chosen = chosen.with_token(from_file.token)
        token = chosen.token
        if isinstance(address, LocalClusterLike):
            cluster = address
            token = token or address.token
        elif address is not None and cluster_kwargs:
            raise TypeError(f"unexpected arguments for a remote cluster: {sorted(cluster_kwargs)}")
        if token is None and (credential := os.environ.get(TOKEN_ENV)):
            from_env = Security().with_credential(credential)
            token = from_env.token
            if chosen.tls_fingerprint is None and from_env.tls_fingerprint is not None:
                chosen = attrs.evolve(chosen, tls_fingerprint=from_env.tls_fingerprint)
        if isinstance(address, str):
            # A cluster of this user on this machine: its recorded token and TLS settings.
            chosen = local_credentials.complete(address, chosen.with_token(token))
            token = chosen.token
        name = name or f"client-{os.getpid()}"
        wait = DEFAULT_TIMEOUT if timeout == NO_DEFAULT else parse_duration(timeout)
        core = ClientCore(
            "",
            name=name,
            token=token,
            timeout=wait,
            callbacks_in_thread=not asynchronous,
            ssl_context=chosen.client_ssl_context() if chosen.tls else None,
            heartbeat_interval=(
                HEARTBEAT_INTERVAL if heartbeat_interval is None else heartbeat_interval / 1000
            ),
            scheduler_timeout=scheduler_timeout,
            reconnect_timeout=reconnect_timeout,
        )
        self._assemble(
            core,
            OwnLoop(asynchronous),
            address=address if isinstance(address, str) else None,
            security=chosen.with_token(token),
            set_as_default=set_as_default,
        )
        self.cluster = cluster
        self._owns_cluster = address is None
        self._cluster_kwargs = cluster_kwargs
        if forward_logging:
            self._core.set_forwarding(None, logging.NOTSET, enabled=True)
        # what tasks show with trident.print / trident.warn (dask's clients do the same)
        self.subscribe_topic(PRINT_TOPIC, show_print)
        self.subscribe_topic(WARN_TOPIC, show_warning)
        if not asynchronous:
            self._start_blocking()

    # --- lifecycle ---------------------------------------------------------------------

    def _start_blocking(self) -> None:
        assert isinstance(self._bridge, OwnLoop)
        loop = self._bridge.acquire()
        try:
            if self._owns_cluster:
                self.cluster = start_local_cluster(**self._cluster_kwargs)
                self._token = self._token or self.cluster.token
            self._core.address = self._address_to_use()
            self._core._token = self._token
            self._adopt_cluster_tls()
            loop.start_service(self._core.serve)
        except BaseException:
            self._teardown_blocking()
            raise
        self._started = True
        _live_blocking_clients.add(self)
        if self._set_as_default:
            _set_default(self)

    def _adopt_cluster_tls(self) -> None:
        """Use the TLS files of a cluster object that has them (for the scheduler and
        for workers reached directly), unless this client was given its own."""
        security = getattr(self.cluster, "security", None)
        if self._core._ssl_context is None and security is not None and security.tls:
            self._core._ssl_context = security.client_ssl_context()

    def _address_to_use(self) -> str:
        if self.cluster is not None:
            if self.cluster.loop_thread is not None and self.cluster.loop_thread is self._loop:
                return self.cluster._address_for_client(same_loop=True)
            if self.cluster.loop_thread is None and self.asynchronous:
                return self.cluster._address_for_client()
            return self.cluster.scheduler_address
        assert self._address is not None
        return self._address

    async def _start_async(self) -> Client:
        if self._started:
            return self
        # An owned cluster is entered first and left last, so the nurseries nest.
        if self._owns_cluster:
            self.cluster = start_local_cluster(asynchronous=True, **self._cluster_kwargs)
            await self.cluster._start_async()
            self._token = self._token or self.cluster.token
        try:
            if self.cluster is not None and self.cluster.loop_thread is not None:
                self._core.address = self.cluster.scheduler_address
            else:
                self._core.address = self._address_to_use()
            self._core._token = self._token
            self._adopt_cluster_tls()
            self._task_group = anyio.create_task_group()
            await self._task_group.__aenter__()
            try:
                await self._task_group.start(self._core.serve)
            except BaseException:
                # Close the task group quietly and raise the original error itself (not
                # an exception group), as `Client(...)` callers expect.
                self._task_group.cancel_scope.cancel()
                await self._task_group.__aexit__(None, None, None)
                self._task_group = None
                raise
        except BaseException:
            if self._owns_cluster and self.cluster is not None:
                with anyio.CancelScope(shield=True):
                    await self.cluster._close_async()
            raise
        self._started = True
        if self._set_as_default:
            _set_default(self)
        return self

    def close(self, timeout: float | str = NO_DEFAULT) -> Any:
        """Close the client (and the cluster it started). Idempotent.

        Pending futures are cancelled. A coroutine for asynchronous clients. The worker's
        client closes with its worker: closing it here does nothing.
        """
        if self._bridge.borrowed:
            return anyio.lowlevel.checkpoint() if self.asynchronous else None
        if self.asynchronous:
            return self._close_async()
        if self._closed:
            return None
        self._closed = True
        wait = self._timeout if timeout == NO_DEFAULT else parse_duration(timeout)
        self._core.close()
        self._core.stopped.wait(wait)
        self._teardown_blocking()
        return None

    def _teardown_blocking(self) -> None:
        _live_blocking_clients.discard(self)
        if self._owns_cluster and self.cluster is not None:
            self.cluster.close()
        if isinstance(self._bridge, OwnLoop):
            self._bridge.release()
        self._unset_default()

    async def _close_async(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._core.close()
        if self._task_group is not None:
            await self._task_group.__aexit__(None, None, None)
            self._task_group = None
        if self._owns_cluster and self.cluster is not None:
            await self.cluster._close_async()
        self._unset_default()

    def _unset_default(self) -> None:
        """This client closed: the newest other default client still open takes over."""
        global _default_client
        with _default_lock:
            if _default_client is not self:
                return
            _default_client = _newest_open_candidate()
            use_as_dask_scheduler(_default_client)

    def shutdown(self) -> Any:
        """Close the client; a cluster it started is closed too."""
        return self.close()

    @contextlib.contextmanager
    def as_current(self) -> Generator[Client, None, None]:
        """``with client.as_current():`` makes this client the one `default_client` and
        `get_client` return inside the block (in this thread or task only: the choice is
        a context variable, so concurrent tasks and threads keep their own), as dask's.
        Blocks nest; the previous choice comes back at the end. Tasks running on
        workers keep using their worker's client."""
        token = _current_client.set(self)
        try:
            yield self
        finally:
            _current_client.reset(token)

    def __enter__(self) -> Client:
        if self.asynchronous:
            raise TypeError("use 'async with' for an asynchronous client")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        if not self.asynchronous:
            raise TypeError("use 'with' for a blocking client (or pass asynchronous=True)")
        return await self._start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close_async()

    def __await__(self) -> Generator[Any, None, Client]:
        return self._start_async().__await__()

    @classmethod
    def current(cls, allow_global: bool = True) -> Client:
        """The client to use here, as dask's ``Client.current()``: the worker's own
        client inside a task, else the default client (see `default_client`).

        Raises `ValueError` when no client is running, and when `allow_global` is
        false (trident has no per-context client, so only the global one is found).
        """
        if not allow_global:
            raise ValueError("no current client: trident keeps only the global default client")
        from .worker_client import get_client

        return get_client()

    def __repr__(self) -> str:
        workers = self._core.workers
        threads = sum(info.nthreads for info in workers.values())
        return (
            f"<Client: scheduler={self.scheduler_address_for_others!r} workers={len(workers)} "
            f"threads={threads} status={self.status}>"
        )

    def _repr_html_(self) -> str:
        """The client as notebooks show it: scheduler, dashboard, workers, threads and
        memory, in a small HTML table."""
        workers = self._core.workers
        threads = sum(info.nthreads for info in workers.values())
        memory = sum(info.memory_limit for info in workers.values())
        link = self.dashboard_link
        dashboard = (
            f'<a href="{html.escape(link)}" target="_blank">{html.escape(link)}</a>'
            if link
            else "off"
        )
        rows = [
            ("Scheduler", html.escape(str(self.scheduler_address_for_others))),
            ("Dashboard", dashboard),
            ("Workers", str(len(workers))),
            ("Threads", str(threads)),
            ("Memory", format_bytes(memory) if memory else "no limit"),
            ("Status", html.escape(str(self.status))),
        ]
        return html_table("Client", rows)

    # --- running things -----------------------------------------------------------

    def submit(
        self,
        func: Callable[..., Any],
        *args: Any,
        key: Any = None,
        workers: Any = None,
        resources: dict[str, float] | None = None,
        retries: int | None = None,
        priority: int = 0,
        fifo_timeout: Any = None,
        allow_other_workers: bool = False,
        pure: bool | None = None,
        timeout: float | None = None,
        actor: bool = False,
        **kwargs: Any,
    ) -> Future:
        """Run ``func(*args, **kwargs)`` on the cluster; return its `Future` at once.

        Futures anywhere in `args`/`kwargs` become dependencies and are replaced by their
        values on the worker. With ``pure=True`` (the default) identical calls share one
        key and run once; ``pure=False`` always makes a new task. `workers` restricts
        placement (addresses or names) unless `allow_other_workers`; `retries` re-runs a
        failing task; higher `priority` runs first; `timeout` is a deadline in seconds
        enforced on the worker (the future then fails with `TimeoutError`).

        With ``actor=True``, `func` is a class: the future's result is an `Actor` handle
        to an instance hosted on a worker (``max_restarts=`` and ``max_concurrency=``
        are then taken from the keyword arguments; see `Client.actor`).

        Raises `SerializationError` at once, naming the path to the culprit (for example
        ``args[1]['conn'] -> _thread.lock``), when the function or an argument cannot
        be pickled.
        """
        if not callable(func):
            raise TypeError("the first argument to submit must be callable")
        self._check_open()
        actor_options = pop_actor_options(kwargs) if actor else None
        options = with_active_annotations(
            TaskOptions(
                priority, retries, workers, allow_other_workers, resources, timeout, actor_options
            )
        )
        function_payload, function_token = pickle_function(func)
        spec = task_spec(
            func,
            function_token,
            args,
            kwargs,
            encode_key(key) if key is not None else None,
            bool(pure if pure is not None else not actor),
            options,
        )
        (state,) = self._core.add_tasks([spec], {function_token: function_payload})
        self._register_submitted([spec.key])
        return Future._adopt(spec.key, self, state)

    def actor(
        self,
        cls: type,
        *args: Any,
        max_restarts: int = 0,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        workers: Any = None,
        resources: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> Actor:
        """Create an actor: an instance of `cls` hosted on a worker; return its handle now.

        Calls made before the actor is up wait for it. `max_restarts` rebuilds the
        actor on another worker when its worker dies (calling ``cls.on_restart(*args,
        **kwargs)`` if the class defines it, else the constructor again).
        `max_concurrency` bounds concurrent ``async def`` method calls; sync methods
        always run one at a time, in order.
        """
        if not isinstance(cls, type):
            raise TypeError(f"actors are made from classes, not {type(cls).__name__}")
        future = self.submit(
            cls,
            *args,
            workers=workers,
            resources=resources,
            actor=True,
            max_restarts=max_restarts,
            max_concurrency=max_concurrency,
            **kwargs,
        )
        return Actor._from_future(future, cls)

    def map(
        self,
        func: Callable[..., Any],
        *iterables: Iterable[Any],
        key: str | list[Any] | None = None,
        workers: Any = None,
        retries: int | None = None,
        resources: dict[str, float] | None = None,
        priority: int = 0,
        allow_other_workers: bool = False,
        fifo_timeout: Any = None,
        pure: bool = True,
        batch_size: int | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> list[Future]:
        """``submit(func, *args)`` for each tuple of `iterables`, sent as one graph.

        `key` may be a list of keys or a prefix for generated ones. Returns the futures
        in input order. The other arguments are those of `submit`; like it, raises
        `SerializationError` for a function or arguments that cannot be pickled.
        """
        if not callable(func):
            raise TypeError("the first argument to map must be callable")
        if not iterables:
            raise TypeError("map needs at least one iterable")
        self._check_open()
        options = with_active_annotations(
            TaskOptions(priority, retries, workers, allow_other_workers, resources, timeout, None)
        )
        function_payload, function_token = pickle_function(func)
        argument_tuples = list(zip(*iterables, strict=False))
        if isinstance(key, (list, tuple)):
            if len(key) != len(argument_tuples):
                raise ValueError(f"map got {len(key)} keys for {len(argument_tuples)} tasks")
            keys: list[str | None] = [encode_key(k) for k in key]
            prefix = None
        else:
            keys = [None] * len(argument_tuples)
            prefix = key
        specs = [
            task_spec(func, function_token, args, kwargs, k, pure, options, prefix)
            for args, k in zip(argument_tuples, keys, strict=True)
        ]
        states = self._core.add_tasks(specs, {function_token: function_payload})
        self._register_submitted([spec.key for spec in specs])
        return [Future._adopt(spec.key, self, st) for spec, st in zip(specs, states, strict=True)]

    def task_group(self, name: str = "task group") -> TaskGroup:
        """A nursery for remote work: ``async with client.task_group() as tg:``.

        Submit through ``tg.submit`` / ``tg.map``. Leaving the block waits for every
        future; a failure cancels the rest on the cluster and raises an
        `ExceptionGroup`; leaving early (an error or a cancellation) cancels the
        unfinished work. Use ``with`` for blocking clients.
        """
        return TaskGroup(self, name)

    # --- results ---------------------------------------------------------------------

    # --- cluster information --------------------------------------------------------------

    def scheduler_info(self, n_workers: int = -1, **kwargs: Any) -> Any:
        """Workers, threads and memory of the cluster, as a dict (dask's keys: see
        `trident.scheduler.summary.scheduler_info`). `n_workers` (as in dask): list only
        the first that many workers (-1: all); the totals still count every worker. A
        coroutine if asynchronous."""
        return self._sync(self._scheduler_info, n_workers)

    async def _scheduler_info(self, n_workers: int) -> dict[str, Any]:
        info: dict[str, Any] = await self._core.request(lambda rid: m.InfoRequest(rid))
        if n_workers >= 0:
            info["workers"] = dict(list(info["workers"].items())[:n_workers])
        return info

    def who_has(self, futures: Any = None) -> Any:
        """The workers holding each future's data: ``{key: [address, ...]}``.

        Without `futures`, every key the scheduler knows (of any client), as in dask: a
        cancelled or released key is not listed. A coroutine if asynchronous.
        """
        keys = [f._key for f in futures_of(futures)] if futures is not None else None
        return self._sync(self._who_has, keys)

    async def _who_has(self, keys: list[str] | None) -> dict[Any, list[str]]:
        found = await self._core.request(lambda rid: m.WhoHasRequest(rid, keys))
        return {decode_key(key): addresses for key, addresses in found.items()}

    def nthreads(self, workers: Any = None) -> dict[str, int]:
        """Threads per worker address (from the client's live view of the cluster);
        awaitable for asynchronous clients, as in dask."""
        names = worker_names(workers)
        return self._answer(
            {
                address: info.nthreads
                for address, info in self._core.workers.items()
                if names is None or address in names or info.name in names
            }
        )

    ncores = nthreads

    def wait_for_workers(self, n_workers: int = 1, timeout: float | str | None = None) -> Any:
        """Block until at least `n_workers` workers are connected; `TimeoutError` after
        `timeout` (seconds, or text such as ``"10s"``)."""
        wait = None if timeout is None else parse_duration(timeout)
        return self._sync(self._core.wait_for_workers, n_workers, wait)

    def restart(self, timeout: float | str = NO_DEFAULT, wait_for_workers: bool = True) -> Any:
        """Forget every task on the cluster and restart every worker that has a nanny.

        The futures of every client become cancelled (``CancelledError: ... the
        cluster was restarted``); resubmitting works as usual. Each worker under a
        nanny (``trident up``, ``trident worker --nanny``) is replaced by a fresh
        process; workers without a nanny keep running with no data. Returns once every
        replaced worker is back (or, with ``wait_for_workers=False``, once the restart
        was ordered). Raises `TimeoutError` after `timeout` seconds (default: the
        client's timeout). A coroutine for asynchronous clients.
        """
        wait = self._timeout if timeout == NO_DEFAULT else parse_duration(timeout)
        return self._sync(self._core.restart, wait, wait_for_workers)

    def write_scheduler_file(self, scheduler_file: str) -> None:
        """Write the scheduler's address, the cluster token and the TLS file paths to a
        JSON file (mode 0600) that ``Client(scheduler_file=...)`` and ``trident worker
        --scheduler-file`` read."""
        write_scheduler_file(
            scheduler_file,
            self.scheduler_address_for_others,
            self._security.with_token(self._token),
        )

    @property
    def dashboard_link(self) -> str | None:
        """The URL of the cluster's dashboard (with the token when the cluster has one).

        None when the scheduler serves no dashboard or the client is not connected.
        """
        address = self._core.dashboard_address
        if address is None:
            return None
        return dashboard_url(address, self._core.address, self._token)

    @property
    def scheduler_address_for_others(self) -> str:
        """An address other processes can reach (TCP even when this client uses inproc)."""
        if self.cluster is not None:
            return self.cluster.scheduler_address
        return self._core.address


@atexit.register
def _close_blocking_clients() -> None:
    for client in list(_live_blocking_clients):
        with contextlib.suppress(Exception):
            client.close(timeout=5)


def current_async_library() -> str | None:
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None


publish(globals())
