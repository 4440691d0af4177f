"""Real workloads, trident and dask.distributed side by side: seconds and peak memory.

Dask's own collections (array, dataframe, bag, delayed), futures of mixed durations and
a scikit-learn grid search through joblib, each run on a fresh cluster (2 worker
processes x 1 thread) in a fresh process, so every row's peak resident memory is its
own. The peak is the sum over the process tree (client, scheduler, workers; dask's
nannies run in the client process, its worker processes and multiprocessing's resource
tracker are children) sampled every 20 ms. ``--processes`` also prints each process's
own peak (the client process holds the client, the scheduler and, for dask, the
nannies). Dataframe shuffles on trident use trident's worker-to-worker shuffle
(`trident.shuffle`; ``DASK_TRIDENT__SHUFFLE=False`` in the environment gives dask's
task-based shuffle instead); dask.distributed uses its peer-to-peer shuffle where it
picks it by default (``df_shuffle``, ``df_shuffle_100``, ``df_set_index``, ``df_merge``,
``df_merge_hash``, ``df_set_index_10m``). Array rechunks whose dask plan has a
many-to-many stage (``array_rechunk_20k``) use trident's rechunk
(``DASK_TRIDENT__RECHUNK=False`` gives dask's staged tasks).

``df_set_index_10m`` (``set_index`` of 10M rows in 100 partitions, both runtimes'
workers limited to 2 GB each, spilling as they need) and ``array_rechunk_20k`` (a
20000² float64 array, 3.2 GB, rechunked from column to row chunks, which
dask.distributed does with its peer-to-peer rechunk) take minutes, so they only run
when named: ``--only df_set_index_10m`` (with ``--repeats 1`` it is a warm-up and one
timed run per runtime).

``--floor`` adds what bounds each row: the same workload run on one thread by dask's
synchronous scheduler (no cluster, no transfers, no scheduling), halved, since two
single-thread workers can at best split that work in two. A runtime whose seconds are
near that floor has no overhead left to cut; ``best`` is dask's seconds over the floor,
the highest ratio any runtime could reach against dask on that row. Usage::

    python -m benchmarks.workloads [--repeats 3] [--only array_sum,df_groupby]
                                   [--floor] [--processes]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

SCALE = 1.0


def _array(n: int, chunk: int) -> Any:
    import dask.array as da

    return da.random.RandomState(0).random_sample((n, n), chunks=chunk)


def array_sum(client: Any) -> None:
    _array(8000, 500).sum().compute()


def array_x_plus_xT(client: Any) -> None:
    x = _array(4000, 500)
    (x + x.T).sum().compute()


def array_xTx(client: Any) -> None:
    x = _array(4000, 1000)
    (x.T @ x).sum().compute()


def array_svd(client: Any) -> None:
    import dask
    import dask.array as da

    x = da.random.RandomState(0).random_sample((200_000, 100), chunks=(10_000, 100))
    dask.compute(*da.linalg.svd(x))


def array_rechunk(client: Any) -> None:
    x = _array(4000, (4000, 100))
    x.rechunk((100, 4000)).sum().compute()


def array_rechunk_20k(client: Any) -> None:
    x = _array(20_000, (20_000, 100))
    x.rechunk((100, 20_000)).sum().compute()


def _frame(days: int = 20) -> Any:
    import dask

    return dask.datasets.timeseries(
        start="2000-01-01", end=f"2000-01-{days + 1:02d}", freq="1s", seed=0
    )


def df_groupby(client: Any) -> None:
    _frame().groupby("name").agg({"x": "mean", "y": "max", "id": "count"}).compute()


def df_merge(client: Any) -> None:
    left = _frame(10)
    right = _frame(10)[["id", "y"]].groupby("id").y.mean().to_frame().reset_index()
    len(left.merge(right, on="id", npartitions=10))


def df_set_index(client: Any) -> None:
    _frame(10).set_index("x").map_partitions(len).compute()


def df_shuffle(client: Any) -> None:
    _frame(20).shuffle("id", npartitions=20).map_partitions(len).compute()


def df_shuffle_100(client: Any) -> None:
    _frame(20).repartition(npartitions=100).shuffle("id").map_partitions(len).compute()


def df_set_index_10m(client: Any) -> None:
    import dask

    frame = dask.datasets.timeseries(
        start="2000-01-01",
        end="2000-04-25 17:46:40",  # 10,000,000 seconds
        freq="1s",
        partition_freq="100000s",  # 100 partitions of 100,000 rows
        seed=0,
    )
    lengths = frame.set_index("x").map_partitions(len).compute()
    assert lengths.sum() == 10_000_000


def df_merge_hash(client: Any) -> None:
    left = _frame(10).reset_index()
    right = left[["timestamp", "x"]].rename(columns={"x": "x2"})
    len(left.merge(right, on="timestamp", broadcast=False))


def _words(i: int) -> list[str]:
    import random

    rng = random.Random(i)
    vocabulary = [f"w{j}" for j in range(2000)]
    return [" ".join(rng.choices(vocabulary, k=20)) for _ in range(5000)]


def bag_wordcount(client: Any) -> None:
    import dask.bag as db

    lines = db.from_sequence(range(40), npartitions=40).map(_words).flatten()
    lines.str.split().flatten().frequencies().topk(10, key=1).compute()


def _inc(x: int) -> int:
    return x + 1


def delayed_fanin(client: Any) -> None:
    import dask

    leaves = [dask.delayed(_inc)(i) for i in range(5050)]
    assert dask.delayed(sum)(leaves).compute() == sum(range(1, 5051))


def delayed_many(client: Any) -> None:
    import dask

    results = [dask.delayed(_inc)(i) for i in range(10_000)]
    assert sum(dask.compute(*results)) == sum(range(1, 10_001))


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def futures_mixed(client: Any) -> None:
    durations = [1.0 if i % 100 == 50 else 0.005 for i in range(300)]
    futures = client.map(_sleep, durations, pure=False)
    assert sum(client.gather(futures)) == sum(durations)


def sklearn_grid(client: Any) -> None:
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    digits = load_digits()
    grid = {"C": [0.1, 1, 10, 100], "gamma": [1e-4, 1e-3, 1e-2]}
    search = GridSearchCV(SVC(), grid, cv=3, n_jobs=-1)
    module = type(client).__module__
    backend = "trident" if module.startswith("trident") else "dask"
    if not module.startswith(("trident", "distributed")):
        backend = "sequential"  # the one-thread floor (`--floor`)
    with joblib.parallel_backend(backend):
        search.fit(digits.data, digits.target)


WORKLOADS: dict[str, tuple[str, Callable[[Any], None]]] = {
    "array_sum": ("dask.array sum, 8000² in 500² chunks", array_sum),
    "array_x_plus_xT": ("(x + x.T).sum(), 4000² in 500² chunks", array_x_plus_xT),
    "array_xTx": ("(x.T @ x).sum(), 4000² in 1000² chunks", array_xTx),
    "array_svd": ("da.linalg.svd, 200,000 x 100 (tall-skinny)", array_svd),
    "array_rechunk": ("rechunk 4000² from columns to rows, then sum", array_rechunk),
    "array_rechunk_20k": (
        "rechunk 20000² (3.2 GB) from columns to rows, then sum",
        array_rechunk_20k,
    ),
    "df_groupby": ("groupby-agg, 1.7M rows (timeseries, 20 partitions)", df_groupby),
    "df_merge": ("merge 864k rows with a 1k-row frame on id (shuffle)", df_merge),
    "df_set_index": ("set_index on a float column (sort), 864k rows", df_set_index),
    "df_shuffle": ("shuffle 1.7M rows on id into 20 partitions", df_shuffle),
    "df_shuffle_100": ("shuffle 1.7M rows on id, 100 partitions", df_shuffle_100),
    "df_merge_hash": ("hash join of two 864k-row frames on time (both shuffled)", df_merge_hash),
    "df_set_index_10m": (
        "set_index of 10M rows, 100 partitions, 2 GB per worker",
        df_set_index_10m,
    ),
    "bag_wordcount": ("dask.bag word count, 200k lines, top 10", bag_wordcount),
    "delayed_fanin": ("delayed fan-in, 5,051 tasks", delayed_fanin),
    "delayed_many": ("dask.compute(*results) of 10,000 independent delayed calls", delayed_many),
    "futures_mixed": ("3 one-second tasks among 297 5 ms tasks (futures)", futures_mixed),
    "sklearn_grid": ("GridSearchCV(SVC) 12 candidates x 3 folds via joblib", sklearn_grid),
}


#: rows run only when named with --only (they take minutes)
SLOW = {"df_set_index_10m", "array_rechunk_20k"}
#: cluster options of a row beyond 2 worker processes x 1 thread, for both runtimes
CLUSTER_OPTIONS: dict[str, dict[str, Any]] = {"df_set_index_10m": {"memory_limit": "2GB"}}


class PeakRSS:
    """Samples the resident memory of this process and its descendants: `peak` is the
    largest sum seen, `by_process` each process's own largest reading (by pid)."""

    def __init__(self) -> None:
        self.peak = 0
        self.by_process: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.02):
            total = 0
            for process in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # it exited meanwhile
                    rss = process.memory_info().rss
                    total += rss
                    role, peak = self.by_process.get(process.pid, ("", 0))
                    if not role:
                        role = "client" if process is me else _role(process.cmdline())
                    self.by_process[process.pid] = (role, max(peak, rss))
            self.peak = max(self.peak, total)

    def process_peaks(self) -> list[tuple[str, float]]:
        """(role, peak MiB) of each process, the client's first."""
        order = {"client": 0, "worker": 1}
        peaks = sorted(self.by_process.values(), key=lambda item: (order.get(item[0], 2), item))
        return [(role, peak / 2**20) for role, peak in peaks]

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _role(cmdline: list[str]) -> str:
    """What a child process of the benchmark is, from its command line."""
    line = " ".join(cmdline)
    if "worker_process" in line or "multiprocessing-fork" in line:
        return "worker"
    return "tracker" if "resource_tracker" in line else "other"


