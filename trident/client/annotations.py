"""dask annotations as task options: ``with dask.annotate(retries=2): ...``.

dask records annotations in two places, and a graph submitted to trident reads both,
as dask.distributed does:

- the annotations active when a graph is *computed* (``dask.get_annotations()`` inside
  ``with dask.annotate(...)`` around ``compute``/``persist``/``Client.get``) apply to
  every task of the graph, below what the call itself asks for (``priority=``,
  ``retries=``, ``workers=``, ``resources=`` of `Client.compute` win);
- the annotations active when a collection was *built* travel in its graph's layers
  (``collection.__dask_annotations__()``) and apply to those layers' tasks, above both.

`submit` and `map` take the active annotations the same way (`with_active_annotations`).

The annotations trident acts on are ``priority``, ``retries``, ``resources``,
``workers`` and ``allow_other_workers``; a value may be a callable of the key. Others
(a user's own) are ignored, as dask's scheduler keeps them for plugins only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .delayed_graphs import delayed_operands
from .task_specs import TaskOptions

#: the annotations that become task options
KNOWN = ("priority", "retries", "resources", "workers", "allow_other_workers")


def active_annotations() -> dict[str, Any]:
    """The known annotations of the ``dask.annotate`` blocks around this call."""
    dask = sys.modules.get("dask")
    get = getattr(dask, "get_annotations", None)
    if get is None:
        return {}
    return {name: value for name, value in get().items() if name in KNOWN}


def graph_annotations(dsk: Any) -> dict[str, dict[Any, Any]]:
    """``{annotation: {graph key: value}}`` that a dask expression, collection or
    HighLevelGraph carries for its tasks (empty for plain dicts)."""
    found: dict[str, dict[Any, Any]] = {}
    layers = getattr(dsk, "layers", None)
    if isinstance(layers, Mapping):  # a HighLevelGraph
        for layer in layers.values():
            for name, value in (getattr(layer, "annotations", None) or {}).items():
                if name in KNOWN:
                    found.setdefault(name, {}).update(
                        (key, value(key) if callable(value) else value) for key in layer
                    )
        return found
    if isinstance(dsk, type):
        return found
    operands = delayed_operands(dsk)
    if operands is not None:  # read from the layers, not through dask's slow cull
        for operand in operands:
            for name, values in graph_annotations(operand.hlg).items():
                found.setdefault(name, {}).update(values)
        return found
    operands = getattr(dsk, "operands", None)
    if (
        isinstance(operands, (list, tuple))
        and operands
        and not any(
            getattr(layer, "annotations", None)
            for operand in operands
            for layer in getattr(getattr(operand, "hlg", None), "layers", {None: None}).values()
        )
    ):
        # HighLevelGraph collections whose layers carry no annotations: asking dask
        # would optimize the graph only to find none (wasted where trident rewrites it)
        return found
    annotations = getattr(dsk, "__dask_annotations__", None)
    if annotations is None:  # a collection: its graph's layers
        graph = getattr(dsk, "__dask_graph__", None)
        inner = graph() if graph is not None else None
        return graph_annotations(inner) if hasattr(inner, "layers") else found
    for name, by_key in annotations().items():
        if name in KNOWN:
            found[name] = {
                key: value
                for key, value in by_key.items()
                if type(value).__name__ != "_AnnotationsTombstone"
            }
    return found


@attrs.frozen
class Annotations:
    """The annotations of one graph submission: `active` for every task (values may
    be callables of the key), `by_key` (trident key -> annotation -> value) per task."""

    active: Mapping[str, Any] = attrs.Factory(dict)
    by_key: Mapping[str, Mapping[str, Any]] = attrs.Factory(dict)

    @classmethod
    def of(
        cls,
        dsk: Any,
        keys: Callable[[], Iterable[Any]],
        trident_key: Callable[[Any], str],
        active: Mapping[str, Any],
    ) -> Annotations:
        """The annotations of graph `dsk` computed under the `active` ones; `keys()`
        gives the graph's keys (asked for only when an active annotation is a
        callable), `trident_key` maps a graph key to its wire key."""
        by_key: dict[str, dict[str, Any]] = {}
        for name, value in active.items():
            if callable(value):
                for key in keys():
                    by_key.setdefault(trident_key(key), {})[name] = value(key)
        for name, values in graph_annotations(dsk).items():
            for key, value in values.items():
                by_key.setdefault(trident_key(key), {})[name] = value
        static = {name: value for name, value in active.items() if not callable(value)}
        return cls(static, by_key)

    def __bool__(self) -> bool:
        return bool(self.active or self.by_key)

    def base(self, options: TaskOptions) -> TaskOptions:
        """`options` (what the call asked for) with the active annotations where the
        call left an option at its default."""
        asked = {
            "priority": options.priority != 0,
            "retries": options.retries is not None,
            "resources": options.resources is not None,
            "workers": options.workers is not None,
            "allow_other_workers": bool(options.allow_other_workers),
        }
        fill = {name: v for name, v in self.active.items() if not asked[name]}
        return apply(options, fill) if fill else options

    def for_key(self, key: str, options: TaskOptions) -> TaskOptions:
        """`options` with the task `key`'s own annotations on top."""
        own = self.by_key.get(key)
        return apply(options, own) if own else options


def with_active_annotations(options: TaskOptions) -> TaskOptions:
    """The `options` of a `submit` or `map` call under the active annotations (``with
    dask.annotate(retries=2): client.submit(...)``, as dask's `submit` reads them):
    they fill what the call leaves at its defaults. Callable annotations, which need a
    key of a graph, apply to graphs only."""
    active = {name: v for name, v in active_annotations().items() if not callable(v)}
    return Annotations(active).base(options) if active else options


def apply(options: TaskOptions, annotations: Mapping[str, Any]) -> TaskOptions:
    """`options` with `annotations` (known names only) in place of its fields.

    Raises `TypeError` naming the annotation whose value has the wrong type.
    """
    changes: dict[str, Any] = {}
    for name, value in annotations.items():
        if value is None:
            continue
        if name == "priority":
            changes["priority"] = _number(name, value)
        elif name == "retries":
            changes["retries"] = int(_number(name, value))
        elif name == "resources":
            if not isinstance(value, Mapping):
                raise TypeError(
                    f"the resources annotation must map resource names to amounts, "
                    f"e.g. {{'GPU': 1}}; got {value!r}"
                )
            changes["resources"] = {str(k): float(v) for k, v in value.items()}
        elif name == "workers":
            changes["workers"] = [value] if isinstance(value, (str, int)) else list(value)
        elif name == "allow_other_workers":
            changes["allow_other_workers"] = bool(value)
    return attrs.evolve(options, **changes)


def _number(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"the {name} annotation must be a number, got {value!r}")
    return value
