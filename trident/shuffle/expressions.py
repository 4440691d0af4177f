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
#: dask config key: bytes (an int or a string such as ``"256 MiB"``) above which an
#: exchange (a shuffle or a rechunk) keeps the bundles its owners receive on their disk
#: until they are unpacked; None or False keeps them in memory (see `disk_threshold`)
DISK_KEY = "trident.exchange-disk-threshold"
#: the default of ``trident.exchange-disk-threshold``
DISK_THRESHOLD = 256 * 2**20
#: output partitions per bundle at most: an unpack's arguments hold about this many
#: output partitions' worth of rows, however many partitions an owner has
GROUP_SIZE = 32


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
    if "dask._expr" not in sys.modules:
        return None  # no dask collection was built
    from dask._expr import _HLGExprSequence

    if isinstance(dsk, _HLGExprSequence):
        return _hlg_sequence_graph(dsk, workers)
    if "dask.dataframe.dask_expr" not in sys.modules:
        return None  # no dataframe was built, so there is no shuffle to replace
    import dask.config
    from dask._expr import Expr
    from dask.dataframe.dask_expr._shuffle import SimpleShuffle, TaskShuffle

    if not dask.config.get(CONFIG_KEY, True):
        return None
    if not isinstance(dsk, Expr) or type(dsk).__dask_graph__ is not Expr.__dask_graph__:
        return None
    slots = _slots(workers)
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


def disk_threshold() -> int | None:
    """``trident.exchange-disk-threshold`` from dask's config, in bytes; None when it is
    None or False (exchanges stay in memory). Raises `ValueError` for anything else
    that is not a byte count."""
    import dask.config
    from dask.utils import parse_bytes

    value = dask.config.get(DISK_KEY, DISK_THRESHOLD)
    if value is None or value is False:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        threshold = parse_bytes(value) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{DISK_KEY} must be a number of bytes (such as 268435456 or '256 MiB'), "
            f"None or False; got {value!r}"
        ) from None
    if threshold < 0:
        raise ValueError(f"{DISK_KEY} must not be negative; got {value!r}")
    return threshold


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
    # each owner's output partitions, in order, in groups of at most GROUP_SIZE: the
    # unit a bundle holds, so an unpack needs the data of one group, not its owner's all
    group_of = [-1] * npartitions
    group_owner: list[int] = []
    for owner in sorted({owner for owner in owner_of if owner >= 0}):
        mine = [part for part in range(npartitions) if owner_of[part] == owner]
        for start in range(0, len(mine), GROUP_SIZE):
            for part in mine[start : start + GROUP_SIZE]:
                group_of[part] = len(group_owner)
            group_owner.append(owner)
    groups = tuple(group_of)
    threshold = disk_threshold()
    exchange_parts = frame.npartitions * len(parts)
    split = f"shuffle-split-{name}"
    bundle = f"shuffle-bundle-{name}"
    receive = f"shuffle-receive-{name}"
    layer: dict[Any, Any] = {}
    pins: dict[Any, str] = {}
    for i in range(frame.npartitions):
        layer[(split, i)] = Task(
            (split, i),
            tasks.split_partition,
            TaskRef((frame._name, i)),
            node.partitioning_index,
            npartitions,
            node.ignore_index,
            groups,
        )
        for group, owner in enumerate(group_owner):
            layer[(bundle, i, group)] = Task(
                (bundle, i, group), tasks.take_bundle, TaskRef((split, i)), group
            )
            layer[(receive, i, group)] = Task(
                (receive, i, group),
                tasks.receive_bundle,
                TaskRef((bundle, i, group)),
                exchange_parts,
                threshold,
            )
            if workers:
                pins[(receive, i, group)] = workers[owner]
    for position, part in enumerate(parts):
        group = groups[part]
        bundles = List(*(TaskRef((receive, i, group)) for i in range(frame.npartitions)))
        layer[(name, position)] = Task(
            (name, position), tasks.unpack_partition, bundles, part, node.ignore_index
        )
        if workers:
            pins[(name, position)] = workers[owner_of[part]]
    return layer, pins


def _slots(workers: Mapping[str, int]) -> list[str]:
    """One entry per worker thread, in address order."""
    return [address for address in sorted(workers) for _ in range(max(1, workers[address]))]


def _hlg_sequence_graph(dsk: Any, workers: Mapping[str, int]) -> ShuffleGraph | None:
    """The graph of legacy (HighLevelGraph) collections, as dask's
    ``_HLGExprSequence`` builds it, with their task-based array rechunks done by
    trident's rechunk (`trident.shuffle.rechunk`); None when there is none to replace,
    dask.array is not loaded or ``trident.rechunk`` is off."""
    if "dask.array" not in sys.modules:
        return None
    import dask.config
    from dask._expr import HLGExpr
    from dask.highlevelgraph import HighLevelGraph
    from dask.utils import ensure_dict

    from . import rechunk

    if not dask.config.get(rechunk.CONFIG_KEY, True):
        return None
    if not all(isinstance(operand, HLGExpr) for operand in dsk.operands):
        return None
    slots = _slots(workers)
    owners: dict[Any, str] = {}
    replaced = False
    graphs = []
    # `_HLGExprSequence._optimized_dsk`, with each graph rewritten before optimization
    for operand in dsk.operands:
        keys = operand.__dask_keys__()
        hlg = operand.hlg
        rewritten = rechunk.rewrite_hlg(hlg, slots)
        if rewritten is not None:
            hlg, pins = rewritten
            owners.update(pins)
            replaced = True
        if (optimizer := operand.low_level_optimizer) is not None:
            hlg = optimizer(hlg, keys)
        graphs.append(hlg)
    if not replaced:
        return None
    return ShuffleGraph(ensure_dict(HighLevelGraph.merge(*graphs)), owners)
