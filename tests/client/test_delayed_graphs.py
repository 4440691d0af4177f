"""`trident.client.delayed_graphs`: the linear-time cull of computed delayed objects
gives the graph dask's own (quadratic) optimization gives, and steps aside for
everything it does not cover."""

from __future__ import annotations

import pytest

dask = pytest.importorskip("dask", reason="delayed graphs need dask")

import dask.array as da  # noqa: E402
from dask._expr import FinalizeCompute  # noqa: E402
from dask.base import collections_to_expr  # noqa: E402

from trident.client.delayed_graphs import delayed_graph, delayed_operands  # noqa: E402


def inc(x):
    return x + 1


def pair(x):
    return x, x + 1


def expression(*collections):
    """What ``dask.compute(*collections)`` hands its scheduler."""
    return FinalizeCompute(collections_to_expr(list(collections), True)).optimize()


def same_as_dask(expr):
    ours = delayed_graph(expr)
    theirs = dict(expr.__dask_graph__())
    assert ours is not None
    assert ours.keys() == theirs.keys()
    for key, task in theirs.items():
        assert type(ours[key]) is type(task)
        assert ours[key].dependencies == task.dependencies
    return ours


def test_fan_in_matches_dask():
    leaves = [dask.delayed(inc)(i) for i in range(50)]
    unused = dask.delayed(inc)(-1)  # noqa: F841 - built, not wanted
    total = dask.delayed(sum)(leaves)
    graph = same_as_dask(expression(total))
    assert len(graph) == 51


def test_many_outputs_shared_inputs_and_nout_match_dask():
    base = dask.delayed(inc)(1)
    a, b = dask.delayed(pair, nout=2)(base)
    c = dask.delayed(inc)(a) + b
    d = dask.delayed(max)([a, b, c], default=0)
    same_as_dask(expression(c, d, base))
    same_as_dask(expression(*[dask.delayed(inc)(i) for i in range(20)]))


def test_attribute_and_method_access_match_dask():
    text = dask.delayed("a,b,c")
    parts = text.split(",")
    same_as_dask(expression(parts[1].upper(), text.count("b")))


def test_culls_what_outputs_do_not_need():
    wanted = dask.delayed(inc)(1, dask_key_name="wanted")
    other = dask.delayed(inc)(2, dask_key_name="other")
    both = dask.delayed(lambda x, y: x, name="both")(wanted, other)
    assert set(delayed_graph(expression(wanted))) == {"wanted"}
    assert set(delayed_graph(expression(both))) == {"wanted", "other", both.key}


def test_steps_aside_for_fusion_arrays_and_mixtures():
    leaves = [dask.delayed(inc)(i) for i in range(3)]
    with dask.config.set({"optimization.fuse.delayed": True}):
        assert delayed_operands(expression(*leaves)) is None
    array = da.ones(10, chunks=5).sum()
    assert delayed_graph(expression(array)) is None
    assert delayed_graph(expression(leaves[0], array)) is None
    assert delayed_graph({"x": 1}) is None
