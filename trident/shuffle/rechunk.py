"""trident's worker-to-worker rechunk for dask arrays (see `trident.shuffle`).

dask.array builds a rechunk outside dask.distributed as one or more stages of graph
tasks (``rechunk-merge-*`` layers: every old block sliced into the pieces each block of
the stage needs, the pieces concatenated), each stage moving the data again. While a
trident client is dask's scheduler, `rewrite_hlg` replaces such a chain of stages by:

* one **split** task per input block that cuts it once into the pieces each output
  block needs (copies, so the input can be released) and gathers them into one
  `Pieces` per group of output blocks (up to ``GROUP_SIZE`` blocks of one owner);
* one **bundle** and one **receive** task per input block and group, as in the
  dataframe shuffle: the receive runs on the group's owner and takes the pieces over,
  so they move once, worker to worker, and the sender's copy is released;
* one **assemble** task per output block, on its owner, that copies its pieces into
  one new array (a single copy per element).

It engages only where a stage of dask's plan is many-to-many (some block of the stage
takes pieces of several blocks before it while some block before it feeds several);
plans of plain merges and splits (such as merging a small array into one block and
splitting it again), unknown or empty chunks, and chunks that are not numpy arrays
stay dask's tasks. ``dask.config.set({"trident.rechunk": False})`` keeps dask's tasks.

A rechunk of more than ``trident.exchange-disk-threshold`` bytes (see
`trident.shuffle`) marks its received pieces cold, so each owner's spill store writes
them to disk as they arrive, and groups its output blocks by at most about
``COLD_GROUP_BYTES``: an assemble reads its group's pieces back into memory (once), and
they are released when the group's blocks are assembled.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from dask._task_spec import List, Task, TaskRef
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from .expressions import disk_threshold

#: dask config key: False keeps dask's task-based rechunk under trident
CONFIG_KEY = "trident.rechunk"
_MERGE_PREFIX = "rechunk-merge-"
#: bytes of one group's output blocks at most (about) in a rechunk whose pieces wait on
#: disk: what an owner holds in memory again while it assembles the group's blocks
COLD_GROUP_BYTES = 128 * 2**20


class Pieces:
    """One input block's pieces for a group of output blocks (all of one owner).

    `pieces` maps an output block index to ``(position, array)`` pairs: the piece's
    offset in that output block and its values. `nbytes` is what the arrays hold, for
    the worker's memory accounting. `cold` pieces (received in a large rechunk, see
    `receive_pieces`) ask the worker's spill store to write them to disk as they are
    stored; a copy of them (pickled) is not cold.
    """

    __slots__ = ("cold", "nbytes", "pieces")

    def __init__(
        self,
        pieces: dict[tuple[int, ...], list[tuple[tuple[int, ...], Any]]],
        cold: bool = False,
    ) -> None:
        self.pieces = pieces
        self.nbytes = sum(array.nbytes for entries in pieces.values() for _, array in entries)
        self.cold = cold

    def __trident_cold__(self) -> str | None:
        # read back once into memory: a group's pieces are a bounded size (`_rechunk_layer`)
        return "read" if self.cold else None

    def __reduce__(self) -> tuple[Any, ...]:
        return Pieces, (self.pieces,)


def split_block(block: Any, cuts: dict[int, list[tuple[Any, tuple[int, ...], tuple]]]) -> dict:
    """The pieces of one input block, one `Pieces` per group: `cuts` maps a group to
    ``(output index, position in the output block, slices of this block)`` entries."""
    import numpy as np

    split = {}
    for group, entries in cuts.items():
        pieces: dict[tuple[int, ...], list[tuple[tuple[int, ...], Any]]] = {}
        for out, position, slices in entries:
            pieces.setdefault(out, []).append((position, np.array(block[slices], copy=True)))
        split[group] = Pieces(pieces)
    return split


def take_pieces(split: dict, group: int) -> Pieces:
    """The pieces of one split for a group of output blocks."""
    return split[group]


def receive_pieces(pieces: Pieces, cold: bool = False) -> Pieces:
    """The pieces, now held by the group's owner (the sender's copy is released);
    `cold` (a rechunk larger than ``trident.exchange-disk-threshold``) returns them
    (not copied) marked to wait on the owner's disk until assembled."""
    return Pieces(pieces.pieces, cold=True) if cold else pieces


def assemble_block(received: list[Pieces], out: tuple[int, ...], shape: tuple[int, ...]) -> Any:
    """Output block `out` of `shape`, its pieces copied into one new array."""
    import numpy as np

    entries = [entry for pieces in received for entry in pieces.pieces.get(out, ())]
    result = np.empty(shape, dtype=np.result_type(*(array for _, array in entries)))
    for position, array in entries:
        result[tuple(slice(p, p + n) for p, n in zip(position, array.shape, strict=True))] = array
    return result


