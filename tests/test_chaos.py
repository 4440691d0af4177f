"""A short chaos run: a graph with a tree reduction and an all-to-all stage computes
exactly right while worker processes are killed with SIGKILL (``nox -s chaos`` runs
the full 10,000-task version against dask.distributed too)."""

from __future__ import annotations

from benchmarks.chaos import Graph, run


def test_a_graph_computes_exactly_right_while_workers_are_killed():
    graph = Graph(leaves=256, partitions=16)
    assert len(graph) == 1072
    result = run("trident", graph, workers=3, interval=0.7, timeout=120, seed=3)
    assert result["correct"], result["error"]
    assert result["kills"] >= 1
    assert result["completed_runs"] >= len(graph)
