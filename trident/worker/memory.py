"""What a worker does as its memory fills up, as in dask.distributed.

Thresholds are fractions of the worker's memory limit (dask's defaults):

* ``target`` (0.6): results beyond this size are spilled to disk, least recently used
  first (the `SpillBuffer` does this as results arrive);
* ``spill`` (0.7): when the process's resident memory passes this, results are spilled
  until it is back under ``target`` (or nothing is left to spill);
* ``pause`` (0.8): above this the worker starts no new task until it is back under;
* ``terminate`` (0.95): the worker's nanny restarts it and reports it out of memory.

`MemoryMonitor` turns a reading of the process's memory into what to do; the worker
actor reads the memory (psutil) and carries it out. None disables a threshold.
"""

from __future__ import annotations

import attrs

TARGET = 0.6
SPILL = 0.7
PAUSE = 0.8
TERMINATE = 0.95


@attrs.frozen
class MemoryThresholds:
    """Fractions of the memory limit (None: that behaviour is off)."""

    target: float | None = TARGET
    spill: float | None = SPILL
    pause: float | None = PAUSE
    terminate: float | None = TERMINATE

    def as_settings(self) -> dict[str, float | None]:
        return attrs.asdict(self)


@attrs.frozen
class MemoryAction:
    """What to do after one reading: spill until the process uses at most `spill_to`
    bytes (None: no spilling), and whether the worker should be paused."""

    spill_to: int | None
    paused: bool


class MemoryMonitor:
    """Decides from process memory readings (sans-IO)."""

    def __init__(self, limit: int, thresholds: MemoryThresholds):
        self.limit = limit
        self.thresholds = thresholds

    def _bytes(self, fraction: float | None) -> int | None:
        return None if fraction is None or not self.limit else int(self.limit * fraction)

    @property
    def target_bytes(self) -> int | None:
        """Bytes of results kept in memory before spilling (None: never spill)."""
        return self._bytes(self.thresholds.target)

    def assess(self, rss: int) -> MemoryAction:
        """What to do when the process uses `rss` bytes."""
        spill = self._bytes(self.thresholds.spill)
        pause = self._bytes(self.thresholds.pause)
        spill_to = None
        if spill is not None and rss > spill:
            target = self.target_bytes
            spill_to = target if target is not None else spill
        return MemoryAction(spill_to, pause is not None and rss > pause)
