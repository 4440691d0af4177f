"""The codecs a cold bundle's columns are written with: any run of rows, cut into plain
numpy arrays, pickled and read back, is the same pandas array again."""

from __future__ import annotations

import pickle

import pytest

pytest.importorskip("dask.dataframe", reason="the shuffle needs dask.dataframe (trident[dask])")

import numpy as np
import pandas as pd
import pyarrow as pa

from trident.protocol.serialize import dumps, loads
from trident.shuffle.sections import codec

N = 50


def nullable(dtype, values):
    return pd.array([None if j % 5 == 0 else v for j, v in enumerate(values)], dtype=dtype)


def strings(dtype):
    return pd.array([None if j % 6 == 1 else f"v{j}" * (j % 4) for j in range(N)], dtype=dtype)


ARRAYS = {
    "int64": (np.arange(N, dtype=np.int64), "numpy"),
    "float32": (np.linspace(0, 1, N, dtype=np.float32), "numpy"),
    "bool": (np.arange(N) % 3 == 0, "numpy"),
    "datetime64": (np.arange(N).astype("M8[s]"), "numpy"),
    "timedelta64": (np.arange(N).astype("m8[ms]"), "numpy"),
    "datetime naive": (pd.date_range("2000", periods=N, freq="h", unit="us").array, "datetimelike"),
    "datetime tz": (pd.date_range("2000", periods=N, tz="Europe/Paris").array, "datetimelike"),
    "timedelta": (pd.timedelta_range(0, periods=N, freq="min").array, "datetimelike"),
    "Int64": (nullable("Int64", range(N)), "masked"),
    "Float64": (nullable("Float64", np.arange(N) / 2), "masked"),
    "boolean": (nullable("boolean", np.arange(N) % 2 == 0), "masked"),
    "str": (strings("str"), "arrow"),
    "string[pyarrow]": (strings("string[pyarrow]"), "arrow"),
    "no nulls": (pd.array([f"w{j}" for j in range(N)], dtype="str"), "arrow"),
    "arrow small strings": (strings(pd.ArrowDtype(pa.string())), "arrow"),
    "arrow large strings": (strings(pd.ArrowDtype(pa.large_string())), "arrow"),
    "chunked": (
        pd.arrays.ArrowStringArray._concat_same_type([strings("str")[:20], strings("str")[20:]]),
        "arrow",
    ),
    "string[python]": (strings("string[python]"), "object"),
    "object": (np.array([("t", j) for j in range(N)] + [None], dtype=object)[:N], "object"),
    "categorical": (pd.Categorical([f"c{j % 3}" for j in range(N)]), "object"),
    "arrow ints": (pd.array(list(range(N)), dtype="int64[pyarrow]"), "object"),
}


@pytest.mark.parametrize("name", list(ARRAYS))
def test_every_run_of_rows_round_trips(name):
    array, kind = ARRAYS[name]
    encode, decoder = codec(array)
    assert decoder.kind == kind
    pickle.dumps(decoder)  # small and picklable: no rows
    for start, stop in [(0, N), (0, 7), (7, 8), (13, 41), (41, N), (20, 20), (N, N)]:
        back = decoder.decode(loads(dumps(encode(start, stop))))
        want = array[start:stop]
        assert type(back) is type(want)
        assert back.dtype == want.dtype
        if isinstance(want, np.ndarray):
            np.testing.assert_array_equal(back, want)
        else:
            pd.testing.assert_extension_array_equal(back, want)


def test_plain_columns_travel_out_of_band_as_views():
    """What a section holds of plain columns is numpy buffers, none in the pickle stream
    (datetimes included) and none copied on the way out."""
    n = 20_000
    columns = [
        np.arange(n, dtype=np.int64),
        np.arange(n).astype("M8[ns]"),
        pd.date_range("2000", periods=n, freq="s", tz="UTC").array,
        pd.array(np.arange(n), dtype="Int64"),
        pd.array([f"s{j}" for j in range(n)], dtype="str"),
    ]
    for array in columns:
        encode, _ = codec(array)
        payload = dumps(encode(1000, 19_000))
        assert len(payload.header) < 400
        assert sum(buffer.nbytes for buffer in payload.buffers) >= 18_000
    (view,) = codec(columns[0])[0](10, 40)
    assert np.shares_memory(view, columns[0])
