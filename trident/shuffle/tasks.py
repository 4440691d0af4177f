"""The functions a trident shuffle's tasks run on workers (see `trident.shuffle`).

They use dask.dataframe's own hashing and concatenation, so each output partition
holds the rows, in the order, that dask's single-stage task-based shuffle gives it.

A split does not cut its input into one small frame per output partition (thousands of
tiny frames, each sized, checked for pickling, pickled and concatenated on its own):
it reorders its rows once, stably, by group of output partitions (each group owned by
one worker) and then by output partition, and makes one `Bundle` per group, a single
frame whose rows for each output partition are consecutive. The owner slices its
partition's rows out of every input's bundle for that group and concatenates them in
input order.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..protocol.unpicklable import surely_picklable


class Bundle:
    """One input partition's rows for a group of output partitions (all of one owner).

    `frame` holds the rows of output partition ``parts[i]`` at positions
    ``offsets[i]:offsets[i + 1]``, each run in the input's order. `nbytes` is what
    `frame` holds (dask's estimate), for the worker's memory accounting: sizing a
    bundle costs nothing. A `cold` bundle (one received in a large exchange, see
    `receive_bundle`) asks the worker's spill store to write it to disk as it is stored
    (``__trident_cold__``); a copy of it (pickled: sent, spilled, read back) is not cold
    but `mapped`: its arrays may view a file the worker maps, so what is unpacked from
    it is copied into memory of its own.
    """

    __slots__ = ("_columns", "cold", "frame", "mapped", "nbytes", "offsets", "parts")

    def __init__(
        self,
        frame: Any,
        parts: tuple[int, ...],
        offsets: tuple[int, ...],
        nbytes: int,
        cold: bool = False,
        mapped: bool = False,
    ) -> None:
        self.frame = frame
        #: the output partitions, in the order their rows appear in `frame`
        self.parts = parts
        #: len(parts) + 1 row positions: where each partition's rows start, then the end
        self.offsets = offsets
        self.nbytes = nbytes
        self.cold = cold
        self.mapped = mapped
        self._columns: tuple[Any, ...] | None = None

    def __trident_surely_picklable__(self) -> bool:
        return surely_picklable(self.frame)

    def __trident_cold__(self) -> str | None:
        # each unpack takes one output partition's rows: read back mapped, not kept
        return "map" if self.cold else None

    @classmethod
    def of(cls, frame: Any, parts: tuple[int, ...], offsets: tuple[int, ...]) -> Bundle:
        """The bundle of `frame`, sized by dask's ``sizeof``."""
        from dask.sizeof import sizeof

        return cls(frame, parts, offsets, int(sizeof(frame)))

    def __reduce__(self) -> tuple[Any, ...]:
        mapped = self.cold or self.mapped
        packed = _pack_index(self.frame)
        if packed is None:
            return Bundle, (self.frame, self.parts, self.offsets, self.nbytes, False, mapped)
        return _unpack_bundle, (*packed, self.parts, self.offsets, self.nbytes, mapped)

    def columns(self) -> tuple[Any, list[Any], Any] | None:
        """``(signature, column arrays, index array)`` of `frame`, computed once per
        process: the arrays (numpy or pandas extension arrays) an owner slices instead
        of building a pandas object per piece, and a signature (column labels, dtypes,
        index type, dtype and name) that is equal for frames whose pieces concatenate
        to those dtypes. None for what `_concat_arrays` leaves to pandas: a Series,
        categorical columns, a RangeIndex, MultiIndex or CategoricalIndex."""
        if self._columns is None:
            self._columns = _columnar(self.frame)
        return self._columns or None

    def span(self, part: int) -> tuple[int, int]:
        """The positions of the rows of output partition `part` in `frame`."""
        i = self.parts.index(part)
        return self.offsets[i], self.offsets[i + 1]

    def piece(self, part: int, ignore_index: bool) -> Any:
        """The rows of output partition `part`, as dask's task-based shuffle cuts them
        (a slice of `frame`; numbered from 0 with `ignore_index`)."""
        start, stop = self.span(part)
        piece = self.frame.iloc[start:stop]
        return piece.reset_index(drop=True) if ignore_index else piece


def _pack_index(frame: Any) -> tuple[Any, Any, Any, Any] | None:
    """``(frame on a RangeIndex, index values as int64, index dtype, index name)`` when
    `frame`'s index is a datetime64 or timedelta64 index of a numpy dtype, else None.

    numpy pickles such values inside the pickle stream, not as out-of-band buffers, so a
    bundle's index would be copied whole wherever the bundle is sent, spilled or read
    back (a cold bundle is read back once per output partition); as int64 it is a
    buffer like the columns. Nothing is copied here."""
    import numpy as np
    import pandas as pd

    index: Any = getattr(frame, "index", None)
    if type(index) not in (pd.DatetimeIndex, pd.TimedeltaIndex):
        return None
    if not isinstance(index.dtype, np.dtype) or index.freq is not None:
        return None
    return frame.set_axis(pd.RangeIndex(len(frame))), index.asi8, index.dtype, index.name


def _unpack_bundle(
    frame: Any,
    values: Any,
    dtype: Any,
    name: Any,
    parts: tuple[int, ...],
    offsets: tuple[int, ...],
    nbytes: int,
    mapped: bool = False,
) -> Bundle:
    """The bundle `_pack_index` packed: `frame` with its index back (not copied)."""
    import pandas as pd

    frame.index = pd.Index(values.view(dtype), name=name, copy=False)
    return Bundle(frame, parts, offsets, nbytes, mapped=mapped)


@attrs.frozen
class Split:
    """One input partition's bundles, by group of output partitions."""

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
    groups: tuple[int, ...],
) -> Split:
    """The rows of one input partition, one `Bundle` per group of output partitions.

    `groups[j]` is the group of output partition `j` (the output partitions that one
    bundle holds, all of one owner), or -1 when that partition is not computed (its
    rows are dropped). Every group in `groups` gets a bundle, an empty one included.
    `ignore_index` is applied when the pieces are concatenated (`unpack_partition`).
    """
    import numpy as np
    import pandas as pd

    index = partition_index(frame, column, npartitions)
    # rank of each output partition when they are ordered by (group, partition);
    # partitions not computed rank last and are dropped
    order = sorted(range(npartitions), key=lambda j: (groups[j] < 0, groups[j], j))
    rank = np.empty(npartitions, dtype=np.intp)
    rank[order] = np.arange(npartitions, dtype=np.intp)
    indexer, counts = pd._libs.algos.groupsort_indexer(rank[index], npartitions)
    # counts[0] counts missing values, of which there are none
    ends = np.cumsum(counts[1:])
    bundles: dict[int, Bundle] = {}
    position = 0
    start = 0
    while position < npartitions and groups[order[position]] >= 0:
        group = groups[order[position]]
        first = position
        while position < npartitions and groups[order[position]] == group:
            position += 1
        stop = int(ends[position - 1])
        offsets = (0, *(int(ends[r]) - start for r in range(first, position)))
        parts = tuple(order[first:position])
        bundles[group] = Bundle.of(frame.take(indexer[start:stop]), parts, offsets)
        start = stop
    return Split(bundles, sum(bundle.nbytes for bundle in bundles.values()))


