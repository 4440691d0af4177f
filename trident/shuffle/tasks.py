"""The functions a trident shuffle's tasks run on workers (see `trident.shuffle`).

They use dask.dataframe's own hashing and concatenation, so each output partition
holds the rows, in the order, that dask's single-stage task-based shuffle gives it.

A split does not cut its input into one small frame per output partition (thousands of
tiny frames, each sized, checked for pickling, pickled and concatenated on its own):
it reorders its rows once, stably, by owner and then by output partition, and hands
each owner one `Bundle`, a single frame whose rows for each output partition are
consecutive. The owner slices its partition's rows out of every bundle and
concatenates them in input order.
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Bundle:
    """One input partition's rows for the output partitions one owner holds.

    `frame` holds the rows of output partition ``parts[i]`` at positions
    ``offsets[i]:offsets[i + 1]``, each run in the input's order.
    """

    frame: Any
    #: the output partitions, in the order their rows appear in `frame`
    parts: tuple[int, ...]
    #: len(parts) + 1 row positions: where each partition's rows start, then the end
    offsets: tuple[int, ...]
    #: the bytes `frame` holds (dask's estimate), for the worker's memory accounting
    nbytes: int

    def piece(self, part: int) -> Any:
        """The rows of output partition `part` (a slice of `frame`)."""
        i = self.parts.index(part)
        return self.frame.iloc[self.offsets[i] : self.offsets[i + 1]]


@attrs.frozen
class Split:
    """One input partition's bundles, by owner."""

    bundles: dict[int, Bundle]
    #: the bytes the bundles hold, for the worker's memory accounting
    nbytes: int


def partition_index(frame: Any, column: Any, npartitions: int) -> Any:
    """The output partition of each row of `frame`: a numpy integer array.

    As dask's ``shuffle_group`` computes it for a single-stage shuffle into
    `npartitions` partitions: the values of the ``"_partitions"`` column when `column`
    names it, else the hash of the `column` columns (of all columns when `column` is
    empty) modulo `npartitions`.
    """
    import numpy as np
    from dask.dataframe.dispatch import hash_object_dispatch

    columns = [column] if isinstance(column, str) else column
    if columns and columns[0] == "_partitions":
        index = frame[columns[0]]
    else:
        index = hash_object_dispatch(frame[columns] if columns else frame, index=False)
    index = (index % npartitions).astype(np.min_scalar_type(npartitions * 2))
    return np.asarray(index).astype(np.intp)


def split_partition(
    frame: Any,
    column: Any,
    npartitions: int,
    ignore_index: bool,
    owners: tuple[int, ...],
) -> Split:
    """The rows of one input partition, one `Bundle` per owner.

    `owners[j]` is the owner (an index into the shuffle's workers) of output partition
    `j`, or -1 when that partition is not computed (its rows are dropped). Every owner
    in `owners` gets a bundle, an empty one included. `ignore_index` is applied when
    the pieces are concatenated (`unpack_partition`).
    """
    import numpy as np
    import pandas as pd
    from dask.sizeof import sizeof

    index = partition_index(frame, column, npartitions)
    # rank of each output partition when they are ordered by (owner, partition);
    # partitions not computed rank last and are dropped
    order = sorted(range(npartitions), key=lambda j: (owners[j] < 0, owners[j], j))
    rank = np.empty(npartitions, dtype=np.intp)
    rank[order] = np.arange(npartitions, dtype=np.intp)
    indexer, counts = pd._libs.algos.groupsort_indexer(rank[index], npartitions)
    # counts[0] counts missing values, of which there are none
    ends = np.cumsum(counts[1:])
    bundles: dict[int, Bundle] = {}
    position = 0
    start = 0
    while position < npartitions and owners[order[position]] >= 0:
        owner = owners[order[position]]
        first = position
        while position < npartitions and owners[order[position]] == owner:
            position += 1
        stop = int(ends[position - 1])
        part_frame = frame.take(indexer[start:stop])
        offsets = (0, *(int(ends[r]) - start for r in range(first, position)))
        parts = tuple(order[first:position])
        bundles[owner] = Bundle(part_frame, parts, offsets, int(sizeof(part_frame)))
        start = stop
    return Split(bundles, sum(bundle.nbytes for bundle in bundles.values()))


def take_bundle(split: Split, owner: int) -> Bundle:
    """The bundle of one split that `owner` needs."""
    return split.bundles[owner]


def unpack_partition(bundles: list[Bundle], part: int, ignore_index: bool) -> Any:
    """Output partition `part`: its rows from every input partition, in input order,
    concatenated as dask's task-based shuffle concatenates them (empty pieces left
    out, the first piece when all are empty)."""
    from dask.dataframe import methods

    pieces = [bundle.piece(part) for bundle in bundles]
    full = [piece for piece in pieces if len(piece)]
    if not full:
        return pieces[0].reset_index(drop=True) if ignore_index else pieces[0]
    return methods.concat(full, uniform=True, ignore_index=ignore_index)
