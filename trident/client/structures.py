"""Finding futures inside nested Python containers and replacing them by values."""

from __future__ import annotations

from typing import Any

from .._public import publish
from .future import Future

_CONTAINERS = (list, tuple, set, frozenset, dict)


class _Skip:
    """Marks a value left out by ``gather(errors="skip")``."""


_SKIP = _Skip()


def futures_of(obj: Any, client: Any = None) -> list[Future]:
    """Every `Future` inside `obj` (nested lists, tuples, sets, dicts, dask collections).

    Order of first appearance; each future once. With `client`, only that client's.
    """
    found: dict[int, Future] = {}
    stack = [obj]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, Future):
            found.setdefault(id(item), item)
        elif isinstance(item, _CONTAINERS):
            if id(item) in seen:
                continue
            seen.add(id(item))
            values = item.values() if isinstance(item, dict) else item
            stack.extend(reversed(list(values)))
        elif hasattr(item, "__dask_graph__"):
            try:
                graph = item.__dask_graph__()
            except Exception:
                continue
            if graph is not None:
                stack.extend(reversed(list(graph.values())))
    futures = list(found.values())
    if client is not None:
        futures = [f for f in futures if f.client is client]
    return futures


def substitute(obj: Any, values: dict[str, Any], *, skip_missing: bool = False) -> Any:
    """A copy of `obj` with each future replaced by its value, ``values[wire key]``.

    With `skip_missing`, futures whose key is not in `values` are dropped from their
    container (the ``errors="skip"`` behaviour of `Client.gather`).
    """
    result = _substitute(obj, values, skip_missing)
    return None if result is _SKIP else result


def _substitute(obj: Any, values: dict[str, Any], skip: bool) -> Any:
    if isinstance(obj, Future):
        if obj._key in values:
            return values[obj._key]
        if skip:
            return _SKIP
        raise KeyError(obj.key)
    kind = type(obj)
    if kind in (list, tuple, set, frozenset):
        items = [_substitute(x, values, skip) for x in obj]
        items = [x for x in items if x is not _SKIP]
        return kind(items)
    if kind is dict:
        out = {}
        for k, v in obj.items():
            new = _substitute(v, values, skip)
            if new is not _SKIP:
                out[k] = new
        return out
    return obj


publish(globals())
