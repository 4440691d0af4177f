"""`ClusterAdministration`: the `Client` methods that inspect and manage the cluster.

`Client` inherits these methods. Questions about data and placement go to the
scheduler; questions about what workers are doing (`call_stack`, `stacks`, `profile`,
`get_versions`) and `run` go straight to each worker; logs, forwarded task output and
the replay of failures live here too. Every method blocks in a blocking client and
returns a coroutine in an asynchronous one.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import logging
import re
import socket
from collections.abc import Callable, Collection
from typing import Any

import anyio
import trio

from .._keys import decode_key, encode_key
from .._profile import merge
from .._versions import describe_mismatches, local_versions, version_mismatches
from ..comm.rpc import PeerUnavailable
from ..protocol import messages as m
from ..protocol.serialize import dumps, loads
from . import dump, replay, transfer
from .base import DONE, ClientBase
from .future import load_traceback
from .structures import futures_of
from .transfer import resolve_workers

ON_ERROR = ("raise", "return", "ignore")


def worker_names(workers: Any) -> list[str] | None:
    """Worker addresses or names as a list of strings (None stays None)."""
    if workers is None:
        return None
    if isinstance(workers, (str, int)):
        workers = [workers]
    return [str(w) for w in workers]


def restriction_names(workers: Any) -> list[str] | None:
    """`worker_names` for task restrictions: each host name also stands for its
    addresses, so ``workers="localhost"`` or a machine's name matches every worker on
    that host (the scheduler matches addresses, names and the hosts of addresses)."""
    names = worker_names(workers)
    if names is None:
        return None
    found = dict.fromkeys(names)
    for name in names:
        found.update(dict.fromkeys(_host_addresses(name)))
    return list(found)


_HOST_NAME = re.compile(r"[A-Za-z0-9.-]*[A-Za-z][A-Za-z0-9.-]*")


@functools.lru_cache(maxsize=256)
def _host_addresses(name: str) -> tuple[str, ...]:
    """The IP addresses of `name` when it looks like a host name (not an address, not
    an IP, not a number), else none; cached, as restrictions repeat."""
    if not _HOST_NAME.fullmatch(name):
        return ()
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return ()
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def _keys(futures: Any) -> list[str]:
    """The wire keys of futures (and of keys given as such) anywhere in `futures`."""
    if futures is None:
        return []
    if isinstance(futures, (str, bytes, int, float)):
        return [encode_key(futures)]
    found = [f._key for f in futures_of(futures)]
    if isinstance(futures, (list, tuple, set, frozenset)):
        found.extend(encode_key(k) for k in futures if isinstance(k, (str, bytes, int, tuple)))
    return list(dict.fromkeys(found))


def _seconds(moment: Any) -> float | None:
    """Wall-clock seconds from a number, a `datetime`, or None."""
    if moment is None or isinstance(moment, (int, float)):
        return moment
    if isinstance(moment, datetime.datetime):
        return moment.timestamp()
    raise TypeError(f"expected seconds since the epoch or a datetime, got {moment!r}")


def load_run_error(result: m.RunResult, where: str) -> BaseException:
    """The exception a `RunResult` carries, with its remote traceback and a note."""
    assert result.error is not None
    return load_error(result.error, where)


def load_error(error: m.ErrorInfo, where: str) -> BaseException:
    """The exception of `error`, with its remote traceback and a note naming `where`."""
    try:
        exc = loads(error.exception)
    except Exception as unloadable:
        exc = RuntimeError(f"{error.text.strip()} (unloadable: {unloadable!r})")
    tb = load_traceback(error)
    if tb is not None:
        exc = exc.with_traceback(tb)
    exc.add_note(f"trident: raised on {where}")
    return exc


def _function_call(
    function: Callable[..., Any], args: tuple, kwargs: dict[str, Any], wait: bool
) -> Callable[[int], m.RunFunction]:
    """Pickle the call once; the result builds its `RunFunction` for a request id."""
    payload = dumps(function)
    arguments = dumps((args, kwargs))
    return lambda request_id: m.RunFunction(request_id, payload, arguments, wait)


class ClusterAdministration(ClientBase):
    """Mixed into `Client`: cluster information and administration (see the module)."""

    # --- where data lives, what workers do -------------------------------------------------

    def has_what(self, workers: Any = None, **kwargs: Any) -> Any:
        """The keys each worker holds: ``{address: [key, ...]}``.

        `workers` restricts the answer to some workers (addresses or names).
        """
        names = worker_names(workers)
        return self._sync(self._keys_by_worker, lambda rid: m.HasWhatRequest(rid, names))

    def processing(self, workers: Any = None) -> Any:
        """The tasks assigned to each worker and not finished: ``{address: [key, ...]}``.

        Includes the tasks waiting for a thread there and the seceded ones.
        """
        names = worker_names(workers)
        return self._sync(self._keys_by_worker, lambda rid: m.ProcessingRequest(rid, names))

    async def _keys_by_worker(self, build: Callable[[int], Any]) -> dict[str, list[Any]]:
        """The answer ``{address: [wire key, ...]}`` to a request, with the user's keys."""
        found = await self._core.request(build)
        return {address: [decode_key(key) for key in keys] for address, keys in found.items()}

    def nbytes(self, keys: Any = None, summary: bool = True, **kwargs: Any) -> Any:
        """Bytes of the results in cluster memory.

        ``{key: bytes}`` for `keys` (futures or keys; every key when None), or with
        ``summary=True`` (the default, as in dask) ``{prefix: bytes}`` summed per key
        prefix (``inc`` for ``inc-1f3a...``).
        """
        wanted = _keys(keys) if keys is not None else None
        return self._sync(self._nbytes, wanted, bool(summary))

    async def _nbytes(self, keys: list[str] | None, summary: bool) -> dict[Any, int]:
        found = await self._core.request(lambda rid: m.NbytesRequest(rid, keys, summary))
        return found if summary else {decode_key(key): n for key, n in found.items()}

    def stacks(self, workers: Any = None) -> Any:
        """The tasks waiting for a thread on each worker, in the order they will start:
        ``{address: [key, ...]}``."""
        return self._sync(self._stacks, worker_names(workers))

    async def _stacks(self, workers: list[str] | None) -> dict[str, list[Any]]:
        found = await self._ask_workers(workers, lambda rid: m.TaskQueueRequest(rid))
        return {address: [decode_key(key) for key in keys] for address, keys in found.items()}

    def call_stack(self, futures: Any = None, keys: Any = None) -> Any:
        """The call stacks of running tasks: ``{address: {key: [frame, ...]}}``.

        Only tasks running now in a worker thread appear (``async def`` tasks and tasks
        waiting for a thread do not); each frame is a line as `traceback.format_list`
        renders it, outermost first, starting at the task's function. `futures` and
        `keys` select the tasks (all running tasks when both are None).
        """
        wanted = _keys(futures) + _keys(keys) if futures is not None or keys is not None else None
        return self._sync(self._call_stack, wanted)

    async def _call_stack(self, keys: list[str] | None) -> dict[str, dict[str, list[str]]]:
        processing = await self._core.request(lambda rid: m.ProcessingRequest(rid, None))
        wanted = set(keys) if keys is not None else None
        addresses = [
            address
            for address, running in processing.items()
            if running and (wanted is None or wanted.intersection(running))
        ]
        if not addresses:
            return {}
        stacks = await self._ask_workers(addresses, lambda rid: m.CallStackRequest(rid, keys))
        return {
            address: {decode_key(key): frames for key, frames in found.items()}
            for address, found in stacks.items()
            if found
        }

    async def _ask_workers(
        self, workers: list[str] | None, build: Callable[[int], Any]
    ) -> dict[str, Any]:
        """Send ``build(request_id)`` to each chosen worker; their `Reply` values by
        address (unreachable workers are left out)."""
        self._core.check_running()
        targets = resolve_workers(self._core.workers, workers) if self._core.workers else []
        peers = self._core.peers
        answers: dict[str, Any] = {}

        async def ask(address: str) -> None:
            try:
                reply = await peers.request(address, build)
            except PeerUnavailable:
                return
            if isinstance(reply, m.Reply) and reply.error is None:
                answers[address] = reply.value

        async with anyio.create_task_group() as tg:
            for address in targets:
                tg.start_soon(ask, address)
        return {address: answers[address] for address in targets if address in answers}

    def get_versions(self, check: bool = False, packages: list[str] | None = None) -> Any:
        """The versions of Python, trident and the packages it uses, in every process.

        Returns ``{"client": v, "scheduler": v, "workers": {address: v}}`` where each
        ``v`` is ``{"host": {...}, "packages": {name: version or None}}``; `packages`
        adds more distributions to report. With ``check=True`` raises `ValueError`
        listing the packages whose versions differ between processes.
        """
        return self._sync(self._get_versions, bool(check), tuple(packages or ()))

    async def _get_versions(self, check: bool, packages: tuple[str, ...]) -> dict[str, Any]:
        names = list(packages)
        scheduler = await self._core.request(lambda rid: m.VersionsRequest(rid, names))
        workers = await self._ask_workers(None, lambda rid: m.VersionsRequest(rid, names))
        versions = {
            "client": local_versions(packages),
            "scheduler": scheduler,
            "workers": workers,
        }
        if check:
            mismatches = version_mismatches(versions)
            if mismatches:
                raise ValueError(
                    "package versions differ between processes:\n" + describe_mismatches(mismatches)
                )
        return versions

    def profile(
        self,
        key: str | None = None,
        start: Any = None,
        stop: Any = None,
        workers: Any = None,
        merge_workers: bool = True,
    ) -> Any:
        """Where running sync tasks spent their time, from stacks sampled every 10 ms.

        `key` selects tasks by prefix (``"inc"``, or a whole key for its prefix; all
        tasks when None); `start` and `stop` (seconds since the epoch, or datetimes)
        bound the time range (each worker keeps about ten minutes). Returns one profile
        tree merged over `workers` (all when None), or ``{address: tree}`` with
        ``merge_workers=False``. Trees have dask's shape: ``{"identifier", "count",
        "description": {"filename", "name", "line_number", "line"}, "children":
        {identifier: tree}}``, one node per function (see `trident.worker.profiling`).
        """
        request = (key, _seconds(start), _seconds(stop))
        return self._sync(self._profile, worker_names(workers), request, bool(merge_workers))

    async def _profile(
        self,
        workers: list[str] | None,
        request: tuple[str | None, float | None, float | None],
        merge_workers: bool,
    ) -> Any:
        key, start, stop = request
        trees = await self._ask_workers(
            workers, lambda rid: m.ProfileRequest(rid, key, start, stop)
        )
        return merge(*trees.values()) if merge_workers else trees

    # --- running functions outside the task system ---------------------------------------

    def run(
        self,
        function: Callable[..., Any],
        *args: Any,
        workers: Any = None,
        wait: bool = True,
        nanny: bool = False,
        on_error: str = "raise",
        **kwargs: Any,
    ) -> Any:
        """Call ``function(*args, **kwargs)`` on every worker (or on `workers`), outside
        the task system; return ``{address: result}``.

        The function runs in the worker's event loop, as in dask: a sync function blocks
        the worker while it runs (keep it short; submit long work as a task). A
        coroutine function is awaited there; with ``wait=False`` it is started and
        `run` returns None at once. A parameter named ``trident_worker`` (or dask's
        ``dask_worker``) receives the `Worker` object. With ``nanny=True`` it runs in
        each worker's nanny process instead (the parameter then receives the `Nanny`).

        `on_error`: ``"raise"`` (the first error is raised), ``"return"`` (the
        exception is that worker's result) or ``"ignore"`` (failed workers are left
        out). A worker that cannot be reached fails with `ConnectionError`.
        """
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        build = _function_call(function, args, kwargs, bool(wait))
        return self._sync(
            self._run, build, worker_names(workers), bool(nanny), on_error, bool(wait)
        )

    async def _run(
        self,
        build: Callable[[int], m.RunFunction],
        workers: list[str] | None,
        nanny: bool,
        on_error: str,
        wait: bool,
    ) -> dict[str, Any] | None:
        if nanny:
            answer = await self._core.request(lambda rid: m.RunOnNannies(build(rid), workers))
            results: dict[str, m.RunResult | BaseException] = dict(answer.results)
        else:
            results = await self._run_on_workers(build, workers)
        values: dict[str, Any] = {}
        for address, result in results.items():
            error: BaseException
            if isinstance(result, BaseException):
                error = result
            elif result.error is not None:
                error = load_run_error(result, f"worker {address}")
            else:
                assert result.value is not None
                values[address] = loads(result.value)
                continue
            if on_error == "raise":
                raise error
            if on_error == "return":
                values[address] = error
        return values if wait else None

    async def _run_on_workers(
        self, build: Callable[[int], m.RunFunction], workers: list[str] | None
    ) -> dict[str, m.RunResult | BaseException]:
        self._core.check_running()
        targets = resolve_workers(self._core.workers, workers) if self._core.workers else []
        peers = self._core.peers
        results: dict[str, m.RunResult | BaseException] = {}

        async def run_on(address: str) -> None:
            try:
                results[address] = await peers.request(address, build)
            except PeerUnavailable as exc:
                results[address] = ConnectionError(f"cannot reach worker {address}: {exc}")

        async with anyio.create_task_group() as tg:
            for address in targets:
                tg.start_soon(run_on, address)
        return {address: results[address] for address in targets}

    def run_on_scheduler(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``function(*args, **kwargs)`` in the scheduler's process and return its
        result (raising what it raised).

        It runs in the scheduler's event loop (a coroutine function is awaited); a
        parameter named ``trident_scheduler`` (or dask's ``dask_scheduler``) receives
        the `Scheduler` object. This is the one place where the scheduler unpickles
        what a client sends (clients are authenticated first).
        """
        build = _function_call(function, args, kwargs, True)
        return self._sync(self._run_on_scheduler, build)

    async def _run_on_scheduler(self, build: Callable[[int], m.RunFunction]) -> Any:
        result = await self._core.request(lambda rid: m.RunOnScheduler(build(rid)))
        if result.error is not None:
            raise load_run_error(result, "the scheduler")
        return loads(result.value)

    # --- moving data -----------------------------------------------------------------

    def replicate(
        self, futures: Any, n: int | None = None, workers: Any = None, **kwargs: Any
    ) -> Any:
        """Keep `n` copies of each future's data among `workers` (every worker when
        None; `n` None: a copy on each of them), copying or dropping copies; returns
        once done. Copies let more tasks read the data without a transfer and survive
        the loss of a worker; workers that join later get none. Actors are not copied.
        """
        keys = _keys(futures)
        names = worker_names(workers)
        count = None if n is None else int(n)
        return self._sync(
            self._core.request, lambda rid: m.ReplicateRequest(rid, keys, count, names)
        )

    def rebalance(self, futures: Any = None, workers: Any = None, **kwargs: Any) -> Any:
        """Move data between `workers` (all when None) so that each holds about the same
        bytes of the futures' data (all data when `futures` is None); returns once done.
        A key is copied first and dropped from its old worker only once the copy is in
        place. Actors never move.
        """
        keys = _keys(futures) if futures is not None else None
        names = worker_names(workers)
        return self._sync(self._core.request, lambda rid: m.RebalanceRequest(rid, keys, names))

    def retire_workers(
        self, workers: Any = None, close_workers: bool = False, **kwargs: Any
    ) -> Any:
        """Remove `workers` from the cluster without losing data; return ``{address:
        info}`` of the workers retired.

        The data only they hold is copied to the other workers first; the tasks they
        run are placed elsewhere; then each is removed and stops. Without `workers`,
        the idle workers the cluster can spare are retired (it keeps at least one, and
        enough memory for twice its data). A worker under a nanny is restarted by it
        as a fresh, empty worker, unless ``close_workers=True``, which stops the nanny
        too. An actor on a retired worker follows its restart rules, as when its
        worker dies (`max_restarts`).
        """
        names = worker_names(workers)
        return self._sync(
            self._core.request,
            lambda rid: m.RetireWorkersRequest(rid, names, bool(close_workers)),
        )

    def upload_file(self, filename: str, load: bool = True) -> Any:
        """Send a ``.py``, ``.zip``, ``.egg`` or ``.pyz`` file to every worker and
        import it there, so tasks can import it; workers that join later get it too.

        Returns once every current worker has it; raises `SchedulerError` naming the
        workers where importing failed. Uploading a file again replaces it (its modules
        are reloaded). With ``load=False`` the file is only put on the workers' path.
        """
        return self._sync(self._upload_file, str(filename), bool(load))

    async def _upload_file(self, filename: str, load: bool) -> None:
        data = await anyio.Path(filename).read_bytes()
        name = anyio.Path(filename).name
        await self._core.request(lambda rid: m.UploadFile(rid, name, data, load))

    # --- task output, logs and failures -------------------------------------------------

    def forward_logging(self, logger_name: str | None = None, level: int = logging.NOTSET) -> Any:
        """Show the output of this client's tasks in this process, from now on.

        Whatever the tasks ``print`` appears on this process's stdout (or stderr) and
        records of the logger `logger_name` (None: every logger) and its children at
        `level` or above are emitted again on the same logger here; both are prefixed
        with ``[worker key]``. Records are forwarded when the logger on the worker lets
        them through (its effective level). Takes effect at once; in an asynchronous
        client the return value may be awaited (it is already done).
        """
        self._core.set_forwarding(logger_name, level, enabled=True)
        return DONE if self.asynchronous else None

    def unforward_logging(self, logger_name: str | None = None) -> Any:
        """Stop forwarding records of `logger_name`; printed output stops with the last one."""
        self._core.set_forwarding(logger_name, logging.NOTSET, enabled=False)
        return DONE if self.asynchronous else None

    def get_scheduler_logs(self, n: int | None = None) -> Any:
        """The scheduler's last `n` log records (all it keeps when None), oldest first.

        Returns a list of ``(level name, message)`` tuples (a coroutine if asynchronous).
        The scheduler keeps the records its logger lets through.
        """
        return self._sync(self._scheduler_logs, n)

    async def _scheduler_logs(self, n: int | None) -> list[tuple[str, str]]:
        records = await self._core.request(lambda rid: m.LogsRequest(rid, n))
        return [(level, text) for level, text in records]

    def dump_cluster_state(
        self, filename: str = "dump", exclude: Collection[str] = (), format: str = "msgpack"
    ) -> Any:
        """Write the scheduler's and every worker's state, each with its log of recent
        events, to ``filename + ".msgpack.gz"`` or ``filename + ".yaml"`` (`format`), for
        post-mortems; `exclude` names task fields to leave out. Returns the path written
        (a coroutine if asynchronous). See `trident.client.dump`."""
        return self._sync(dump.dump_cluster_state, self._core, filename, exclude, format)

    def get_worker_logs(
        self, n: int | None = None, workers: Any = None, nanny: bool = False
    ) -> Any:
        """The last `n` log records of each worker: ``{address: [(level, message), ...]}``.

        `workers` restricts the answer to some workers (addresses or names); a worker
        that cannot be reached is left out. A coroutine if asynchronous.
        """
        return self._sync(transfer.worker_logs, self._core, n, worker_names(workers))

    def get_futures_error(self, future: Any) -> Any:
        """``(function, args, kwargs, deps)`` of the task that caused `future` to fail.

        Follows the error to the task that raised it (maybe a dependency of `future`).
        Futures among its arguments appear as their keys, which `deps` lists; nothing is
        fetched or run. `future` may be a collection of futures (the first failed one
        counts). Raises `ValueError` if none failed. A coroutine if asynchronous.
        """
        return self._sync(replay.futures_error, self._client, future)

    def recreate_error_locally(self, future: Any) -> Any:
        """Run the task that caused `future` to fail here, so its exception is raised in
        this process (and ``pdb`` / ``%debug`` can inspect it).

        Its inputs are fetched from the cluster (recomputed if they were released). With
        a blocking client the function runs in the calling thread; with an asynchronous
        one this is a coroutine that runs it in the event loop. Raises `ValueError` if
        no future failed.
        """
        if self.asynchronous:
            return replay.recreate_async(self._client, future)
        function, args, kwargs = self._sync(replay.failed_call, self._client, future)
        if inspect.iscoroutinefunction(function):
            return trio.run(functools.partial(function, *args, **kwargs))
        return function(*args, **kwargs)
