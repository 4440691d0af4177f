"""`KeyUpdates`: what the scheduler says about keys, applied to the client's futures.

The scheduler tells a client when a key it wants finished (`KeyDone`), failed
(`KeyErred`), was cancelled (`KeysCancelled`), lost its data (`KeysLost`, the future
waits again while the scheduler recomputes it) or waits for a worker that may run it
(`KeysWithoutWorker`, logged as a warning). Each update is one `FutureState`
transition, made through the core so waiters and listeners wake up. Runs in the
client's loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..protocol import messages as m
from .future import CANCELLED, ERROR, FINISHED, LOST, PENDING, FutureState
from .reconnection import Reconnection

logger = logging.getLogger("trident.client")

#: Keys named in the warning about tasks no worker can run (the rest are counted).
NO_WORKER_KEYS_SHOWN = 5


class KeyUpdates:
    """Handlers of the scheduler's messages about keys.

    Arguments:
        futures: the client's future states by key (read only).
        transition: applies a change to a future state and wakes its waiters
            (`ClientCore.transition`).
        reconnection: while it resumes a session, keys reported erred are set aside
            for it (they may only have been lost in transit).
        keys_lost: told the keys whose data was lost (actor handles rebind).
    """

    def __init__(
        self,
        futures: Mapping[str, FutureState],
        transition: Callable[..., None],
        reconnection: Reconnection,
        keys_lost: Callable[[list[str]], None],
    ) -> None:
        self._futures = futures
        self._transition = transition
        self._reconnection = reconnection
        self._keys_lost = keys_lost

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            m.KeyDone: self._on_key_done,
            m.KeyErred: self._on_key_erred,
            m.KeysCancelled: self._on_keys_cancelled,
            m.KeysLost: self._on_keys_lost,
            m.KeysWithoutWorker: self._on_keys_without_worker,
        }

    def _on_key_done(self, msg: m.KeyDone) -> None:
        fs = self._futures.get(msg.key)
        # ERROR too: an erred task that `Client.retry` ran again (by any client) finished.
        if fs is not None and fs.status in (PENDING, LOST, ERROR):
            self._transition(fs, fs.set_finished, msg.type_name, msg.nbytes, msg.value)

    def _on_key_erred(self, msg: m.KeyErred) -> None:
        fs = self._futures.get(msg.key)
        if fs is None:
            return
        reconnection = self._reconnection
        if reconnection.resuming is not None and fs.spec is not None and fs.status == PENDING:
            reconnection.unknown.append((fs, msg.error))  # lost in transit? see on_resumed
            return
        # A finished key whose data only workers held can fail too: its data is gone
        # (the scheduler forgot it while the client was disconnected).
        if fs.status == PENDING or (fs.status == FINISHED and fs.payload is None):
            self._transition(fs, fs.set_error, msg.error)

    def _on_keys_cancelled(self, msg: m.KeysCancelled) -> None:
        for key in msg.keys:
            fs = self._futures.get(key)
            if fs is not None and fs.status != CANCELLED:
                self._transition(fs, fs.set_cancelled, msg.reason)

    def _on_keys_lost(self, msg: m.KeysLost) -> None:
        for key in msg.keys:
            fs = self._futures.get(key)
            if fs is not None and fs.status == FINISHED:
                self._transition(fs, fs.reset)
        self._keys_lost(msg.keys)

    def _on_keys_without_worker(self, msg: m.KeysWithoutWorker) -> None:
        """Say which tasks cannot run on any connected worker, with their restrictions,
        rather than let them wait in silence (dask's ``no-worker`` state)."""
        shown = []
        for key in msg.keys[:NO_WORKER_KEYS_SHOWN]:
            fs = self._futures.get(key)
            spec = fs.spec if fs is not None else None
            if spec is not None and (spec.workers is not None or spec.resources):
                shown.append(f"{key} (workers={spec.workers}, resources={spec.resources})")
            else:
                shown.append(key)
        more = len(msg.keys) - len(shown)
        logger.warning(
            "%d task(s) wait for a worker that satisfies their restrictions; no connected "
            "worker does (they run once one joins): %s%s",
            len(msg.keys),
            ", ".join(shown),
            f" and {more} more" if more > 0 else "",
        )
