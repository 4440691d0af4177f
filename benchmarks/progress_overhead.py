"""What a progress bar costs: ``python -m benchmarks.progress_overhead``.

Runs `map` + `gather` of no-op tasks on a LocalCluster with and without `progress`
drawing text bars for the same futures (in a thread, as a terminal redraws them: every
0.1 s), alternating the repeats so a shared machine's noise hits both alike. The
progress counts come from the futures themselves (nothing polls the scheduler), so what
it costs lands in the client's process. Prints a table; ``--json`` writes the numbers.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any

from trident import Client, LocalCluster, progress

from .overhead import noop, parse_arguments, report


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, so bars are redrawn in place."""

    def isatty(self) -> bool:
        return True


def run_tasks(client: Client, n: int, *, with_progress: bool) -> tuple[float, int]:
    """Tasks per second of one map + gather, and how many times the bars were drawn."""
    start = time.perf_counter()
    futures = client.map(noop, range(n), pure=False)
    terminal = Terminal()
    drawer = None
    if with_progress:
        drawer = threading.Thread(target=progress, args=(futures,), kwargs={"file": terminal})
        drawer.start()
    client.gather(futures)
    elapsed = time.perf_counter() - start
    if drawer is not None:
        drawer.join()
    del futures
    return n / elapsed, terminal.getvalue().count("\r")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(__doc__.splitlines()[0], argv)
    modes = {"off": False, "drawing": True}
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    redraws: list[int] = []
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1) as cluster,
        Client(cluster) as client,
    ):
        run_tasks(client, 1000, with_progress=False)  # warm up
        for _ in range(args.repeats):
            for mode, with_progress in modes.items():
                rate, drawn = run_tasks(client, args.tasks, with_progress=with_progress)
                rates[mode].append(rate)
                if with_progress:
                    redraws.append(drawn)
    print(f"redraws per run: {redraws}")
    return report(args, "progress", rates, redraws=redraws)


if __name__ == "__main__":
    main()