def take_bundle(split: Split, group: int) -> Bundle:
    """The bundle of one split for a group of output partitions."""
    return split.bundles[group]


def receive_bundle(
    bundle: Bundle, exchange_parts: int = 0, disk_threshold: int | None = None
) -> Bundle:
    """The bundle, now held by its owner: once every owner has its copy, the bundles
    on the workers that split their inputs have no dependents left and are released,
    so no bundle is held twice while the owners unpack.

    A large exchange's bundles wait on the owner's disk: when `disk_threshold` (bytes)
    is given and the exchange's size estimated from this bundle (its bytes per output
    partition times `exchange_parts`, the exchange's input partitions times its output
    partitions) is above it, the bundle returned is `cold` (the same rows, not copied),
    so a worker with a spill store writes it to disk at once (see `exchange_is_large`).
    """
    if not exchange_is_large(bundle.nbytes, len(bundle.parts), exchange_parts, disk_threshold):
        return bundle
    return Bundle(bundle.frame, bundle.parts, bundle.offsets, bundle.nbytes, cold=True)


def exchange_is_large(
    nbytes: int, parts: int, exchange_parts: int, disk_threshold: int | None
) -> bool:
    """Whether an exchange of `exchange_parts` (input, output) pairs is estimated above
    `disk_threshold` bytes from one of its bundles, `nbytes` bytes for `parts` of them;
    False without a threshold."""
    if disk_threshold is None or parts <= 0:
        return False
    return nbytes * exchange_parts > disk_threshold * parts