class OneThread:
    """The futures calls the workloads make, run at once on the calling thread: the
    client of the one-thread floor (`--floor`)."""

    def map(self, fn: Callable[..., Any], *iterables: Any, pure: bool = True) -> list[Any]:
        return [fn(*args) for args in zip(*iterables, strict=True)]

    def gather(self, results: list[Any]) -> list[Any]:
        return results

    def close(self) -> None:
        pass


def run_one(runtime: str, name: str, repeats: int) -> dict[str, Any]:
    """Start `runtime`'s cluster ("trident", "dask", or "sync": dask's synchronous
    scheduler on this thread), run workload `name` `repeats` times (after a warm-up
    run); the median seconds and the peak MiB of the process tree."""
    import dask

    options = CLUSTER_OPTIONS.get(name, {})
    cluster: Any
    client: Any
    if runtime == "sync":
        dask.config.set(scheduler="sync")
        cluster = client = OneThread()
    elif runtime == "trident":
        import trident

        cluster = trident.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None, **options
        )
        client = trident.Client(cluster)
    else:
        import distributed

        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, **options
        )
        client = distributed.Client(cluster)
    try:
        fn = WORKLOADS[name][1]
        times = []
        with dask.config.set({"array.slicing.split_large_chunks": False}), PeakRSS() as peak:
            fn(client)  # warm-up: imports and function shipping
            for _ in range(repeats):
                start = time.perf_counter()
                fn(client)
                times.append(time.perf_counter() - start)
        return {
            "seconds": statistics.median(times),
            "peak_mib": peak.peak / 2**20,
            "processes": peak.process_peaks(),
        }
    finally:
        client.close()
        cluster.close()


