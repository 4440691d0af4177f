"""`ResultMethods`: the `Client` methods that move values: `gather`, `scatter`, `cancel`,
and the blocking waits behind `Future.result`.

Mixed into `Client`; built on `ClientBase`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .._keys import encode_key
from . import transfer
from .admin import worker_names
from .base import NO_DEFAULT, ClientBase
from .future import FINISHED, PENDING, Future, FutureState
from .structures import futures_of, substitute


class ResultMethods(ClientBase):
    """Mixed into `Client`: results in, data out (see the module docstring)."""

    def _wait_blocking(self, state: FutureState, timeout: float | None) -> None:
        if state.status != PENDING:
            return
        if self._core.in_loop_thread:
            raise RuntimeError("cannot block on a future inside the client's event loop")
        with self._waiting():
            done = state.wait_blocking(self._core.lock, timeout)
        if not done:
            raise TimeoutError(f"future {state.key!r} is not done after {timeout} s")

    def _result_blocking(self, state: FutureState, timeout: float | None) -> Any:
        self._wait_blocking(state, timeout)
        if state.status == FINISHED and state.payload is not None:
            return self._core.load(state.payload)
        if state.status != FINISHED:
            raise state.exception_object()
        return self._sync(self._core.result_async, state, None)

    def gather(
        self,
        futures: Any,
        errors: str = "raise",
        direct: bool | None = None,
        asynchronous: bool | None = None,
    ) -> Any:
        """Replace the futures in `futures` (a future or nested containers) by values.

        ``errors="raise"`` raises the first failure; ``"skip"`` leaves failed futures
        out of their containers. Returns a coroutine for asynchronous clients.
        """
        if errors not in ("raise", "skip"):
            raise ValueError("errors must be 'raise' or 'skip'")
        if isinstance(futures, Iterator):
            return (self.gather(f, errors=errors) for f in futures)
        found = futures_of(futures)
        states = [f._state for f in found]
        if self.asynchronous:
            return self._gather_async(futures, states, errors)
        pending = any(s.status == PENDING for s in states)
        with self._waiting() if pending else contextlib.nullcontext():
            for state in states:
                self._wait_blocking(state, None)
                if state.status != FINISHED and errors == "raise":
                    raise state.exception_object()
            if all(s.status != FINISHED or s.payload is not None for s in states):
                values = {
                    s.key: self._core.load(s.payload)
                    for s in states
                    if s.status == FINISHED and s.payload is not None
                }
            else:
                values = self._sync(transfer.gather_values, self._core, states, errors)
        return substitute(futures, values, skip_missing=errors == "skip")

    async def _gather_async(self, futures: Any, states: list[FutureState], errors: str) -> Any:
        pending = any(s.status == PENDING for s in states)
        with self._waiting() if pending else contextlib.nullcontext():
            values = await transfer.gather_values(self._core, states, errors)
        return substitute(futures, values, skip_missing=errors == "skip")

    def scatter(
        self,
        data: Any,
        workers: Any = None,
        broadcast: bool = False,
        direct: bool | None = None,
        hash: bool = True,
        timeout: float | str = NO_DEFAULT,
        asynchronous: bool | None = None,
    ) -> Any:
        """Move local data to workers and return futures pointing to it.

        A list/tuple/set gives a list of futures, a dict gives a dict of futures keyed
        like the input, a ``range``, an iterator or a generator a list of futures (one
        per item, as dask does), anything else a single future. ``broadcast=True`` copies every
        item to every chosen worker; ``hash=True`` names data by its content so the same
        data scattered twice shares a key.
        """
        self._check_open()
        wait = self._timeout if timeout == NO_DEFAULT else float(timeout)
        names = worker_names(workers)
        if isinstance(data, (range, Iterator)):
            data = list(data)
        if isinstance(data, dict):
            values, keys = list(data.values()), [encode_key(k) for k in data]
        elif isinstance(data, (list, tuple, set, frozenset)):
            values, keys = list(data), None
        else:
            values, keys = [data], None
        coroutine_fn = self._scatter_async
        args = (data, values, keys, hash, names, broadcast, wait)
        return self._sync(coroutine_fn, *args)

    async def _scatter_async(
        self,
        data: Any,
        values: list[Any],
        keys: list[str] | None,
        hash: bool,
        workers: list[str] | None,
        broadcast: bool,
        timeout: float,
    ) -> Any:
        states = await transfer.scatter(
            self._core,
            values,
            keys,
            hash=hash,
            workers=workers,
            broadcast=broadcast,
            timeout=timeout,
        )
        futures = [Future._adopt(s.key, self._client, s) for s in states]
        if isinstance(data, dict):
            return dict(zip(data, futures, strict=True))
        if isinstance(data, (list, tuple, set, frozenset)):
            return type(data)(futures) if not isinstance(data, (set, frozenset)) else futures
        return futures[0]

    def cancel(
        self,
        futures: Any,
        asynchronous: bool | None = None,
        force: bool = False,
        reason: str | None = None,
        msg: str | None = None,
    ) -> Any:
        """Cancel futures (and what depends on them) on the cluster.

        Without `force`, keys another client still wants keep running for that client.
        `reason` (or dask's older name, `msg`) is what their `CancelledError` says.
        """
        keys = [f._key for f in futures_of(futures)]
        return self._sync(self._core.cancel, keys, force, reason if reason is not None else msg)
