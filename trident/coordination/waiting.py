"""Requests that wait on the scheduler, with a timeout and cancellation that undo cleanly.

The scheduler answers a waiting request when its condition holds. A timeout is a
`Withdraw` sent after `timeout` seconds: the scheduler answers a request that still
waits with None, and one already granted has its answer on the way — either way the
caller gets exactly one answer, and a grant that raced the timeout is kept. A caller
that is cancelled withdraws too, and whatever the scheduler granted meanwhile is given
back (`give_back`), so a cancelled ``await lock.acquire()`` never leaves a lease held
and a cancelled ``await queue.get()`` never loses an item.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

import anyio

from ..client.link import SchedulerLink
from ..protocol import messages as m
from ..worker.context import current_task_key, current_worker

T = TypeVar("T")


async def wait_for_answer(
    core: SchedulerLink,
    build: Callable[[int], Any],
    timeout: float | None,
    give_back: Callable[[Any], None] | None = None,
) -> Any:
    """Send ``build(request_id)`` and return the scheduler's answer (None if withdrawn).

    `timeout` in seconds (None waits for ever; 0 asks once). A checkpoint. If the
    caller is cancelled, the request is withdrawn and a non-None answer that arrives
    anyway goes to ``give_back(answer)`` in the client's loop. Raises
    `SchedulerError` when the scheduler refuses the request and `FutureLostError` when
    the connection is lost.
    """
    pending = core.start_request(build)
    try:
        if timeout is None:
            await pending.wait()
        else:
            with anyio.move_on_after(max(0.0, timeout)):
                await pending.wait()
            if not pending.event.is_set():
                core.enqueue(m.Withdraw(pending.request_id))
                await pending.wait()
    except BaseException:
        if not pending.event.is_set() and core.status == "running":
            core.enqueue(m.Withdraw(pending.request_id))

        def late_answer(reply: m.Reply) -> None:
            if give_back is not None and reply.error is None and reply.value is not None:
                give_back(reply.value)

        core.abandon_request(pending, late_answer)
        raise
    return core.finish_request(pending)


def caller_task() -> tuple[str | None, str | None]:
    """(task key, worker address) of the calling code, or Nones outside tasks."""
    worker = current_worker()
    return current_task_key(), (worker.address if worker is not None else None)


def seconds(timeout: Any) -> float | None:
    """A timeout in seconds from a number, None, or a string such as ``"200ms"``/``"2s"``."""
    if timeout is None:
        return None
    if isinstance(timeout, str):
        text = timeout.strip().replace(" ", "").lower()
        for unit, factor in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
            if text.endswith(unit):
                return float(text[: -len(unit)]) * factor
        return float(text)
    if hasattr(timeout, "total_seconds"):
        return float(timeout.total_seconds())
    return float(timeout)


class Done(Generic[T]):
    """An awaitable that is already done: what asynchronous clients get from calls that
    take effect at once (``await lock.release()`` works as in dask)."""

    def __init__(self, value: T):
        self.value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self.value
        yield  # unreachable: makes __await__ a generator
