"""`EventMethods`: events by topic and the task stream, as dask's Client has them.

``log_event(topic, msg)`` stores a message on the scheduler under a topic (or several);
``get_events(topic)`` reads back ``((time, msg), ...)``; ``subscribe_topic(topic,
handler)`` calls ``handler((time, msg))`` in the client's event loop for each new event
(a coroutine function is started there as a task); ``get_task_stream(start=...)`` lists
the task runs the scheduler recorded. Messages must be plain msgpack data (dicts,
lists, strings, numbers), as in dask.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from ..protocol import messages as m
from .base import DONE, ClientBase

logger = logging.getLogger("trident.client")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(ms|s|m|min|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1.0}


def moment(value: Any) -> float | None:
    """Wall-clock seconds from a number, a `datetime`, a duration string meaning that
    long ago (``"20s"``, ``"5m"``, as dask's task stream takes it), or None."""
    if value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, str) and (found := _DURATION.match(value)):
        return time.time() - float(found.group(1)) * _UNITS[found.group(2)]
    raise TypeError(f"expected seconds since the epoch, a datetime or '20s', got {value!r}")


class EventSubscriptions:
    """The topic handlers of one client, fed by `EventLogged` pushes (in the loop)."""

    def __init__(self, base: ClientBase):
        self._base = base
        self.handlers: dict[str, Callable[[tuple[float, Any]], Any]] = {}
        base._scheduler_link.on_message(m.EventLogged, self._deliver)

    def _deliver(self, msg: m.EventLogged) -> None:
        handler = self.handlers.get(msg.topic)
        if handler is None:
            return
        event = (msg.time, msg.msg)
        try:
            if inspect.iscoroutinefunction(handler):
                self._base._core.spawn(self._run_async, handler, event)
            else:
                handler(event)
        except Exception:
            logger.exception("the handler of topic %r failed", msg.topic)

    @staticmethod
    async def _run_async(handler: Callable[..., Any], event: tuple[float, Any]) -> None:
        try:
            await handler(event)
        except Exception:
            logger.exception("an async topic handler failed")


class EventMethods(ClientBase):
    """See the module docstring."""

    _event_subscriptions: EventSubscriptions | None = None

    def log_event(self, topic: str | list[str] | tuple[str, ...], msg: Any) -> Any:
        """Store `msg` (plain msgpack data) on the scheduler under `topic` (or each of a
        list of topics), stamped with the current time, and pass it to the topic's
        subscribers. Does not wait; ``await`` it on an asynchronous client."""
        self._check_open()
        topics = [topic] if isinstance(topic, str) else list(topic)
        self._core.enqueue(m.LogEvent(topics, time.time(), msg))
        return DONE if self.asynchronous else None

    def get_events(self, topic: str | None = None) -> Any:
        """The events of `topic` as a tuple of ``(time, msg)``, oldest first (each topic
        keeps its newest 10,000), or ``{topic: events}`` for every topic when None. A
        coroutine for asynchronous clients."""
        return self._sync(self._get_events, topic)

    async def _get_events(self, topic: str | None) -> Any:
        found = await self._core.request(lambda rid: m.EventsRequest(rid, topic))
        if topic is None:
            return {name: tuple(tuple(e) for e in events) for name, events in found.items()}
        return tuple(tuple(e) for e in found)

    def subscribe_topic(self, topic: str, handler: Callable[[tuple[float, Any]], Any]) -> None:
        """Call ``handler((time, msg))`` for every event logged on `topic` from now on.

        The handler runs in the client's event loop (keep it short; a coroutine function
        is started there as a task). One handler per topic; subscribing again replaces
        it.
        """
        self._check_open()
        subscriptions = self._event_subscriptions
        if subscriptions is None:
            subscriptions = self._event_subscriptions = EventSubscriptions(self)
        first = topic not in subscriptions.handlers
        subscriptions.handlers[topic] = handler
        if first:
            self._core.enqueue(m.SubscribeEvents(topic, True))

    def unsubscribe_topic(self, topic: str) -> None:
        """Stop calling the handler of `topic`. Raises `ValueError` if there is none."""
        subscriptions = self._event_subscriptions
        if subscriptions is None or topic not in subscriptions.handlers:
            raise ValueError(f"no event handler known for topic {topic!r}")
        del subscriptions.handlers[topic]
        self._core.enqueue(m.SubscribeEvents(topic, False))

    def get_task_stream(
        self,
        start: Any = None,
        stop: Any = None,
        count: int | None = None,
        plot: bool | str = False,
        filename: str | None = None,
        bokeh_resources: Any = None,
    ) -> Any:
        """The task runs the scheduler recorded (it keeps the newest 20,000), as dask's
        records: ``{"key", "name", "worker", "status" ("OK" or "error"), "startstops":
        [{"action": "compute", "start", "stop"}]}``, oldest first.

        `start` and `stop` bound the time (seconds since the epoch, a datetime, or a
        duration such as ``"20s"`` meaning that long ago); `count` keeps the newest
        ones. A coroutine for asynchronous clients.

        dask's `plot` (a bokeh figure) is not offered here: ``plot=`` other than False
        raises `ValueError`; the context manager ``trident.get_task_stream(plot=True)``
        draws the task stream as SVG, and ``trident.performance_report`` writes it into
        a self-contained HTML file.
        """
        if plot:
            raise ValueError(
                "get_task_stream(plot=...) needs bokeh in dask; trident draws the task "
                "stream in performance_report(filename=...) instead"
            )
        request = (moment(start), moment(stop), count)
        return self._sync(self._get_task_stream, request)

    async def _get_task_stream(self, request: tuple[float | None, float | None, int | None]) -> Any:
        start, stop, count = request
        return await self._core.request(lambda rid: m.TaskStreamRequest(rid, start, stop, count))
