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

import itertools
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
    (``__trident_cold__``), one section per output partition (``__trident_parts__``),
    and is read back as a `StoredBundle`; a copy of it (pickled: sent or spilled) is not
    cold.
    """

    __slots__ = ("_columns", "cold", "frame", "nbytes", "offsets", "parts")

    def __init__(
        self,
        frame: Any,
        parts: tuple[int, ...],
        offsets: tuple[int, ...],
        nbytes: int,
        cold: bool = False,
    ) -> None:
        self.frame = frame
        #: the output partitions, in the order their rows appear in `frame`
        self.parts = parts
        #: len(parts) + 1 row positions: where each partition's rows start, then the end
        self.offsets = offsets
        self.nbytes = nbytes
        self.cold = cold
        self._columns: tuple[Any, ...] | None = None

    def __trident_surely_picklable__(self) -> bool:
        return surely_picklable(self.frame)

    def __trident_cold__(self) -> str | None:
        # each unpack takes one output partition's rows: it reads only its section
        return "parts" if self.cold else None

    def __trident_parts__(self) -> tuple[_StoredHead, list[Any]]:
        """How the spill store writes a cold bundle: one section per output partition
        (in `parts` order) holding its rows, where `columns` allows as each column's and
        the index's rows cut by its `sections.codec` (plain numpy arrays: no pandas
        object is pickled, or rebuilt when it is read), else as a pandas slice; and the
        opener that makes the `StoredBundle` an unpack gets (kept in memory: no rows,
        an empty frame of the same columns and dtypes, and the codecs' decoders)."""
        import pickle

        from .sections import codec

        columnar = self.columns()
        spans = list(itertools.pairwise(self.offsets))
        sections: list[Any]
        decoders = None
        if columnar is None:
            sections = [self.frame.iloc[start:stop] for start, stop in spans]
        else:
            _, arrays, index = columnar
            codecs = [codec(array) for array in (*arrays, index)]
            sections = [[encode(start, stop) for encode, _ in codecs] for start, stop in spans]
            decoders = tuple(decoder for _, decoder in codecs)
        # a copy of its own (pickled in-band): a slice would keep the bundle's rows
        template = pickle.loads(pickle.dumps(self.frame.iloc[:0], protocol=5))
        signature = None if columnar is None else columnar[0]
        head = _StoredHead(self.parts, self.offsets, self.nbytes, template, signature, decoders)
        return head, sections

    @classmethod
    def of(cls, frame: Any, parts: tuple[int, ...], offsets: tuple[int, ...]) -> Bundle:
        """The bundle of `frame`, sized by dask's ``sizeof``."""
        from dask.sizeof import sizeof

        return cls(frame, parts, offsets, int(sizeof(frame)))

    def __reduce__(self) -> tuple[Any, ...]:
        packed = _pack_index(self.frame)
        if packed is None:
            return Bundle, (self.frame, self.parts, self.offsets, self.nbytes)
        return _unpack_bundle, (*packed, self.parts, self.offsets, self.nbytes)

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

    def rows(self, part: int) -> Rows:
        """The rows of output partition `part`, for `unpack_partition`."""
        start, stop = self.span(part)
        columnar = self.columns()
        if columnar is not None:
            signature, arrays, index = columnar
            columnar = (signature, [a[start:stop] for a in arrays], index[start:stop])
        return Rows(columnar, self.frame, False, lambda ignore: self.piece(part, ignore))


@attrs.frozen(eq=False)
class Rows:
    """One bundle's rows of one output partition, as `unpack_partition` takes them."""

    #: ``(signature, column arrays, index array)`` of the rows (see `Bundle.columns`),
    #: or None where only `frame` gives them
    columns: tuple[Any, list[Any], Any] | None
    #: a frame of the rows' columns, dtypes and index dtype and name
    like: Any
    #: whether the arrays are read from disk (each piece's buffers in one allocation):
    #: pyarrow-backed columns built of them are copied into memory of their own
    stored: bool
    #: ``frame(ignore_index)``: the rows as a pandas object (numbered from 0 with
    #: `ignore_index`), as dask's task-based shuffle cuts them
    frame: Any


@attrs.frozen(eq=False)
class _StoredHead:
    """What the spill store keeps in memory of a cold bundle on disk, and calls at each
    access with the sections of its file (a ``trident.worker.spill.ColdParts``)."""

    parts: tuple[int, ...]
    offsets: tuple[int, ...]
    nbytes: int
    #: an empty frame with the bundle's columns, dtypes and index (its own memory)
    template: Any
    #: `Bundle.columns`' signature when the sections hold column arrays, else None
    signature: Any
    #: then the `sections.Decoder` of each column and of the index, else None
    decoders: tuple[Any, ...] | None

    def __call__(self, sections: Any) -> StoredBundle:
        return StoredBundle(self, sections)


class StoredBundle:
    """A cold bundle on its owner's disk, as an unpack gets it: `rows` reads one output
    partition's section of the file (its rows, and nothing else). Pickled (sent to
    another worker), it reads every section and becomes an ordinary `Bundle`."""

    __slots__ = ("_head", "_sections")

    def __init__(self, head: _StoredHead, sections: Any) -> None:
        self._head = head
        self._sections = sections

    @property
    def parts(self) -> tuple[int, ...]:
        return self._head.parts

    @property
    def offsets(self) -> tuple[int, ...]:
        return self._head.offsets

    @property
    def nbytes(self) -> int:
        return self._head.nbytes

    def span(self, part: int) -> tuple[int, int]:
        """The positions of the rows of output partition `part` in the bundle."""
        i = self.parts.index(part)
        return self.offsets[i], self.offsets[i + 1]

    def rows(self, part: int) -> Rows:
        """The rows of output partition `part`, read from the file. Raises
        `FileNotFoundError` when the file is gone (its key was released)."""
        head = self._head
        section = self._sections.read(self.parts.index(part))
        if head.signature is None:
            return Rows(None, head.template, True, lambda ignore: _numbered(section, ignore))
        decoders = head.decoders or ()
        *arrays, index = (decoder.decode(e) for decoder, e in zip(decoders, section, strict=True))
        return Rows(
            (head.signature, arrays, index),
            head.template,
            True,
            lambda ignore: _frame_of(head.template, arrays, index, ignore),
        )

    def piece(self, part: int, ignore_index: bool) -> Any:
        """The rows of output partition `part` as a pandas object (see `Bundle.piece`)."""
        return self.rows(part).frame(ignore_index)

    def __reduce__(self) -> tuple[Any, ...]:
        import pandas as pd

        pieces = [self.piece(part, False) for part in self.parts]
        full = [piece for piece in pieces if len(piece)]
        frame = pd.concat(full) if full else pieces[0]
        return Bundle, (frame, self.parts, self.offsets, self.nbytes)


def _numbered(piece: Any, ignore_index: bool) -> Any:
    return piece.reset_index(drop=True) if ignore_index else piece


def _frame_of(like: Any, arrays: list[Any], index: Any, ignore_index: bool) -> Any:
    """The frame of column `arrays` and `index` values with the columns, dtypes and index
    dtype and name of `like` (numbered from 0 with `ignore_index`); not copied."""
    import pandas as pd

    if ignore_index:
        labels = pd.RangeIndex(len(index))
    else:
        labels = pd.Index(index, dtype=like.index.dtype, name=like.index.name, copy=False)
    result = pd.DataFrame(dict(enumerate(arrays)), index=labels, copy=False)
    result.columns = like.columns
    return result


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
) -> Bundle:
    """The bundle `_pack_index` packed: `frame` with its index back (not copied)."""
    import pandas as pd

    frame.index = pd.Index(values.view(dtype), name=name, copy=False)
    return Bundle(frame, parts, offsets, nbytes)


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


