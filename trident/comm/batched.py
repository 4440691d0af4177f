"""`BatchedSender`: coalesce the messages for one peer into one packet per loop turn."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import anyio
import anyio.lowlevel

from .connection import Connection
from .streams import StreamClosed

logger = logging.getLogger("trident.comm")


class BatchedSender:
    """Queue messages for one connection and write them in batches.

    `send` never blocks and never checkpoints: it appends to a queue and wakes the
    sending task. The sending task yields once to the event loop before it writes, so
    every message queued in the same loop turn lands in the same packet. There is no
    fixed interval: an idle connection writes at once.

    Run `run()` as a task in the owner's nursery. When the connection breaks, `run`
    returns, `closed` becomes true and later messages are dropped (the owner learns of
    the loss from its receiving side).
    """

    def __init__(self, connection: Connection):
        self.connection = connection
        self.closed = False
        self._queue: list[Any] = []
        self._wakeup = anyio.Event()
        self._drained: anyio.Event | None = None

    def send(self, message: Any) -> None:
        if self.closed:
            return
        queue = self._queue
        queue.append(message)
        if len(queue) == 1:
            self._wakeup.set()

    def send_many(self, messages: Iterable[Any]) -> None:
        if self.closed:
            return
        queue = self._queue
        was_empty = not queue
        queue.extend(messages)
        if was_empty and queue:
            self._wakeup.set()

    async def run(self) -> None:
        """Write queued batches until cancelled or the connection breaks."""
        try:
            while True:
                await self._wakeup.wait()
                # One turn of the loop lets other ready tasks add to this batch.
                await anyio.lowlevel.cancel_shielded_checkpoint()
                self._wakeup = anyio.Event()
                batch, self._queue = self._queue, []
                if batch:
                    await self.connection.send(batch)
                if self._drained is not None and not self._queue:
                    self._drained.set()
                    self._drained = None
        except (StreamClosed, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            logger.debug("sender to %s stopped: %s", self.connection.peer, exc)
        finally:
            self.closed = True
            if self._drained is not None:
                self._drained.set()

    def take_unsent(self) -> list[Any]:
        """The messages queued but never written (call once the sender stopped)."""
        unsent, self._queue = self._queue, []
        return unsent

    async def flush(self) -> None:
        """Wait until everything queued so far has been written (or the sender stopped)."""
        if self.closed or not self._queue:
            await anyio.lowlevel.checkpoint()
            return
        if self._drained is None:
            self._drained = anyio.Event()
        await self._drained.wait()
