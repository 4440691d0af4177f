"""What the overhead benchmarks share: their arguments, and the table they print.

Each of them runs `map` + `gather` of no-op tasks in a few modes (with and without the
feature measured) and reports the median tasks/s of each mode against the first.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any


def noop(x: Any) -> Any:
    return x


def parse_arguments(description: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="write the results to this file")
    return parser.parse_args(argv)


def report(
    args: argparse.Namespace, column: str, rates: dict[str, list[float]], **extra: Any
) -> dict[str, Any]:
    """Print the median tasks/s of each mode against the first; write ``--json``."""
    results = {
        "tasks": args.tasks,
        "repeats": args.repeats,
        "workers": args.workers,
        "tasks_per_second": {mode: statistics.median(values) for mode, values in rates.items()},
        "all_runs": rates,
        **extra,
    }
    base = next(iter(results["tasks_per_second"].values()))
    print(f"{args.tasks:,} no-op tasks, {args.workers} worker processes, median of {args.repeats}")
    print(f"{column:<10} {'tasks/s':>10} {'vs off':>8}")
    for mode, rate in results["tasks_per_second"].items():
        print(f"{mode:<10} {rate:>10,.0f} {rate / base - 1:>+8.1%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results
