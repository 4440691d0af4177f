"""Events, the task stream and retries: client -> scheduler requests, and `EventLogged`.

`Client.log_event` stores a message under one or more topics on the scheduler;
`Client.get_events` reads them back; `Client.subscribe_topic` has the scheduler push
each new event of a topic to the client (`EventLogged`). `Client.get_task_stream` reads
the scheduler's record of recent task runs; `Client.retry` runs erred tasks again.
"""

from __future__ import annotations

from typing import Any

from ..registry import message


@message("log-event")
class LogEvent:
    """`Client.log_event`: store `msg` (plain msgpack data) at `time` under each of
    `topics`, and push it to the topic's subscribers."""

    topics: list[str]
    time: float
    msg: Any


@message("get-events")
class EventsRequest:
    """`Client.get_events`: the events of `topic`, or of every topic when None; answered by
    a `Reply` with ``[[time, msg], ...]`` (or ``{topic: [[time, msg], ...]}``)."""

    request_id: int
    topic: str | None


@message("subscribe-events")
class SubscribeEvents:
    """`Client.subscribe_topic` (`subscribe`) and `Client.unsubscribe_topic`."""

    topic: str
    subscribe: bool


@message("task-stream")
class TaskStreamRequest:
    """`Client.get_task_stream`: the task runs recorded since `start` (wall-clock seconds;
    None: all kept), at most `count` of the most recent (None: no limit). Answered by a
    `Reply` with a list of dask-style task-stream records (see
    `trident.scheduler.diagnostics`)."""

    request_id: int
    start: float | None
    stop: float | None
    count: int | None


@message("retry")
class RetryKeys:
    """`Client.retry`, `Future.retry`: run these erred tasks again, with the erred tasks
    they depend on. Answered by a `Reply` (None) once they are on their way."""

    request_id: int
    keys: list[str]


@message("event-logged")
class EventLogged:
    """Scheduler -> each client subscribed to `topic`: an event was logged."""

    topic: str
    time: float
    msg: Any


#: The requests of this module (part of `ClientToScheduler`).
DiagnosticsRequest = LogEvent | EventsRequest | SubscribeEvents | TaskStreamRequest | RetryKeys
