"""`SchedulerRequests`: requests a client sends the scheduler, matched with their replies.

Each request carries an id; the scheduler answers with a `Reply` (or, for `Client.run`
and friends, a message of its own with the same id). Requests are sent in order with
everything else the client queues (`ClientCore.enqueue`). When the connection is lost,
every waiting request wakes without a reply and fails with `SchedulerLostError`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import anyio

from .._exceptions import SchedulerError, SchedulerLostError
from ..protocol import messages as m

logger = logging.getLogger("trident.client")


class PendingRequest:
    """A request sent to the scheduler; its `Reply` arrives here (see `start_request`).

    `event` is set when the reply arrives or the connection is lost (`reply` stays
    None then). A request nobody waits for any more hands its reply to `on_reply`.
    """

    __slots__ = ("event", "on_reply", "reply", "request_id")

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self.event = anyio.Event()
        self.reply: m.Reply | None = None
        self.on_reply: Callable[[m.Reply], None] | None = None

    async def wait(self) -> None:
        """Wait for the reply (or the loss of the connection); a checkpoint."""
        await self.event.wait()


class SchedulerRequests:
    """The requests of one client that wait for replies (see the module docstring).

    `send` queues a message for the scheduler; `check_running` raises `RuntimeError`
    unless the client may send requests; `client_id` names the client in logs.
    """

    def __init__(
        self, send: Callable[[Any], None], check_running: Callable[[], None], client_id: str
    ):
        self._send = send
        self._check_running = check_running
        self._client_id = client_id
        self._pending: dict[int, PendingRequest] = {}
        self._ids = itertools.count(1)

    async def request(self, build: Callable[[int], Any]) -> Any:
        """Send ``build(request_id)`` to the scheduler and return the reply's value."""
        pending = self.start(build)
        try:
            await pending.wait()
        finally:
            self._pending.pop(pending.request_id, None)
        return self.finish(pending)

    def start(self, build: Callable[[int], Any]) -> PendingRequest:
        """Send ``build(request_id)`` to the scheduler without waiting (call in the loop).

        Wait with `PendingRequest.wait`, then call `finish`; or give up with `abandon`.
        """
        self._check_running()
        request_id = next(self._ids)
        pending = PendingRequest(request_id)
        self._pending[request_id] = pending
        try:
            self._send(build(request_id))
        except BaseException:
            del self._pending[request_id]
            raise
        return pending

    def finish(self, pending: PendingRequest) -> Any:
        """The value of an answered request.

        Raises `SchedulerLostError` if the connection was lost first and `SchedulerError`
        if the scheduler refused the request.
        """
        self._pending.pop(pending.request_id, None)
        reply = pending.reply
        if reply is None:
            raise SchedulerLostError("the connection to the scheduler was lost before it replied")
        if reply.error is not None:
            raise SchedulerError(reply.error)
        return reply.value

    def abandon(self, pending: PendingRequest, on_reply: Callable[[m.Reply], None]) -> None:
        """Nobody waits for `pending` any more: its reply goes to ``on_reply(reply)``.

        Called at once if the reply is already here, else from the loop when it
        arrives (never when the connection is lost first).
        """
        if pending.reply is not None:
            self._pending.pop(pending.request_id, None)
            on_reply(pending.reply)
        elif pending.request_id in self._pending:
            pending.on_reply = on_reply

    def on_reply(self, msg: m.Reply) -> None:
        """A `Reply` arrived (called in the loop)."""
        pending = self._pending.get(msg.request_id)
        if pending is None:
            return
        if pending.on_reply is not None:
            del self._pending[msg.request_id]
            try:
                pending.on_reply(msg)
            except Exception:
                logger.exception("client %s: handling a late reply failed", self._client_id)
            return
        pending.reply = msg
        pending.event.set()

    def on_answer(self, msg: m.RunResult | m.RunResults | m.PluginResults) -> None:
        """A request answered by a message of its own: the message is the reply's value."""
        self.on_reply(m.Reply(msg.request_id, msg, None))

    def wake_all(self) -> None:
        """Wake every waiting request without a reply (the client is closing)."""
        for pending in self._pending.values():
            pending.event.set()

    def fail_all(self) -> None:
        """The connection broke: every waiting request wakes without a reply and is
        forgotten."""
        self.wake_all()
        self._pending.clear()
