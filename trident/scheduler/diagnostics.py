"""`Diagnostics`: the scheduler's side of events, the task stream and retries, sans-IO.

- Events (`Client.log_event`, `get_events`, `subscribe_topic`): each topic keeps its
  newest `EVENTS_PER_TOPIC` events ``(time, msg)`` in a ring buffer; a new event is
  pushed (`EventLogged`) to every client subscribed to its topic.
- The task stream (`Client.get_task_stream`): the runs `Activity` recorded, as dask's
  task-stream records (``key``, ``name``, ``worker``, ``status``, ``startstops``).
- Retries (`Client.retry`): erred tasks run again (`SchedulerState.retry`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..protocol import messages as m
from .activity import OK, TaskEvent
from .records import ClientRecord

if TYPE_CHECKING:
    from .state import SchedulerState

Send = Callable[[str, Any], None]

#: Events kept per topic (dask keeps 100,000 in all by default).
EVENTS_PER_TOPIC = 10_000


def task_stream_record(event: TaskEvent) -> dict[str, Any]:
    """One run as dask's task stream reports it."""
    return {
        "key": event.key,
        "name": event.prefix,
        "worker": event.worker,
        "status": "OK" if event.status == OK else "error",
        "startstops": [{"action": "compute", "start": event.start, "stop": event.stop}],
    }


class Diagnostics:
    """Events by topic, their subscribers, task-stream queries and retries."""

    def __init__(self, state: SchedulerState, send: Send):
        self._state = state
        self._send = send
        #: topic -> its newest events ``(time, msg)``, oldest first
        self.events: dict[str, deque[tuple[float, Any]]] = {}
        #: topic -> ids of the clients it is pushed to
        self.subscribers: dict[str, set[str]] = {}

    def handlers(self) -> dict[type, Callable[[ClientRecord, Any], None]]:
        """The client messages answered here, for `SchedulerState`."""
        return {
            m.LogEvent: self._on_log_event,
            m.EventsRequest: self._on_events,
            m.SubscribeEvents: self._on_subscribe,
            m.TaskStreamRequest: self._on_task_stream,
            m.RetryKeys: self._on_retry,
        }

    def log_event(self, topic: str, time: float, msg: Any) -> None:
        """Store an event under `topic` and push it to the topic's subscribers."""
        events = self.events.get(topic)
        if events is None:
            events = self.events[topic] = deque(maxlen=EVENTS_PER_TOPIC)
        events.append((time, msg))
        for client_id in self.subscribers.get(topic, ()):
            self._send(client_id, m.EventLogged(topic, time, msg))

    def client_removed(self, client_id: str) -> None:
        """The client left: it is no longer subscribed to anything."""
        for topic, clients in list(self.subscribers.items()):
            clients.discard(client_id)
            if not clients:
                del self.subscribers[topic]

    def _on_log_event(self, cs: ClientRecord, msg: m.LogEvent) -> None:
        for topic in msg.topics:
            self.log_event(topic, msg.time, msg.msg)

    def _on_events(self, cs: ClientRecord, msg: m.EventsRequest) -> None:
        value: Any
        if msg.topic is None:
            value = {topic: [list(e) for e in events] for topic, events in self.events.items()}
        else:
            value = [list(e) for e in self.events.get(msg.topic, ())]
        self._send(cs.client_id, m.Reply(msg.request_id, value, None))

    def _on_subscribe(self, cs: ClientRecord, msg: m.SubscribeEvents) -> None:
        if msg.subscribe:
            self.subscribers.setdefault(msg.topic, set()).add(cs.client_id)
            return
        clients = self.subscribers.get(msg.topic)
        if clients is not None:
            clients.discard(cs.client_id)
            if not clients:
                del self.subscribers[msg.topic]

    def _on_task_stream(self, cs: ClientRecord, msg: m.TaskStreamRequest) -> None:
        activity = self._state.activity
        events, _ = activity.events_since(activity.recorded - len(activity.stream))
        start, stop = msg.start, msg.stop
        chosen = [
            e
            for e in events
            if (start is None or e.stop >= start) and (stop is None or e.start <= stop)
        ]
        if msg.count is not None:
            chosen = chosen[-msg.count :] if msg.count > 0 else []
        records = [task_stream_record(e) for e in chosen]
        self._send(cs.client_id, m.Reply(msg.request_id, records, None))

    def _on_retry(self, cs: ClientRecord, msg: m.RetryKeys) -> None:
        self._state.retry(msg.keys)
        self._send(cs.client_id, m.Reply(msg.request_id, None, None))