def _measure(runtime: str, name: str, repeats: int) -> dict[str, Any] | None:
    """`run_one` in a fresh process; None (and the error on stderr) when it failed."""
    command = [sys.executable, "-m", "benchmarks.workloads", "--repeats", str(repeats)]
    result = subprocess.run(
        [*command, "--one", runtime, name], capture_output=True, text=True, timeout=1800
    )
    if result.returncode:
        print(f"{name} on {runtime} failed:\n{result.stderr[-2000:]}", file=sys.stderr)
        return None
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def _cell(value: float | None, width: int, digits: int) -> str:
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workloads", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument("--floor", action="store_true", help="add the one-thread floor")
    parser.add_argument(
        "--processes", action="store_true", help="also print each process's own peak MiB"
    )
    parser.add_argument("--one", nargs=2, metavar=("RUNTIME", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args.repeats)))
        return 0
    only = args.only.split(",") if args.only else []
    unknown = sorted(set(only) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads: {', '.join(unknown)} (known: {', '.join(WORKLOADS)})")
    names = [n for n in WORKLOADS if n in only or (not only and n not in SLOW)]
    header = f"{'workload':<16} {'trident s':>10} {'dask s':>9} {'ratio':>7} "
    header += f"{'trident MiB':>12} {'dask MiB':>9}"
    if args.floor:
        header += f" {'floor s':>8} {'best':>7}"
    print(header + "  what")
    ratios = []
    for name in names:
        row = {r: m for r in ("trident", "dask") if (m := _measure(r, name, args.repeats))}
        trident, dask = row.get("trident"), row.get("dask")
        t = trident["seconds"] if trident else None
        d = dask["seconds"] if dask else None
        if t and d:
            ratios.append(d / t)
        line = f"{name:<16} {_cell(t, 10, 2)} {_cell(d, 9, 2)} "
        line += f"{d / t:>6.2f}x " if t and d else f"{'-':>7} "
        line += _cell(trident["peak_mib"] if trident else None, 12, 0) + " "
        line += _cell(dask["peak_mib"] if dask else None, 9, 0)
        if args.floor:
            sync = _measure("sync", name, args.repeats)
            floor = sync["seconds"] / 2 if sync else None
            line += " " + _cell(floor, 8, 2) + " "
            line += f"{d / floor:>6.2f}x" if floor and d else f"{'-':>7}"
        print(f"{line}  {WORKLOADS[name][0]}", flush=True)
        if args.processes:
            print(
                "    "
                + " | ".join(
                    f"{runtime}: "
                    + ", ".join(f"{role} {mib:.0f}" for role, mib in result["processes"])
                    for runtime, result in row.items()
                ),
                flush=True,
            )
    if ratios:
        print(f"median ratio over {len(ratios)} rows: {statistics.median(ratios):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
