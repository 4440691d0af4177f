"""Killing the worker that holds an exchange's pieces, mid-computation."""

from __future__ import annotations

import os
import signal
import time
from typing import Any


def kill_a_worker_holding(client: Any, cluster: Any, future: Any, marker: str) -> None:
    """SIGKILL the worker process holding the first stored key whose name contains
    `marker`, while `future` is still running (fails if it finished first or nothing
    was stored within 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        held = client.who_has()
        pieces = [key for key in held if marker in str(key) and held[key]]
        if pieces:
            break
        assert time.monotonic() < deadline, "no bundle was ever stored"
        assert not future.done(), "the exchange finished before a worker could be killed"
        time.sleep(0.02)
    (address, *_) = held[pieces[0]]
    (handle,) = [h for h in cluster.workers.values() if h.address == address]
    os.kill(handle.pid, signal.SIGKILL)
