"""The narrow views of a client that code built on it uses, instead of its `ClientCore`.

Coordination primitives, stored values, datasets, `fire_and_forget`, the replay of
failures and the diagnostics need a few things of a client: talk to the scheduler
(`SchedulerLink`), or watch futures change (`FutureWatch`). `ClientBase` hands out its
core typed as these protocols (`_scheduler_link`, `_future_watch`), so such code cannot
come to depend on the rest of the core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..protocol import messages as m
    from .future import FutureState
    from .requests import PendingRequest


class SchedulerLink(Protocol):
    """Messages to and from the scheduler through a client."""

    @property
    def status(self) -> str:
        """The client's connection status (``"running"``, ``"reconnecting"``, ...)."""
        ...

    def enqueue(self, message: Any) -> None:
        """Send `message` to the scheduler, in order with submits and releases."""
        ...

    async def request(self, build: Callable[[int], Any]) -> Any:
        """Send ``build(request_id)`` and return the reply's value."""
        ...

    def start_request(self, build: Callable[[int], Any]) -> PendingRequest:
        """Send ``build(request_id)`` without waiting for the reply."""
        ...

    def finish_request(self, pending: PendingRequest) -> Any:
        """The value of an answered request."""
        ...

    def abandon_request(self, pending: PendingRequest, on_reply: Callable[[m.Reply], None]) -> None:
        """Nobody waits for `pending` any more: its reply goes to `on_reply`."""
        ...

    def on_message(self, kind: type, handler: Callable[[Any], None]) -> None:
        """Handle scheduler messages of type `kind` (called in the client's loop)."""
        ...


class FutureWatch(Protocol):
    """Watching the futures of a client change state."""

    @property
    def in_loop_thread(self) -> bool:
        """True in the client's event loop (where blocking waits would deadlock)."""
        ...

    def add_listener(self, fs: FutureState, listener: Callable[[FutureState], None]) -> bool:
        """Call `listener` on the next transition of `fs`; False if it is already done."""
        ...

    def remove_listener(self, fs: FutureState, listener: Callable[[FutureState], None]) -> None:
        """Stop calling `listener` for `fs`."""
        ...
