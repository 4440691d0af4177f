"""A Monte Carlo estimate of pi with numpy, spread over the cluster.

Each task draws its own chunk of random points (with its own seed, so the estimate is
reproducible) and counts those inside the unit circle; one more task adds the counts.

Run with ``python examples/monte_carlo.py [POINTS]``.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from trident import Client

CHUNK = 1_000_000


def hits_in_circle(seed: int, n: int) -> int:
    """How many of `n` uniform points in the unit square fall inside the quarter circle."""
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    y = rng.random(n)
    return int(np.count_nonzero(x * x + y * y <= 1.0))


def total(counts: list[int]) -> int:
    return sum(counts)


def main(points: int) -> None:
    chunks = max(1, points // CHUNK)
    seeds = np.random.SeedSequence(2024).spawn(chunks)
    with Client() as client:
        counts = client.map(
            hits_in_circle, [int(s.generate_state(1)[0]) for s in seeds], [CHUNK] * chunks
        )
        inside = client.submit(total, counts).result()
    n = chunks * CHUNK
    estimate = 4 * inside / n
    stderr = 4 * math.sqrt((inside / n) * (1 - inside / n) / n)
    print(f"pi ~ {estimate:.6f} +- {stderr:.6f} from {n:,} points in {chunks} tasks")
    print(f"error {abs(estimate - math.pi):.6f}")


if __name__ == "__main__":
    main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 20_000_000)
