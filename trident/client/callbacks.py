"""`DoneCallbacks`: where the callbacks of `Future.add_done_callback` run.

A blocking client runs them one at a time in a thread of their own, so a slow callback
never stalls the event loop and callbacks may block on other futures. An asynchronous
client (and any code in the loop) runs them in the loop. A failing callback is logged.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("trident.client")


class DoneCallbacks:
    """Runs done callbacks for one client (see the module docstring)."""

    def __init__(self, *, in_thread: bool):
        self._in_thread = in_thread
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def run(self, fn: Callable[[Any], Any], future: Any) -> None:
        """Run ``fn(future)``: in the callback thread, or here and now."""
        if not self._in_thread:
            _call(fn, future)
            return
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="trident-callback"
            )
        self._executor.submit(_call, fn, future)

    def shutdown(self) -> None:
        """Stop the callback thread once it has run what it was given (no wait)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)


def _call(fn: Callable[[Any], Any], future: Any) -> None:
    try:
        fn(future)
    except Exception:
        logger.exception("done callback %r of %s failed", fn, future)
