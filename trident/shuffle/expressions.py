"""`shuffle_graph`: a dask expression's task graph with its task-based shuffles replaced
by trident's worker-to-worker shuffle (see `trident.shuffle`)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import attrs

from . import tasks

#: dask config key: False keeps dask's task-based shuffle under trident
CONFIG_KEY = "trident.shuffle"


@attrs.frozen
class ShuffleGraph:
    """A task graph, and the workers some of its keys should run on (loosely)."""

    graph: dict[Any, Any]
    #: graph key -> the worker address its task should run on
    owners: dict[Any, str]


def shuffle_graph(dsk: Any, workers: Mapping[str, int]) -> ShuffleGraph | None:
    """The graph of the dask expression `dsk` with every task-based dataframe shuffle in
    it done by trident's shuffle, its output partitions spread over `workers`
    (address -> threads) in proportion to their threads.

    None when `dsk` is not such an expression, has no such shuffle, dask.dataframe is
    not loaded, or ``trident.shuffle`` is off in dask's config: the caller then builds
    the graph as dask does. The keys are the ones dask's own graph would have.
    """
    if "dask.dataframe.dask_expr" not in sys.modules:
        return None  # no dataframe was built, so there is no shuffle to replace
    import dask.config
    from dask._expr import Expr
    from dask.dataframe.dask_expr._shuffle import SimpleShuffle, TaskShuffle

    if not dask.config.get(CONFIG_KEY, True):
        return None
    if not isinstance(dsk, Expr) or type(dsk).__dask_graph__ is not Expr.__dask_graph__:
        return None
    slots = [address for address in sorted(workers) for _ in range(max(1, workers[address]))]
    graph: dict[Any, Any] = {}
    owners: dict[Any, str] = {}
    replaced = False
    # The walk of `Expr.__dask_graph__`, with shuffle nodes built differently.
    stack = [dsk]
    seen: set[str] = set()
    while stack:
        expr = stack.pop()
        if expr._name in seen:
            continue
        seen.add(expr._name)
        if type(expr) in (TaskShuffle, SimpleShuffle):
            replaced = True
            layer, pins = _shuffle_layer(expr, slots)
            graph.update(layer)
            owners.update(pins)
        else:
            graph.update(expr._layer())
        stack.extend(expr.dependencies())
    return ShuffleGraph(graph, owners) if replaced else None


def _shuffle_layer(node: Any, slots: list[str]) -> tuple[dict[Any, Any], dict[Any, str]]:
    """The tasks of one shuffle expression (a dask ``SimpleShuffle``/``TaskShuffle``),
    with its output keys, and the worker each output key should run on."""
    from dask._task_spec import List, Task, TaskRef

    name = node._name
    frame = node.frame
    npartitions = node.npartitions_out
    parts = list(node._partitions)
    workers = sorted(set(slots))
    # output partition -> index of its owner in `workers`; -1 where it is not computed
    owner_of = [-1] * npartitions
    for position, part in enumerate(parts):
        owner_of[part] = workers.index(slots[position % len(slots)]) if slots else 0
    owners = tuple(owner_of)
    used = sorted({owner for owner in owners if owner >= 0})
    split = f"shuffle-split-{name}"
    bundle = f"shuffle-bundle-{name}"
    receive = f"shuffle-receive-{name}"
    layer: dict[Any, Any] = {}
    for i in range(frame.npartitions):
        layer[(split, i)] = Task(
            (split, i),
            tasks.split_partition,
            TaskRef((frame._name, i)),
            node.partitioning_index,
            npartitions,
            node.ignore_index,
            owners,
        )
        for owner in used:
            layer[(bundle, i, owner)] = Task(
                (bundle, i, owner), tasks.take_bundle, TaskRef((split, i)), owner
            )
            layer[(receive, i, owner)] = Task(
                (receive, i, owner), tasks.receive_bundle, TaskRef((bundle, i, owner))
            )
    pins: dict[Any, str] = {}
    if workers:
        for i in range(frame.npartitions):
            for owner in used:
                pins[(receive, i, owner)] = workers[owner]
    for position, part in enumerate(parts):
        owner = owners[part]
        bundles = List(*(TaskRef((receive, i, owner)) for i in range(frame.npartitions)))
        layer[(name, position)] = Task(
            (name, position), tasks.unpack_partition, bundles, part, node.ignore_index
        )
        if workers:
            pins[(name, position)] = workers[owner]
    return layer, pins
