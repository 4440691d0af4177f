"""Bounded logs of recent events, kept by `SchedulerState` and `WorkerState`.

Each state machine appends one small tuple per event it handles, ``(stimulus id, event
name, subject)`` (the scheduler adds the peer), and one per flush that sends anything,
``(stimulus id, "flush", ...counts)``: how much the events since the last flush led to
(see each state's `log`). The log is a ``deque(maxlen=...)``: appending is O(1)
and the oldest entries fall off, so a long-lived actor never grows it. Entries hold only
strings, numbers and short lists (never task values or payloads), so the log keeps
nothing alive and dumps to msgpack or YAML as it is (`Client.dump_cluster_state`).

A neutral helper: both state machines import it, and it imports nothing of trident.
"""

from __future__ import annotations

from collections import deque
from typing import Any

#: Entries kept per state machine (dask keeps 1,000 stimuli and 100,000 transitions).
DEFAULT_LENGTH = 10_000
#: Keys of a multi-key event written into its entry.
LOGGED_KEYS = 3

#: The attribute of an event that names what it is about, in order of preference.
_SUBJECT_FIELDS = ("key", "run_id", "keys", "peer", "client_id", "address", "operation", "token")
_subject_field: dict[type, str | None] = {}

Entry = tuple[Any, ...]


def new_log(length: int = DEFAULT_LENGTH) -> deque[Entry]:
    """An empty event log that keeps the last `length` entries."""
    return deque(maxlen=length)


def subject(event: Any) -> Any:
    """What `event` is about, small: its key, run id, first keys (and how many), peer...

    None when it names none of these. O(1); the attribute to read is found once per
    event class.
    """
    kind = event.__class__
    try:
        field = _subject_field[kind]
    except KeyError:
        field = _subject_field[kind] = next(
            (name for name in _SUBJECT_FIELDS if hasattr(event, name)), None
        )
    if field is None:
        return None
    value = getattr(event, field)
    if value.__class__ is list:
        if len(value) > LOGGED_KEYS:
            return [*value[:LOGGED_KEYS], f"... {len(value)} in all"]
        return list(value)
    return value


def as_records(log: deque[Entry]) -> list[list[Any]]:
    """The log as lists, oldest first (for msgpack and YAML, which know no tuples)."""
    return [list(entry) for entry in log]
