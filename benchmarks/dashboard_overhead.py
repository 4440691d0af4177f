"""What the dashboard costs the scheduler: ``python -m benchmarks.dashboard_overhead``.

Runs `map` + `gather` of no-op tasks on a LocalCluster three ways, alternating the
repeats so a shared machine's noise hits all alike:

- ``off``: no dashboard;
- ``idle``: a dashboard nobody looks at;
- ``watched``: a dashboard with a page connected to its live updates (read by another
  process, as a browser would) and ``/metrics`` scraped every second.

It also times one dashboard update (the feed's per-tick work) with the tasks' records
still in the scheduler. Prints a table and, with ``--json``, writes the numbers.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

from trident import Client, LocalCluster

from .overhead import noop, parse_arguments, report

READER = """
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
with urllib.request.urlopen(request) as response:
    while response.readline():
        pass
"""


def run_tasks(client: Client, n: int) -> float:
    start = time.perf_counter()
    futures = client.map(noop, range(n), pure=False)
    client.gather(futures)
    elapsed = time.perf_counter() - start
    del futures
    return n / elapsed


class Watcher:
    """A connected page (a separate process) plus a /metrics scrape every second."""

    def __init__(self, base: str, token: str):
        self.base = base
        self.token = token
        self.reader = subprocess.Popen(
            [sys.executable, "-c", READER, base + "/api/events", token],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._stop = threading.Event()
        self._scraper = threading.Thread(target=self._scrape, name="metrics-scraper")
        self._scraper.start()

    def _scrape(self) -> None:
        request = urllib.request.Request(
            self.base + "/metrics", headers={"Authorization": "Bearer " + self.token}
        )
        while not self._stop.wait(1.0):
            with urllib.request.urlopen(request) as response:
                response.read()

    def close(self) -> None:
        self._stop.set()
        self._scraper.join()
        self.reader.terminate()
        self.reader.wait()


def measure(mode: str, n: int, workers: int) -> tuple[float, float | None]:
    dashboard = None if mode == "off" else 0
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=dashboard) as c,
        Client(c) as client,
    ):
        run_tasks(client, 1000)  # warm up: functions defined, durations known
        watcher = None
        if mode == "watched":
            base = c.dashboard_link.split("/status")[0]
            watcher = Watcher(base, c.token or "")
            time.sleep(1.0)  # the page is connected and updates flow
        try:
            rate = run_tasks(client, n)
            update_ms = None
            if mode == "watched":
                futures = client.map(noop, range(n), pure=False)
                client.gather(futures)
                feed = c.scheduler.dashboard.feed
                loop = c.loop_thread
                assert loop is not None

                async def time_update() -> float:
                    start = time.perf_counter()
                    feed._build(0, 0, initial=True)
                    return (time.perf_counter() - start) * 1000

                update_ms = loop.run(time_update)
                del futures
        finally:
            if watcher is not None:
                watcher.close()
    return rate, update_ms


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(__doc__.splitlines()[0], argv)
    modes = ("off", "idle", "watched")
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    updates: list[float] = []
    for _ in range(args.repeats):
        for mode in modes:
            rate, update_ms = measure(mode, args.tasks, args.workers)
            rates[mode].append(rate)
            if update_ms is not None:
                updates.append(update_ms)
    update_build_ms = statistics.median(updates)
    print(f"one dashboard update with {args.tasks:,} tasks in memory: {update_build_ms:.1f} ms")
    return report(args, "dashboard", rates, update_build_ms=update_build_ms)


if __name__ == "__main__":
    main()
