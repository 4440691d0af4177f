"""`watch_memory`: a worker's loop that spills and pauses as its process's memory grows.

Every `MEMORY_CHECK_INTERVAL` seconds it reads the process's resident memory (psutil),
asks the `MemoryMonitor` what to do (see `trident.worker.memory`), spills results to
disk in a thread until the process is back under the target, and tells `WorkerState`
when the worker is paused (no new task starts) or resumed. Runs in the worker's
nursery while the worker has a memory limit.

Spilling by process memory alone comes too late for a fast producer: a worker can store
hundreds of megabytes between two readings. So each reading also sets how many bytes of
results the `SpillBuffer` may keep in memory: the target less the memory the process
uses besides them (interpreter, libraries, buffers in flight). The buffer then spills as
results arrive and the process stays near the target between readings. After spilling,
freed memory is handed back to the operating system (`trim_memory`), so that the next
reading sees it gone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import psutil
import trio

from ..sizes import format_bytes
from . import events as ev
from .memory import MemoryAction
from .spill import SpillBuffer
from .trim import trim_memory

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
        target = monitor.target_bytes
        if spill is not None and target is not None:
            spill.set_target(managed_target(target, rss, spill.fast_bytes))
            if spill.fast_bytes > spill.target and action.spill_to is None:
                action = MemoryAction(target, action.paused)
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


def managed_target(target: int, rss: int, managed: int) -> int:
    """Bytes of results to keep in memory so that the process uses about `target` bytes,
    when it uses `rss` bytes of which `managed` are results in memory."""
    unmanaged = max(0, rss - managed)
    return max(0, target - unmanaged)


def spill_until(spill: SpillBuffer, process: psutil.Process, limit: int) -> int:
    """Spill results until those in memory fit the buffer's target and the process uses
    at most `limit` bytes, or none is left in memory (runs in a thread); return the
    bytes spilled. Freed memory is returned to the operating system as it goes."""
    total = spill.shrink()
    if total:
        trim_memory()
    while process.memory_info().rss > limit:
        freed = spill.evict()
        if not freed:
            break
        total += freed
        trim_memory()
    return total