def _intersections(
    old: tuple[int, ...], new: tuple[int, ...]
) -> list[list[tuple[int, slice, int]]]:
    """For each new chunk of one dimension: ``(old chunk, slice of it, offset in the
    new chunk)`` for every old chunk it overlaps."""
    bounds = [0, *itertools.accumulate(old)]
    result = []
    start = 0
    for size in new:
        stop = start + size
        entries = []
        for i in range(len(old)):
            low, high = max(start, bounds[i]), min(stop, bounds[i + 1])
            if low < high:
                entries.append((i, slice(low - bounds[i], high - bounds[i]), low - start))
        result.append(entries)
        start = stop
    return result


def _many_to_many(crossed: list[list[list[tuple[int, slice, int]]]]) -> bool:
    """Whether some new block takes pieces of several old blocks while some old block
    feeds several new blocks (`crossed`: `_intersections` of each dimension)."""
    gathers = any(len(entries) > 1 for dim in crossed for entries in dim)
    feeds: dict[tuple[int, int], int] = {}
    for d, dim in enumerate(crossed):
        for entries in dim:
            for i, _, _ in entries:
                feeds[d, i] = feeds.get((d, i), 0) + 1
    return gathers and any(count > 1 for count in feeds.values())


def _crossed(old: tuple[tuple[int, ...], ...], new: tuple[tuple[int, ...], ...]) -> list:
    return [_intersections(o, n) for o, n in zip(old, new, strict=True)]


def _chunks_of(layer: Any) -> tuple[tuple[int, ...], ...] | None:
    annotations = getattr(layer, "collection_annotations", None) or {}
    chunks = annotations.get("chunks")
    if chunks is None or annotations.get("chunk_type") != "numpy.ndarray":
        return None
    if any(not isinstance(c, int) or isinstance(c, bool) or c <= 0 for dim in chunks for c in dim):
        return None
    return tuple(tuple(dim) for dim in chunks)


def _nbytes(layer: Any, chunks: tuple[tuple[int, ...], ...]) -> int:
    """The bytes of the array of `chunks` a layer makes (its dtype's item size, 8 when
    the layer does not say)."""
    dtype = (getattr(layer, "collection_annotations", None) or {}).get("dtype")
    itemsize = getattr(dtype, "itemsize", None) or 8
    return math.prod(sum(dim) for dim in chunks) * itemsize


def rewrite_hlg(hlg: Any, slots: list[str]) -> tuple[Any, dict[Any, str]] | None:
    """`hlg` (a dask HighLevelGraph) with every rechunk chain worth replacing done by
    trident's rechunk, and the worker each of its keys should run on; None when none
    is replaced."""
    layers = dict(hlg.layers)
    dependencies = {name: set(deps) for name, deps in hlg.dependencies.items()}
    dependents: dict[str, set[str]] = {name: set() for name in layers}
    for name, deps in dependencies.items():
        for dep in deps:
            dependents.setdefault(dep, set()).add(name)

    def is_rechunk(name: Any) -> bool:
        return isinstance(name, str) and name.startswith(_MERGE_PREFIX) and name in layers

    owners: dict[Any, str] = {}
    replaced = False
    threshold = disk_threshold()
    finals = [
        name
        for name in list(layers)
        if is_rechunk(name) and not any(is_rechunk(d) for d in dependents.get(name, ()))
    ]
    for final in finals:
        chain = [final]
        while True:
            deps = dependencies.get(chain[-1], set())
            if len(deps) != 1:
                chain = []
                break
            (dep,) = deps
            if not is_rechunk(dep):
                break
            if dependents.get(dep) != {chain[-1]}:
                chain = []
                break
            chain.append(dep)
        if not chain:
            continue
        (source,) = dependencies[chain[-1]]
        # the chunks before and after each of dask's stages
        found = [_chunks_of(layers.get(source)), *(_chunks_of(layers[n]) for n in chain[::-1])]
        stages = [chunks for chunks in found if chunks is not None]
        if len(stages) < len(found):
            continue
        old, new = stages[0], stages[-1]
        if len(old) != len(new) or any(sum(o) != sum(n) for o, n in zip(old, new, strict=True)):
            continue
        # a plan of plain merges and splits moves no piece twice: dask's tasks do well
        if not any(_many_to_many(_crossed(a, b)) for a, b in itertools.pairwise(stages)):
            continue
        crossed = _crossed(old, new)
        nbytes = _nbytes(layers[final], new)
        cold = threshold is not None and nbytes > threshold
        layer, pins = _rechunk_layer(
            final, source, old, new, crossed, slots, nbytes if cold else None
        )
        for name in chain:
            del layers[name]
            dependencies.pop(name, None)
        layers[final] = MaterializedLayer(layer)
        dependencies[final] = {source}
        owners.update(pins)
        replaced = True
    if not replaced:
        return None
    return HighLevelGraph(layers, dependencies), owners


