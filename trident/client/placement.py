"""`GraphPlacement`: where the tasks of one graph may run, for every task or per key.

`Client.get` takes dask's per-key forms: ``restrictions={key: workers}`` with
``loose_restrictions=[key, ...]``, and ``resources={key: {resource: amount}}``; and,
like `submit`, ``workers=`` and ``resources=`` for every task. `Client.compute` and
`Client.persist` take dask's collection forms (`for_collections`): a worker or a list
restricts the output keys of the collections, other tasks run anywhere; a dict maps
(tuples of) collections or keys to workers; ``allow_other_workers`` is True or a list of
collections whose restrictions are loose. dask's annotations (``with
dask.annotate(workers=..., resources=..., retries=..., priority=...)``) place the keys
they cover (`GraphPlacement.with_annotations`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .graphs import flatten_keys, trident_key
from .task_specs import TaskOptions


@attrs.frozen
class GraphPlacement:
    """The options of every task of a graph, and the keys that differ from them."""

    options: TaskOptions
    #: key -> workers it is restricted to
    workers: Mapping[str, Any] = attrs.Factory(dict)
    #: keys whose restriction is loose (they may run elsewhere), or True for all
    loose: bool | frozenset[str] = False
    #: key -> resources it needs
    resources: Mapping[str, dict[str, float]] = attrs.Factory(dict)
    #: key -> retries and priority it was annotated with (``dask.annotate``)
    retries: Mapping[str, int] = attrs.Factory(dict)
    priority: Mapping[str, int] = attrs.Factory(dict)

    def options_for(self, key: str) -> TaskOptions:
        """The options of the task `key`."""
        if not (self.workers or self.resources or self.retries or self.priority):
            return self.options
        options = self.options
        workers = self.workers.get(key)
        if workers is not None:
            loose = self.loose is True or (self.loose is not False and key in self.loose)
            options = attrs.evolve(options, workers=workers, allow_other_workers=loose)
        resources = self.resources.get(key)
        if resources is not None:
            options = attrs.evolve(options, resources=resources)
        retries = self.retries.get(key)
        if retries is not None:
            options = attrs.evolve(options, retries=retries)
        priority = self.priority.get(key)
        if priority is not None:
            options = attrs.evolve(options, priority=priority)
        return options

    def with_annotations(self, annotations: Mapping[str, Mapping[str, Any]]) -> GraphPlacement:
        """This placement with dask's annotations (``dask.annotate``), given by type
        (``workers``, ``allow_other_workers``, ``resources``, ``retries``,
        ``priority``) and trident key. What the caller passed explicitly wins: a key's
        own restriction, and ``resources=``, ``retries=`` or ``priority=`` for every
        task. Other annotation types are ignored, as dask's scheduler ignores those it
        does not know."""
        if not annotations:
            return self
        workers = dict(self.workers)
        loose_keys: set[str] = set()
        allow = annotations.get("allow_other_workers", {})
        for key, where in annotations.get("workers", {}).items():
            if key in self.workers or not where:
                continue
            workers[key] = _worker_list(where)
            if allow.get(key):
                loose_keys.add(key)
        loose = self.loose
        if loose_keys and loose is not True:
            loose = frozenset(loose or ()) | loose_keys
        resources = dict(self.resources)
        if self.options.resources is None:
            for key, needs in annotations.get("resources", {}).items():
                if needs and key not in resources:
                    resources[key] = {str(name): float(v) for name, v in needs.items()}
        retries: dict[str, int] = {}
        if self.options.retries is None:
            retries = {k: int(v) for k, v in annotations.get("retries", {}).items() if v}
        priority: dict[str, int] = {}
        if self.options.priority == 0:
            priority = {k: int(v) for k, v in annotations.get("priority", {}).items() if v}
        return attrs.evolve(
            self,
            workers=workers,
            loose=loose,
            resources=resources,
            retries=retries,
            priority=priority,
        )

    def with_owners(self, owners: Mapping[Any, str]) -> GraphPlacement:
        """This placement with each key of `owners` (graph keys) placed loosely on its
        worker, unless the caller restricted that key already."""
        if not owners:
            return self
        pinned = {trident_key(key): [address] for key, address in owners.items()}
        new = {key: where for key, where in pinned.items() if key not in self.workers}
        loose: bool | frozenset[str] = True
        if self.loose is not True:
            loose = frozenset(self.loose or ()) | frozenset(new)
        return attrs.evolve(self, workers={**new, **self.workers}, loose=loose)


def with_current_annotations(options: TaskOptions) -> TaskOptions:
    """`options` of a `submit` or `map` call with the annotations in force
    (``with dask.annotate(resources=..., retries=..., ...)``, as dask's `submit` takes
    them), where the call gave none of its own. Callable annotations, which need a
    task's key, are left to graphs."""
    dask = sys.modules.get("dask")
    current = getattr(dask, "get_annotations", None) if dask is not None else None
    found = {k: v for k, v in (current() if current is not None else {}).items()}
    found = {kind: value for kind, value in found.items() if not callable(value)}
    if not found:
        return options
    changes: dict[str, Any] = {}
    if options.workers is None and found.get("workers"):
        changes["workers"] = _worker_list(found["workers"])
        changes["allow_other_workers"] = bool(found.get("allow_other_workers", False))
    if options.resources is None and found.get("resources"):
        changes["resources"] = {str(k): float(v) for k, v in found["resources"].items()}
    if options.retries is None and found.get("retries"):
        changes["retries"] = int(found["retries"])
    if options.priority == 0 and found.get("priority"):
        changes["priority"] = int(found["priority"])
    return attrs.evolve(options, **changes) if changes else options


