"""How a cold bundle's column arrays are written to its owner's disk: as plain numpy
arrays (see `tasks.Bundle.__trident_parts__`).

A cold bundle is written as one section per output partition, and an owner reads one
section of each of a hundred bundles for every partition it unpacks, so what a
section holds is pickled and unpickled many thousand times in a large shuffle. Pickling
pandas' arrays costs more than their rows when the rows are few (an arrow string slice
is copied by pyarrow on each pickle, a datetime array travels inside the pickle stream,
each dtype is pickled again), so each column (and the index) gets a `codec`: a
function that cuts the rows ``start:stop`` into a list of numpy arrays (views, where the
layout allows: pickled out of band and read back without a copy), and a `Decoder`, kept
in memory while the bundle is on disk, that makes that list the same pandas array
again. Columns of other array types are cut as they are (pickled whole).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

#: ``encode(start, stop)``: what a section holds of one column's rows ``start:stop``
Encode = Callable[[int, int], Any]


@attrs.frozen
class Decoder:
    """Makes what a codec's ``encode`` cut back into an array of the column's type and
    dtype (`decode`); holds no rows."""

    #: "numpy", "datetimelike", "masked", "arrow" or "object" (the rows as they are)
    kind: str
    dtype: Any = None
    #: the pandas array type ("datetimelike", "masked")
    array_type: Any = None
    #: the numpy dtype under a datetimelike array, or the arrow type of an arrow array
    inner: Any = None

    def decode(self, encoded: Any) -> Any:
        """The array of the rows `encoded` (views of its buffers, not copied)."""
        if self.kind == "numpy":
            (values,) = encoded
            return values.view(self.dtype)
        if self.kind == "datetimelike":
            (values,) = encoded
            return self.array_type._simple_new(values.view(self.inner), dtype=self.dtype)
        if self.kind == "masked":
            data, mask = encoded
            return self.array_type(data, mask)
        if self.kind == "arrow":
            return _arrow_strings(self.dtype, self.inner, encoded)
        return encoded


def codec(array: Any) -> tuple[Encode, Decoder]:
    """The codec of one column (or index) array of a bundle: ``(encode, decoder)``.
    `encode` keeps `array` (it runs while the bundle is written); the decoder does not."""
    import numpy as np
    import pandas as pd

    if isinstance(array, np.ndarray) and array.ndim == 1 and array.dtype.kind in "biufcmM":
        # numpy pickles datetime64 and timedelta64 values inside the pickle stream
        raw = array.view("i8") if array.dtype.kind in "mM" else array
        return (lambda start, stop: [raw[start:stop]]), Decoder("numpy", array.dtype)
    array_type = type(array)
    if array_type in (pd.arrays.DatetimeArray, pd.arrays.TimedeltaArray) and hasattr(
        array_type, "_simple_new"
    ):
        values = array._ndarray
        raw = values.view("i8")
        decoder = Decoder("datetimelike", array.dtype, array_type, values.dtype)
        return (lambda start, stop: [raw[start:stop]]), decoder
    if array_type in (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray):
        data, mask = array._data, array._mask
        decoder = Decoder("masked", array.dtype, array_type)
        return (lambda start, stop: [data[start:stop], mask[start:stop]]), decoder
    strings = _arrow_strings_codec(array)
    if strings is not None:
        return strings
    return (lambda start, stop: array[start:stop]), Decoder("object")


def _arrow_strings_codec(array: Any) -> tuple[Encode, Decoder] | None:
    """The codec of a pandas array of arrow strings (``str``, ``string[pyarrow]``): the
    rows' offsets (from 0), their characters, and their validity where some are null;
    None for any other array."""
    import numpy as np

    chunked = getattr(array, "_pa_array", None)
    if chunked is None or not hasattr(array.dtype, "__from_arrow__"):
        return None
    import pyarrow as pa

    if chunked.type not in (pa.string(), pa.large_string()):
        return None
    chunk = chunked.combine_chunks()
    width = np.int64 if chunk.type == pa.large_string() else np.int32
    if len(chunk) == 0:
        offsets = np.zeros(1, dtype=width)
        data = np.empty(0, dtype=np.uint8)
    else:
        _, offsets_buffer, data_buffer = chunk.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=width, count=chunk.offset + len(chunk) + 1)
        offsets = offsets[chunk.offset :]
        data = (
            np.frombuffer(data_buffer, dtype=np.uint8)
            if data_buffer is not None and data_buffer.size
            else np.empty(0, dtype=np.uint8)
        )
    valid = None
    if chunk.null_count:
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)

    def encode(start: int, stop: int) -> list[Any]:
        bounds = offsets[start : stop + 1]
        first = bounds[0]
        encoded = [bounds - first, data[first : bounds[-1]]]
        if valid is not None:
            encoded.append(valid[start:stop])
        return encoded

    return encode, Decoder("arrow", array.dtype, inner=chunk.type)


def _arrow_strings(dtype: Any, kind: Any, encoded: list[Any]) -> Any:
    """The pandas array of `dtype` of the arrow strings `_arrow_strings_codec` cut."""
    import numpy as np
    import pyarrow as pa

    offsets, data, *valid = encoded
    validity = None
    if valid:
        validity = pa.py_buffer(np.packbits(valid[0], bitorder="little"))
    strings = pa.Array.from_buffers(
        kind, len(offsets) - 1, [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return dtype.__from_arrow__(strings)
