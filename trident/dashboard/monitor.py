"""`LoopMonitor`: event-loop lag and transition rate of the scheduler, sampled cheaply.

Lag is how late a short sleep wakes up: the time the loop was busy with other work.
A scheduler whose loop lags is slow to answer everyone, so it is the first number to
look at when the cluster feels sluggish.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio

#: Seconds between lag samples.
LAG_INTERVAL = 0.1
#: Lag samples kept: the reported lag is the worst of the last few seconds.
LAG_WINDOW = 50
#: Seconds between transition-rate samples.
RATE_INTERVAL = 1.0


class LoopMonitor:
    """Samples loop lag and the rate of a counter (`transitions`) until cancelled."""

    def __init__(self, transitions: Callable[[], int]):
        self._transitions = transitions
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self.last_lag = 0.0
        self.transitions_per_second = 0.0

    @property
    def lag(self) -> float:
        """The worst lag (seconds) over the last few seconds."""
        return max(self._lags, default=0.0)

    async def run(self) -> None:
        last_count = self._transitions()
        last_rate_at = trio.current_time()
        while True:
            before = trio.current_time()
            await trio.sleep(LAG_INTERVAL)
            now = trio.current_time()
            self.last_lag = max(0.0, now - before - LAG_INTERVAL)
            self._lags.append(self.last_lag)
            if now - last_rate_at >= RATE_INTERVAL:
                count = self._transitions()
                self.transitions_per_second = (count - last_count) / (now - last_rate_at)
                last_count, last_rate_at = count, now