def for_graph(
    base: TaskOptions, restrictions: Any, loose_restrictions: Any, resources: Any
) -> GraphPlacement:
    """`Client.get`'s placement: per-key `restrictions` and `resources` (dicts of dicts),
    or `base` (``workers=``, ``resources=`` for every task)."""
    per_key_resources: dict[str, dict[str, float]] = {}
    if resources and all(isinstance(v, Mapping) for v in resources.values()):
        per_key_resources = {trident_key(k): dict(v) for k, v in resources.items()}
    elif resources:
        base = attrs.evolve(base, resources=dict(resources))
    if restrictions is None:
        return GraphPlacement(base, resources=per_key_resources)
    if not isinstance(restrictions, Mapping):
        raise TypeError(
            "restrictions must map keys to workers, e.g. {'x': ['tcp://...']}; "
            "use workers= to restrict every task"
        )
    loose: bool | frozenset[str] = frozenset(trident_key(k) for k in loose_restrictions or ())
    workers = {trident_key(k): _worker_list(v) for k, v in restrictions.items()}
    return GraphPlacement(base, workers, loose, per_key_resources)


def for_collections(
    base: TaskOptions,
    collections: list[Any],
    workers: Any,
    allow_other_workers: Any,
    output_keys: Callable[[Any], Iterable[str]],
) -> GraphPlacement:
    """`Client.compute` / `persist`'s placement (see the module docstring).

    `output_keys(collection)` gives the keys of a collection's outputs.
    """
    unrestricted = attrs.evolve(base, workers=None, allow_other_workers=False)
    if workers is None:
        return GraphPlacement(unrestricted)
    if isinstance(workers, Mapping):
        by_key: dict[str, Any] = {}
        for target, where in workers.items():
            for key in _target_keys(target, output_keys):
                by_key[key] = _worker_list(where)
    else:
        where = _worker_list(workers)
        by_key = {key: where for c in collections for key in output_keys(c)}
    loose: bool | frozenset[str]
    if allow_other_workers is True or allow_other_workers is False:
        loose = allow_other_workers
    else:
        loose = frozenset(
            key for target in allow_other_workers for key in _target_keys(target, output_keys)
        )
    return GraphPlacement(unrestricted, by_key, loose)


def _target_keys(target: Any, output_keys: Callable[[Any], Iterable[str]]) -> list[str]:
    """The keys a dict entry of ``workers=`` names: a collection, a key, or a tuple of
    collections (a tuple of strings and numbers is one dask key)."""
    if hasattr(target, "__dask_graph__"):
        return list(output_keys(target))
    if isinstance(target, tuple) and any(hasattr(t, "__dask_graph__") for t in target):
        return [key for t in target for key in _target_keys(t, output_keys)]
    return [trident_key(target)]


def _worker_list(workers: Any) -> list[str]:
    if isinstance(workers, (str, int)):
        return [str(workers)]
    return [str(w) for w in workers]


def collection_output_keys(collection: Any) -> list[str]:
    """The keys of a dask collection's outputs, as trident names them."""
    return [trident_key(k) for k in flatten_keys(collection.__dask_keys__())]
