"""``dask.annotate`` on trident: annotations active at compute time apply to every task
of the graph, annotations a collection was built under apply to its own tasks, and
both become task options (workers, allow_other_workers, resources, retries,
priority), with dask.distributed's precedence."""

from __future__ import annotations

import time

import attrs
import pytest

dask = pytest.importorskip("dask", reason="dask annotations need dask (trident[dask])")

import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402

from trident import get_worker  # noqa: E402
from trident.client.annotations import Annotations, apply, graph_annotations  # noqa: E402
from trident.client.graphs import trident_key  # noqa: E402
from trident.client.placement import GraphPlacement  # noqa: E402
from trident.client.task_specs import TaskOptions  # noqa: E402

from ..inprocess import in_process_client  # noqa: E402


def where(_):
    return get_worker().address


def frame_where(frame):
    return pd.Series([get_worker().address] * len(frame))


_failures_left: dict[str, int] = {}


def fails_twice(token):
    """Raises on its first two calls for `token` (workers are threads here)."""
    left = _failures_left.setdefault(token, 2)
    if left:
        _failures_left[token] = left - 1
        raise RuntimeError(f"flaky {token}")
    return token


@pytest.fixture(scope="module")
def client():
    with in_process_client(resources={"GPU": 1}) as client:
        yield client


@pytest.fixture
def addresses(client):
    return sorted(client.nthreads())


def test_built_under_workers_annotation_runs_there(client, addresses):
    for target in addresses:
        with dask.annotate(workers=[target]):
            tasks = [dask.delayed(where)(i, dask_key_name=f"w-{target}-{i}") for i in range(8)]
        assert set(dask.compute(*tasks)) == {target}
        assert set(client.gather(client.compute(tasks))) == {target}


def test_annotation_active_at_compute_applies_to_every_task(client, addresses):
    target = addresses[1]
    tasks = [dask.delayed(where)(i, dask_key_name=f"active-{i}") for i in range(8)]
    with dask.annotate(workers=target):  # a single address, as dask accepts
        ran = dask.compute(*tasks)
    assert set(ran) == {target}
    frame = dd.from_pandas(pd.DataFrame({"a": range(40)}), npartitions=4)
    located = frame.map_partitions(frame_where, meta=(None, object))
    with dask.annotate(workers=[addresses[0]]):
        ran_frame = located.compute()
    assert set(ran_frame) == {addresses[0]}


def test_callable_annotation_is_called_with_each_key(client, addresses):
    tasks = [dask.delayed(where)(i, dask_key_name=f"callable-{i}") for i in range(6)]

    def by_key(key):
        return [addresses[int(key.rsplit("-", 1)[1]) % 2]]

    with dask.annotate(workers=by_key):
        ran = dask.compute(*tasks)
    assert list(ran) == [addresses[i % 2] for i in range(6)]


def test_built_annotation_wins_over_active_one(client, addresses):
    with dask.annotate(workers=[addresses[0]]):
        inner = dask.delayed(where)(1, dask_key_name="inner-pinned")
    with dask.annotate(workers=[addresses[1]]):
        assert inner.compute() == addresses[0]


def test_retries_annotation(client):
    with dask.annotate(retries=2):
        flaky = dask.delayed(fails_twice)("retried", pure=False)
    assert flaky.compute() == "retried"
    with pytest.raises(RuntimeError, match="flaky not-retried"):
        dask.delayed(fails_twice)("not-retried", pure=False).compute()
    with dask.annotate(retries=2):
        assert dask.delayed(fails_twice)("retried-active", pure=False).compute() == (
            "retried-active"
        )


def test_resources_annotation_holds_tasks_no_worker_can_run(client):
    with dask.annotate(resources={"GPU": 2}):  # each worker has one
        too_big = dask.delayed(where)(0, dask_key_name="needs-two-gpus")
    future = client.compute(too_big)
    with dask.annotate(resources={"GPU": 1}):
        x = da.ones(100, chunks=10) + 1
    assert x.sum().compute() == 200  # one GPU per worker is enough
    time.sleep(0.3)
    assert future.status == "pending"
    future.cancel()


# --- the placement rules, without a cluster ------------------------------------------


def test_call_options_win_over_active_annotations():
    active = {"priority": 5, "retries": 3, "workers": "w1"}
    annotations = Annotations.of({}, lambda: [], trident_key, active)
    asked = TaskOptions(priority=1)
    options = GraphPlacement(asked).with_annotations(annotations).options_for("x")
    assert (options.priority, options.retries, options.workers) == (1, 3, ["w1"])


def test_layer_annotations_win_and_apply_per_key():
    graph = dask.delayed(sum)([1, 2])
    with dask.annotate(priority=7, allow_other_workers=True):
        graph = dask.delayed(sum)([graph, 3], dask_key_name="top")
    found = graph_annotations(graph.__dask_graph__())
    assert found["priority"]["top"] == 7
    annotations = Annotations.of(graph, lambda: [], trident_key, {"priority": 2})
    placement = GraphPlacement(TaskOptions()).with_annotations(annotations)
    assert placement.options_for(trident_key("top")).priority == 7
    assert placement.options_for(trident_key("top")).allow_other_workers is True
    assert placement.options_for("other").priority == 2
    with pytest.raises(TypeError, match="resources annotation must map"):
        apply(TaskOptions(), {"resources": ["GPU"]})


def test_apply_rejects_a_priority_that_is_not_a_number():
    with pytest.raises(TypeError, match="priority annotation must be a number"):
        apply(TaskOptions(), {"priority": "high"})
    assert attrs.asdict(apply(TaskOptions(), {"unknown": 1})) == attrs.asdict(TaskOptions())
