"""`CallMethods`: `Client.sync`, `run_coroutine`, `get_restrictions`, `retry` and
`restart_workers`, the calls real dask code makes beside the reference's core.

Each is a thin layer over what the client already does: `sync` runs a coroutine
function through the client's bridge, `run_coroutine` is `Client.run` for coroutine
functions, `retry` resets the futures here and has the scheduler run the erred tasks
again, `restart_workers` has the workers' nannies replace them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .._exceptions import SchedulerError
from ..protocol import messages as m
from .admin import ClusterAdministration, worker_names
from .future import ERROR
from .structures import futures_of


def _keys_of(collection: Any) -> list[Any]:
    from dask.core import flatten

    return list(flatten(collection.__dask_keys__()))


def _is_dask_collection(value: Any) -> bool:
    return hasattr(value, "__dask_graph__") and hasattr(value, "__dask_keys__")


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return [item for part in value for item in _flat(part)]
    return [value]


class CallMethods(ClusterAdministration):
    """See the module docstring."""

    def sync(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``func(*args, **kwargs)`` in the client's event loop, as dask's
        ``Client.sync`` does.

        For an asynchronous client this returns what `func` returns (a coroutine to
        await, in the caller's loop); a blocking client runs it in its loop thread (a
        trio loop: `func` may use trio or anyio, not asyncio) and returns its result,
        awaiting it if it is awaitable. ``asynchronous=`` and ``callback_timeout=``
        (seconds) are accepted as in dask.
        """
        asynchronous = kwargs.pop("asynchronous", None)
        timeout = kwargs.pop("callback_timeout", None)
        if asynchronous or (asynchronous is None and self.asynchronous):
            return func(*args, **kwargs)

        async def call() -> Any:
            import anyio

            with anyio.fail_after(timeout):
                value = func(*args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
                return value

        return self._sync(call)

    def run_coroutine(
        self, function: Callable[..., Any], *args: Any, wait: bool = True, **kwargs: Any
    ) -> Any:
        """Run the coroutine function ``function(*args, **kwargs)`` on every worker, in
        its event loop; return ``{address: result}`` (None at once with ``wait=False``).

        ``workers=`` restricts it as for `Client.run`. Raises `TypeError` when
        `function` is not a coroutine function.
        """
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"run_coroutine needs a coroutine function, not {function!r}")
        return self.run(function, *args, wait=wait, **kwargs)

    @classmethod
    def get_restrictions(
        cls, collections: Any, workers: Any, allow_other_workers: Any
    ) -> tuple[dict[Any, list[str]], list[Any]]:
        """The placement restrictions that ``compute`` / ``persist`` derive from their
        `workers` and `allow_other_workers` arguments, as dask computes them.

        `workers` is an address or name, a list of them (for every key of
        `collections`), or a dict ``{collection or tuple of collections: workers}``.
        Returns ``(restrictions, loose_restrictions)``: ``{key: [worker, ...]}`` and the
        keys that may still run elsewhere (every restricted key when
        ``allow_other_workers=True``; the keys of the collections it lists otherwise).
        """
        groups: list[tuple[Any, Any]] = []
        if isinstance(workers, (str, tuple, list)):
            groups = [(tuple(_flat(collections)), workers)]  # collections may be unhashable
        elif isinstance(workers, dict):
            groups = list(workers.items())
        restrictions: dict[Any, list[str]] = {}
        if groups:
            for group, chosen in groups:
                names = [chosen] if isinstance(chosen, str) else list(chosen)
                members = [group] if _is_dask_collection(group) else _flat(group)
                for collection in members:
                    for key in _keys_of(collection):
                        restrictions[key] = names
        if allow_other_workers is True:
            loose = list(restrictions)
        elif allow_other_workers:
            loose = list(
                dict.fromkeys(key for c in _flat(allow_other_workers) for key in _keys_of(c))
            )
        else:
            loose = []
        return restrictions, loose

    def retry(self, futures: Any, asynchronous: bool | None = None) -> Any:
        """Run the erred tasks of `futures` again, with the erred tasks they depend on.

        Their futures become pending here and finish (or fail) anew; futures that did
        not fail are left alone. A coroutine for asynchronous clients.
        """
        core = self._core
        erred = [f for f in futures_of(futures) if f._state.status == ERROR]
        for future in erred:
            core.transition(future._state, future._state.reset)
        keys = [f.key for f in erred]
        return self._sync(core.request, lambda rid: m.RetryKeys(rid, keys))

    def restart_workers(
        self, workers: list[str], timeout: float | None = None, raise_for_error: bool = True
    ) -> Any:
        """Have the nannies of `workers` (addresses or names) replace those processes.

        Tasks they were running and results only they held are recomputed elsewhere, as
        for any worker that leaves; other workers and tasks are untouched. Returns
        ``{worker: "OK"}`` once each was replaced. Raises `ValueError` when a worker is
        unknown or has no nanny (then none is restarted; with ``raise_for_error=False``
        the error is the value of each worker instead) and `TimeoutError` after
        `timeout` seconds. A coroutine for asynchronous clients.
        """
        names = worker_names(workers) or []
        return self._sync(self._restart_workers, names, timeout, raise_for_error)

    async def _restart_workers(
        self, names: list[str], timeout: float | None, raise_for_error: bool
    ) -> dict[str, Any]:
        import anyio

        try:
            with anyio.fail_after(timeout):
                replaced = await self._core.request(lambda rid: m.RestartWorkersRequest(rid, names))
        except SchedulerError as exc:
            error = ValueError(str(exc))
            if raise_for_error:
                raise error from None
            return dict.fromkeys(names, error)
        return {name: replaced.get(name, "OK") for name in names}
