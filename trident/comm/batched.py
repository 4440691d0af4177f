"""`BatchedSender`: coalesce the messages for one peer into one packet per loop turn."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import anyio
import anyio.lowlevel

from .connection import Connection
from .streams import Frame, StreamClosed

logger = logging.getLogger("trident.comm")


class BatchedSender:
    """Queue messages for one connection and write them in batches.

    `send` never blocks and never checkpoints: it appends to a queue and wakes the
    sending task, which runs in the loop's next turn: every message queued in the same
    turn lands in the same packet. There is no fixed interval: an idle connection
    writes at once.

    An owner that has just produced a batch (a handler that processed a packet) calls
    `flush_now` to write it in the same turn when the connection takes it without
    waiting; what does not fit is handed to the sending task. That saves a loop turn
    per hop on every round trip.

    Run `run()` as a task in the owner's nursery. When the connection breaks, `run`
    returns, `closed` becomes true and later messages are dropped (the owner learns of
    the loss from its receiving side).
    """

    def __init__(self, connection: Connection):
        self.connection = connection
        self.closed = False
        self._queue: list[Any] = []
        self._backlog: list[Frame] = []  # the unwritten rest of a `flush_now` packet
        self._writing = False  # the sending task is in the middle of a packet
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

    def send_now(self, messages: Iterable[Any]) -> None:
        """Queue `messages` and write them at once if the connection takes them.

        Like `send_many` followed by `flush_now`, but the sending task is only woken
        when something is left for it to write.
        """
        if self.closed:
            return
        self._queue.extend(messages)
        if self._writing or self._backlog:
            self._wakeup.set()
        else:
            self.flush_now()

    def flush_now(self) -> None:
        """Write the queued messages now, as far as the connection takes them at once.

        Never waits and never checkpoints. Does nothing while the sending task is
        writing (order is kept: it takes the queue after its current packet).
        """
        if self.closed or self._writing or self._backlog or not self._queue:
            return
        batch, self._queue = self._queue, []
        try:
            rest = self.connection.try_send(batch)
        except StreamClosed as exc:
            logger.debug("sender to %s stopped: %s", self.connection.peer, exc)
            self.closed = True
            return
        if rest:
            self._backlog = rest
            self._wakeup.set()

    async def run(self) -> None:
        """Write queued batches until cancelled or the connection breaks."""
        try:
            while True:
                # Woken by the first message of a loop turn; by the time this task runs,
                # the tasks of that turn have queued theirs too, so they share the packet.
                await self._wakeup.wait()
                self._wakeup = anyio.Event()
                await self._write()
                if self._drained is not None and not self._queue:
                    self._drained.set()
                    self._drained = None
        except (StreamClosed, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            logger.debug("sender to %s stopped: %s", self.connection.peer, exc)
        finally:
            self.closed = True
            if self._drained is not None:
                self._drained.set()

    async def _write(self) -> None:
        """Write the backlog, then the queued batch.

        A method of its own so that the packet written (which may hold the frames of a
        large result) is dropped when it returns, not kept by `run` while it waits for
        the next one.
        """
        self._writing = True
        try:
            if self._backlog:
                rest, self._backlog = self._backlog, []
                await self.connection.send_chunks(rest)
            batch, self._queue = self._queue, []
            if batch:
                await self.connection.send(batch)
        finally:
            self._writing = False

    def take_unsent(self) -> list[Any]:
        """The messages queued but never written (call once the sender stopped)."""
        unsent, self._queue = self._queue, []
        return unsent

    async def flush(self) -> None:
        """Wait until everything queued so far has been written (or the sender stopped)."""
        if self.closed or (not self._queue and not self._backlog and not self._writing):
            await anyio.lowlevel.checkpoint()
            return
        if self._drained is None:
            self._drained = anyio.Event()
        self._wakeup.set()
        await self._drained.wait()
