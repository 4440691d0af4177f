"""`OutputForwarding`: a worker's task output, captured and sent while the scheduler asks.

The scheduler turns capturing on while some client forwards output
(`Client.forward_logging`; the state's `CaptureOutput` instruction). While on, the
process's streams and root logger are routed per task (see `output`) into one
`OutputCollector`, drained into `TaskOutput` messages every `OUTPUT_INTERVAL` seconds
and before the worker reports tasks finished.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..protocol import messages as m
from . import output

#: Seconds between sends of captured task output while tasks run.
OUTPUT_INTERVAL = 0.1


class OutputForwarding:
    """Capturing on or off; `send` delivers drained entries (to the scheduler)."""

    def __init__(self, send: Callable[[list[m.OutputEntry]], None]):
        self._send = send
        #: where task output goes while capturing, else None
        self.collector: output.OutputCollector | None = None

    def set(self, enabled: bool, nursery: trio.Nursery) -> None:
        """Start capturing (sending from a task in `nursery`) or stop, sending the rest."""
        if enabled and self.collector is None:
            output.install()
            collector = self.collector = output.OutputCollector()
            nursery.start_soon(self._send_while, collector)
        elif not enabled and self.collector is not None:
            self.send_now()
            self.stop()

    def stop(self) -> None:
        """Stop capturing; output not sent yet is dropped."""
        if self.collector is not None:
            self.collector = None
            output.uninstall()

    async def _send_while(self, collector: output.OutputCollector) -> None:
        while self.collector is collector:
            self.send_now()
            await trio.sleep(OUTPUT_INTERVAL)

    def send_now(self) -> None:
        """Send what was captured since the last send."""
        if self.collector is None:
            return
        entries = self.collector.drain()
        if entries:
            self._send(entries)
