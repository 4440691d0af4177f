"""`UpdateFeed`: the live updates every open dashboard page receives (server-sent events).

Once per tick, and only while some page is connected, the feed builds one update (the
summary, workers and progress, plus the task-stream events and errors recorded since
the previous tick), encodes it once and hands the same bytes to every page. A page that
cannot keep up is disconnected; its browser reconnects and starts from a fresh snapshot.
"""

from __future__ import annotations

import json
import time
from typing import Any

import trio

from ..scheduler.state import SchedulerState
from . import snapshot
from .monitor import LoopMonitor

#: Seconds between updates.
TICK = 0.5
#: Updates queued per page before it counts as too slow.
PAGE_BUFFER = 8


class UpdateFeed:
    """Builds updates from `state` and fans them out to subscribed pages."""

    def __init__(self, state: SchedulerState, monitor: LoopMonitor | None, tick: float = TICK):
        self.state = state
        self.monitor = monitor
        self.tick = tick
        self.updates_built = 0
        self._pages: set[trio.MemorySendChannel[bytes]] = set()
        self._stream_cursor = state.activity.recorded
        self._errors_cursor = state.activity.errors_recorded

    @property
    def pages(self) -> int:
        """How many pages are subscribed."""
        return len(self._pages)

    def subscribe(self) -> tuple[bytes, trio.MemoryReceiveChannel[bytes]]:
        """A first full update for a new page, and the channel its next updates arrive on."""
        send, receive = trio.open_memory_channel[bytes](PAGE_BUFFER)
        self._pages.add(send)
        first = self._build(self.state.activity.recorded - snapshot.STREAM_BATCH, 0, initial=True)
        return first, receive

    def unsubscribe(self, channel: trio.MemoryReceiveChannel[bytes]) -> None:
        channel.close()

    async def run(self) -> None:
        """Publish an update every `tick` while pages are connected, until cancelled."""
        while True:
            await trio.sleep(self.tick)
            self.publish()

    def publish(self) -> None:
        """Build one update and queue it for every page (drops pages that lag behind)."""
        activity = self.state.activity
        if not self._pages:
            self._stream_cursor = activity.recorded
            self._errors_cursor = activity.errors_recorded
            return
        update = self._build(self._stream_cursor, self._errors_cursor, initial=False)
        self._stream_cursor = activity.recorded
        self._errors_cursor = activity.errors_recorded
        for page in list(self._pages):
            try:
                page.send_nowait(update)
            except trio.WouldBlock:
                page.close()
                self._pages.discard(page)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._pages.discard(page)

    def _build(self, stream_cursor: int, errors_cursor: int, *, initial: bool) -> bytes:
        state = self.state
        activity = state.activity
        now = time.time()
        data: dict[str, Any] = snapshot.everything(state, self.monitor, now)
        events, stream_end = activity.events_since(max(0, stream_cursor), snapshot.STREAM_BATCH)
        errors, errors_end = activity.errors_since(max(0, errors_cursor), snapshot.ERRORS_BATCH)
        data["initial"] = initial
        data["stream"] = snapshot.stream_rows(events)
        data["stream_end"] = stream_end
        data["errors"] = snapshot.error_rows(errors)
        data["errors_end"] = errors_end
        self.updates_built += 1
        return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
