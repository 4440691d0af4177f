"""`watch_memory`: a worker's loop that spills and pauses as its process's memory grows.

Every `MEMORY_CHECK_INTERVAL` seconds it reads the process's resident memory (psutil),
asks the `MemoryMonitor` what to do (see `trident.worker.memory`), spills results to
disk in a thread until the process is back under the target, and tells `WorkerState`
when the worker is paused (no new task starts) or resumed. Runs in the worker's
nursery while the worker has a memory limit.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import psutil
import trio

from ..sizes import format_bytes
from . import events as ev
from .spill import SpillBuffer

if TYPE_CHECKING:
    from .actor import Worker

logger = logging.getLogger("trident.worker")

#: Seconds between two readings of the process's memory (workers with a memory limit).
MEMORY_CHECK_INTERVAL = 0.1


async def watch_memory(worker: Worker, spill: SpillBuffer | None) -> None:
    """Spill (into `spill`, when there is one) and pause `worker` as its memory grows;
    runs until cancelled."""
    assert worker.state is not None
    process = psutil.Process()
    state = worker.state
    monitor = worker.memory_monitor
    while True:
        await trio.sleep(MEMORY_CHECK_INTERVAL)
        try:
            rss = process.memory_info().rss
        except psutil.Error:
            continue
        action = monitor.assess(rss)
        if action.spill_to is not None and spill is not None:
            spilled = await trio.to_thread.run_sync(spill_until, spill, process, action.spill_to)
            if spilled:
                logger.info(
                    "worker %s: memory at %s of %s: spilled %s to disk",
                    worker.address,
                    format_bytes(rss),
                    format_bytes(worker.memory_limit),
                    format_bytes(spilled),
                )
                action = monitor.assess(process.memory_info().rss)
        if action.paused != state.paused:
            state.handle(ev.PauseChanged(action.paused, worker.stimulus("memory")))
            logger.warning(
                "worker %s: %s (process memory %s of its %s limit)",
                worker.address,
                "paused: no new task starts" if action.paused else "resumed",
                format_bytes(rss),
                format_bytes(worker.memory_limit),
            )
            if not action.paused:
                worker.flush()


def spill_until(spill: SpillBuffer, process: psutil.Process, limit: int) -> int:
    """Spill results until the process uses at most `limit` bytes or none is left in
    memory (runs in a thread); return the bytes spilled."""
    total = 0
    while process.memory_info().rss > limit:
        freed = spill.evict()
        if not freed:
            break
        total += freed
    return total