def _rechunk_layer(
    name: str,
    source: str,
    old: tuple[tuple[int, ...], ...],
    new: tuple[tuple[int, ...], ...],
    crossed: list[list[list[tuple[int, slice, int]]]],
    slots: list[str],
    cold_bytes: int | None,
) -> tuple[dict[Any, Any], dict[Any, str]]:
    """The tasks of one rechunk from `source` (blocks of `old` chunks) to `name`
    (blocks of `new` chunks), and the worker each output block should run on. With
    `cold_bytes` (the array's bytes, above ``trident.exchange-disk-threshold``) the
    received pieces wait on their owners' disks, in groups of at most about
    ``COLD_GROUP_BYTES`` (a group's pieces come back into memory while its blocks are
    assembled)."""
    from .expressions import GROUP_SIZE

    outputs = list(itertools.product(*(range(len(dim)) for dim in new)))
    cold = cold_bytes is not None
    group_size = GROUP_SIZE
    if cold_bytes:
        group_size = max(1, min(GROUP_SIZE, COLD_GROUP_BYTES * len(outputs) // cold_bytes))
    workers = sorted(set(slots))
    # contiguous runs of output blocks per slot: neighbours share their inputs
    owner_of = {
        out: workers.index(slots[position * len(slots) // len(outputs)]) if slots else 0
        for position, out in enumerate(outputs)
    }
    group_of: dict[tuple[int, ...], int] = {}
    group_owner: list[int] = []
    for owner in sorted(set(owner_of.values())):
        mine = [out for out in outputs if owner_of[out] == owner]
        for start in range(0, len(mine), group_size):
            for out in mine[start : start + group_size]:
                group_of[out] = len(group_owner)
            group_owner.append(owner)
    # input block -> group -> (output, position, slices)
    cuts: dict[tuple[int, ...], dict[int, list]] = {}
    sources: dict[int, set[tuple[int, ...]]] = {group: set() for group in range(len(group_owner))}
    for out in outputs:
        per_dim = [crossed[d][j] for d, j in enumerate(out)]
        for combination in itertools.product(*per_dim):
            block = tuple(i for i, _, _ in combination)
            slices = tuple(s for _, s, _ in combination)
            position = tuple(p for _, _, p in combination)
            group = group_of[out]
            cuts.setdefault(block, {}).setdefault(group, []).append((out, position, slices))
            sources[group].add(block)
    split = f"rechunk-split-trident-{name}"
    bundle = f"rechunk-bundle-trident-{name}"
    receive = f"rechunk-receive-trident-{name}"
    layer: dict[Any, Any] = {}
    pins: dict[Any, str] = {}
    for block, groups in cuts.items():
        layer[(split, *block)] = UnfusedTask(
            (split, *block), split_block, TaskRef((source, *block)), groups
        )
        for group in groups:
            key: tuple[Any, ...] = (bundle, group, *block)
            layer[key] = UnfusedTask(key, take_pieces, TaskRef((split, *block)), group)
            layer[(receive, group, *block)] = UnfusedTask(
                (receive, group, *block), receive_pieces, TaskRef(key), cold
            )
            if workers:
                pins[(receive, group, *block)] = workers[group_owner[group]]
    for out in outputs:
        group = group_of[out]
        blocks = sorted(
            {
                tuple(i for i, _, _ in c)
                for c in itertools.product(*(crossed[d][j] for d, j in enumerate(out)))
            }
        )
        shape = tuple(new[d][j] for d, j in enumerate(out))
        layer[(name, *out)] = UnfusedTask(
            (name, *out),
            assemble_block,
            List(*(TaskRef((receive, group, *block)) for block in blocks)),
            out,
            shape,
        )
        if workers:
            pins[(name, *out)] = workers[owner_of[out]]
    assert math.prod(len(dim) for dim in new) == len(outputs)
    return layer, pins


class UnfusedTask(Task):
    """A dask task that dask's linear fusion leaves alone: a receive must stay its own
    task (on the owner), and an assemble its own output key."""

    __slots__ = ()

    @property
    def block_fusion(self) -> bool:
        return True
