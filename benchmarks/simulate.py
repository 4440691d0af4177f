"""Scale the scheduler beyond this machine: drive `SchedulerState` with a synthetic cluster.

No processes, no sockets: the state machine gets the messages a client and 1,000
workers would send, and every task "runs" instantly (its worker answers with
`TaskFinished` in the next step). What is measured is the scheduler's own cost: CPU
microseconds per task, and bytes of scheduler memory per task at the peak (all tasks
submitted, none released). Graphs:

* ``map``: independent tasks (``client.map``);
* ``tree``: a binary tree reduction over the leaves;
* ``shuffle``: two stages in blocks of 32: every task of the second stage reads every
  task of its block of the first (an all-to-all exchange, 32 inputs per task).

Usage: ``python -m benchmarks.simulate [--sizes 10000,100000,1000000] [--workers 1000]``
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator

from trident._gc import tune_for_service
from trident.protocol import messages as m
from trident.protocol.serialize import Serialized
from trident.scheduler.state import SchedulerState

ARGS = Serialized(b"\x80\x05\x95\x06\x00\x00\x00\x00\x00\x00\x00)}\x94\x86\x94.")


def spec(key: str, dependencies: list[str]) -> m.TaskSpec:
    return m.TaskSpec(key, "f", ARGS, dependencies, 0, 0, None, False, None, None, None)


def run_all(state: SchedulerState, out: dict[str, list]) -> int:
    """Let the workers finish every task `out` (the state's latest `flush`) starts, and
    every task those finishes start in turn, at once; return how many ran."""
    finished = 0
    while True:
        runs = [
            (peer, msg.key)
            for peer, messages in out.items()
            if peer != "c"
            for msg in messages
            if type(msg) is m.RunTask
        ]
        if not runs:
            return finished
        for peer, key in runs:
            state.handle_worker_message(peer, m.TaskFinished(key, 8, "int", 0.0, 0.0001, None))
        finished += len(runs)
        out = state.flush()


def map_graph(n: int) -> Iterator[m.TaskSpec]:
    for i in range(n):
        yield spec(f"leaf-{i}", [])


def tree_graph(n: int) -> Iterator[m.TaskSpec]:
    """Roughly `n` tasks: n/2 leaves and a binary reduction over them."""
    leaves = max(2, n // 2)
    level = [f"leaf-{i}" for i in range(leaves)]
    for key in level:
        yield spec(key, [])
    depth = 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for i in range(0, len(level), 2):
            key = f"sum{depth}-{i // 2}"
            yield spec(key, level[i : i + 2])
            nxt.append(key)
        level = nxt


SHUFFLE_BLOCK = 32


def shuffle_graph(n: int) -> Iterator[m.TaskSpec]:
    """Two stages of `n/2` tasks; all-to-all within blocks of `SHUFFLE_BLOCK` tasks."""
    per_stage = max(SHUFFLE_BLOCK, n // 2)
    group = SHUFFLE_BLOCK
    for i in range(per_stage):
        yield spec(f"split-{i}", [])
    for i in range(per_stage):
        first = (i // group) * group
        inputs = [f"split-{j}" for j in range(first, min(first + group, per_stage))]
        yield spec(f"combine-{i}", inputs)


GRAPHS: dict[str, Callable[[int], Iterator[m.TaskSpec]]] = {
    "map": map_graph,
    "tree": tree_graph,
    "shuffle": shuffle_graph,
}


def run(graph: str, n: int, workers: int, *, measure_memory: bool) -> dict[str, float]:
    """Submit the graph, run it to completion, release it; report costs per task."""
    specs = list(GRAPHS[graph](n))
    tasks = len(specs)
    gc.collect()
    if measure_memory:
        tracemalloc.start()
    state = SchedulerState("sim")
    for i in range(workers):
        state.add_worker(m.WorkerInfo(f"tcp://w{i}", f"w{i}", 1, 0, {}))
    state.add_client("c", "c")
    state.flush()
    start = time.process_time()
    state.handle_client_message("c", m.UpdateGraph({"f": ARGS}, specs))
    out = state.flush()
    peak_bytes = 0
    if measure_memory:
        peak_bytes = tracemalloc.get_traced_memory()[0]
    finished = run_all(state, out)
    keys = [s.key for s in specs]
    del specs
    state.handle_client_message("c", m.ReleaseKeys(keys))
    state.flush()
    cpu = time.process_time() - start
    if measure_memory:
        tracemalloc.stop()
    assert finished == tasks, (finished, tasks)
    assert not state.tasks, f"{len(state.tasks)} tasks left after release"
    return {
        "tasks": tasks,
        "cpu_us_per_task": cpu / tasks * 1e6,
        "bytes_per_task": peak_bytes / tasks if measure_memory else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.simulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--graphs", default="map,tree,shuffle")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    tune_for_service()  # as a scheduler process does
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    print(f"{'graph':<8} {'tasks':>10} {'CPU µs/task':>12} {'bytes/task':>11}")
    for graph in args.graphs.split(","):
        for n in sizes:
            cpu = run(graph, n, args.workers, measure_memory=False)
            memory = run(graph, n, args.workers, measure_memory=True)
            row = {"graph": graph, **cpu, "bytes_per_task": memory["bytes_per_task"]}
            results.append(row)
            print(
                f"{graph:<8} {row['tasks']:>10,} {row['cpu_us_per_task']:>12.1f} "
                f"{row['bytes_per_task']:>11.0f}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workers": args.workers, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
