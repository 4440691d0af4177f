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
``df_merge_hash``). Usage::

    python -m benchmarks.workloads [--repeats 3] [--only array_sum,df_groupby] [--processes]
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
    backend = "trident" if type(client).__module__.startswith("trident") else "dask"
    with joblib.parallel_backend(backend):
        search.fit(digits.data, digits.target)


WORKLOADS: dict[str, tuple[str, Callable[[Any], None]]] = {
    "array_sum": ("dask.array sum, 8000² in 500² chunks", array_sum),
    "array_x_plus_xT": ("(x + x.T).sum(), 4000² in 500² chunks", array_x_plus_xT),
    "array_xTx": ("(x.T @ x).sum(), 4000² in 1000² chunks", array_xTx),
    "array_svd": ("da.linalg.svd, 200,000 x 100 (tall-skinny)", array_svd),
    "array_rechunk": ("rechunk 4000² from columns to rows, then sum", array_rechunk),
    "df_groupby": ("groupby-agg, 1.7M rows (timeseries, 20 partitions)", df_groupby),
    "df_merge": ("merge 864k rows with a 1k-row frame on id (shuffle)", df_merge),
    "df_set_index": ("set_index on a float column (sort), 864k rows", df_set_index),
    "df_shuffle": ("shuffle 1.7M rows on id into 20 partitions", df_shuffle),
    "df_shuffle_100": ("shuffle 1.7M rows on id, 100 partitions", df_shuffle_100),
    "df_merge_hash": ("hash join of two 864k-row frames on time (both shuffled)", df_merge_hash),
    "bag_wordcount": ("dask.bag word count, 200k lines, top 10", bag_wordcount),
    "delayed_fanin": ("delayed fan-in, 5,051 tasks", delayed_fanin),
    "futures_mixed": ("3 one-second tasks among 297 5 ms tasks (futures)", futures_mixed),
    "sklearn_grid": ("GridSearchCV(SVC) 12 candidates x 3 folds via joblib", sklearn_grid),
}


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


def run_one(runtime: str, name: str, repeats: int) -> dict[str, Any]:
    """Start `runtime`'s cluster, run workload `name` `repeats` times (after a warm-up
    run); the median seconds and the peak MiB of the process tree."""
    import dask

    if runtime == "trident":
        import trident

        cluster = trident.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        client = trident.Client(cluster)
    else:
        import distributed

        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workloads", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument(
        "--processes", action="store_true", help="also print each process's own peak MiB"
    )
    parser.add_argument("--one", nargs=2, metavar=("RUNTIME", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args.repeats)))
        return 0
    names = [n for n in WORKLOADS if not args.only or n in args.only.split(",")]
    print(
        f"{'workload':<16} {'trident s':>10} {'dask s':>9} {'ratio':>7} "
        f"{'trident MiB':>12} {'dask MiB':>9}  what"
    )
    for name in names:
        row: dict[str, dict[str, Any]] = {}
        for runtime in ("trident", "dask"):
            command = [sys.executable, "-m", "benchmarks.workloads", "--repeats"]
            result = subprocess.run(
                [*command, str(args.repeats), "--one", runtime, name],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if result.returncode:
                print(f"{name} on {runtime} failed:\n{result.stderr[-2000:]}", file=sys.stderr)
                continue
            row[runtime] = json.loads(result.stdout.strip().splitlines()[-1])
        t, d = row.get("trident"), row.get("dask")
        ratio = f"{d['seconds'] / t['seconds']:.2f}x" if t and d else "-"
        print(
            f"{name:<16} {t['seconds'] if t else float('nan'):>10.2f} "
            f"{d['seconds'] if d else float('nan'):>9.2f} {ratio:>7} "
            f"{t['peak_mib'] if t else float('nan'):>12.0f} "
            f"{d['peak_mib'] if d else float('nan'):>9.0f}  {WORKLOADS[name][0]}",
            flush=True,
        )
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
