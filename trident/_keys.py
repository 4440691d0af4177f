"""`key_prefix`: the function-name part of a task key, as every role groups keys by it.

The scheduler groups tasks by prefix (durations, the dashboard's task stream), the worker
names profile trees by it, and diagnostics count by it; a neutral leaf so that none of
them imports another for it.
"""

from __future__ import annotations

_prefixes: dict[str, str] = {}
#: Distinct prefixes interned at most: keys of a user's own making may all differ.
PREFIXES_INTERNED = 10_000


def key_prefix(key: str) -> str:
    """The function-name part of a key: ``inc-1f3a...`` -> ``inc``.

    Prefixes are interned: a million tasks of one function share one string (up to
    `PREFIXES_INTERNED` distinct prefixes; beyond that they are not kept).
    """
    head, sep, _ = key.rpartition("-")
    prefix = head if sep else key
    interned = _prefixes.get(prefix)
    if interned is not None:
        return interned
    if len(_prefixes) < PREFIXES_INTERNED:
        _prefixes[prefix] = prefix
    return prefix