def unpack_partition(bundles: list[Bundle], part: int, ignore_index: bool) -> Any:
    """Output partition `part`: its rows from every input partition, in input order,
    concatenated as dask's task-based shuffle concatenates them: empty pieces left
    out, the first piece when all are empty, and with `ignore_index` each piece
    numbered from 0 before the concatenation (dask's ``_concat`` keeps those indexes).
    """
    spans = [bundle.span(part) for bundle in bundles]
    full = [
        (bundle, start, stop)
        for bundle, (start, stop) in zip(bundles, spans, strict=True)
        if stop > start
    ]
    if not full:
        return bundles[0].piece(part, ignore_index)
    fast = _concat_arrays(full, ignore_index)
    if fast is not None:
        return fast
    from dask.dataframe import methods

    pieces = [bundle.piece(part, ignore_index) for bundle, _, _ in full]
    return methods.concat(pieces, uniform=True, ignore_index=ignore_index)


def _columnar(frame: Any) -> tuple[Any, ...]:
    """`Bundle.columns` of `frame`; ``()`` where it is None."""
    import pandas as pd

    index = frame.index if type(frame) is pd.DataFrame else None
    if index is None or type(index) in (pd.RangeIndex, pd.MultiIndex, pd.CategoricalIndex):
        return ()
    dtypes = tuple(frame.dtypes)
    if any(isinstance(dtype, pd.CategoricalDtype) for dtype in dtypes):
        return ()
    signature = (
        tuple(frame.columns),
        frame.columns.dtype,
        dtypes,
        type(index),
        index.dtype,
        index.name,
    )
    arrays = [frame.iloc[:, i]._values for i in range(len(dtypes))]
    return signature, arrays, index._values


def _concat(slices: list[Any], compact: bool = False) -> Any:
    """The concatenation of same-typed numpy or pandas extension arrays. pyarrow-backed
    arrays (pandas' arrow strings) concatenate to chunks that view their inputs; with
    `compact` they are copied into one chunk of their own, so that an output partition
    does not keep the files of the `mapped` bundles it took rows from mapped."""
    import numpy as np

    head = slices[0]
    if isinstance(head, np.ndarray):
        return np.concatenate(slices)
    result = type(head)._concat_same_type(slices)
    chunked = getattr(result, "_pa_array", None)
    if not compact or chunked is None or not hasattr(chunked, "combine_chunks"):
        return result
    import pyarrow as pa

    own = result.copy()
    own._pa_array = pa.chunked_array([chunked.combine_chunks()], type=chunked.type)
    return own


def _concat_arrays(full: list[tuple[Bundle, int, int]], ignore_index: bool) -> Any:
    """What ``pd.concat`` of the rows ``frame.iloc[start:stop]`` of each bundle gives
    (with `ignore_index`, each numbered from 0), built column by column from the
    frames' arrays; None unless every frame has a `Bundle.columns` with one signature
    (the caller then concatenates pandas pieces)."""
    import pandas as pd

    found = [bundle.columns() for bundle, _, _ in full]
    columnar = [entry for entry in found if entry is not None]
    if len(columnar) < len(found) or any(entry[0] != columnar[0][0] for entry in columnar):
        return None
    spans = [(start, stop) for _, start, stop in full]
    compact = any(bundle.mapped for bundle, _, _ in full)
    columns = [
        _concat(
            [
                arrays[i][start:stop]
                for (start, stop), (_, arrays, _) in zip(spans, columnar, strict=True)
            ],
            compact,
        )
        for i in range(len(columnar[0][1]))
    ]
    first = full[0][0].frame
    if ignore_index:
        indexes = [pd.RangeIndex(stop - start) for _, start, stop in full]
        index = indexes[0].append(indexes[1:]) if len(indexes) > 1 else indexes[0]
    else:
        values = _concat(
            [
                index[start:stop]
                for (start, stop), (_, _, index) in zip(spans, columnar, strict=True)
            ],
            compact,
        )
        index = pd.Index(values, dtype=first.index.dtype, name=first.index.name, copy=False)
    result = pd.DataFrame(dict(enumerate(columns)), index=index, copy=False)
    result.columns = first.columns
    return result