def unpack_partition(bundles: list[Bundle | StoredBundle], part: int, ignore_index: bool) -> Any:
    """Output partition `part`: its rows from every input partition, in input order,
    concatenated as dask's task-based shuffle concatenates them: empty pieces left
    out, the first piece when all are empty, and with `ignore_index` each piece
    numbered from 0 before the concatenation (dask's ``_concat`` keeps those indexes).
    Bundles on disk (`StoredBundle`) are read for this partition's rows only.
    """
    full = [bundle.rows(part) for bundle in bundles if _has_rows(bundle, part)]
    if not full:
        return bundles[0].piece(part, ignore_index)
    fast = _concat_arrays(full, ignore_index)
    if fast is not None:
        return fast
    from dask.dataframe import methods

    pieces = [rows.frame(ignore_index) for rows in full]
    return methods.concat(pieces, uniform=True, ignore_index=ignore_index)


def _has_rows(bundle: Bundle | StoredBundle, part: int) -> bool:
    start, stop = bundle.span(part)
    return stop > start


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
    does not keep alive the buffers of the pieces read from disk it took rows from (each
    holds the piece's other columns too)."""
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


def _concat_arrays(full: list[Rows], ignore_index: bool) -> Any:
    """What ``pd.concat`` of the rows of each `Rows` gives (with `ignore_index`, each
    numbered from 0), built column by column from their arrays; None unless every one
    has column arrays with one signature (the caller then concatenates pandas pieces)."""
    import pandas as pd

    columnar = [rows.columns for rows in full if rows.columns is not None]
    if len(columnar) < len(full) or any(entry[0] != columnar[0][0] for entry in columnar):
        return None
    compact = any(rows.stored for rows in full)
    columns = [
        _concat([arrays[i] for _, arrays, _ in columnar], compact)
        for i in range(len(columnar[0][1]))
    ]
    first = full[0].like
    if ignore_index:
        indexes = [pd.RangeIndex(len(index)) for _, _, index in columnar]
        index = indexes[0].append(indexes[1:]) if len(indexes) > 1 else indexes[0]
    else:
        values = _concat([index for _, _, index in columnar], compact)
        index = pd.Index(values, dtype=first.index.dtype, name=first.index.name, copy=False)
    result = pd.DataFrame(dict(enumerate(columns)), index=index, copy=False)
    result.columns = first.columns
    return result
