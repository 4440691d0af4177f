"""A parameter sweep with live progress: results are handled as they finish.

Fits a tiny model (ridge regression by gradient descent, in plain Python) for every
combination of learning rate and regularisation, and reports progress and the best
score so far as each fit completes, in completion order (`as_completed`).

Run with ``python examples/parameter_sweep.py``.
"""

from __future__ import annotations

import itertools
import random

from trident import Client, as_completed

LEARNING_RATES = [0.001, 0.003, 0.01, 0.03, 0.1]
REGULARISATION = [0.0, 0.01, 0.1, 1.0]


def make_data(n: int = 200, seed: int = 0) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(x, 3.0 * x + 0.5 + rng.gauss(0, 0.3)) for x in (rng.uniform(-2, 2) for _ in range(n))]


def fit(data: list[tuple[float, float]], rate: float, reg: float, steps: int = 300) -> dict:
    """Fit y = w x + b; return the parameters and the mean squared error."""
    w = b = 0.0
    n = len(data)
    for _ in range(steps):
        grad_w = sum((w * x + b - y) * x for x, y in data) / n + reg * w
        grad_b = sum(w * x + b - y for x, y in data) / n
        w -= rate * grad_w
        b -= rate * grad_b
    mse = sum((w * x + b - y) ** 2 for x, y in data) / n
    return {"rate": rate, "reg": reg, "w": w, "b": b, "mse": mse}


def main() -> None:
    with Client() as client:
        data = client.scatter(make_data())  # sent to the workers once, shared by every fit
        grid = list(itertools.product(LEARNING_RATES, REGULARISATION))
        futures = [client.submit(fit, data, rate, reg) for rate, reg in grid]
        best = None
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            if best is None or result["mse"] < best["mse"]:
                best = result
            print(
                f"[{done:>2}/{len(grid)}] rate={result['rate']:<6} reg={result['reg']:<5} "
                f"mse={result['mse']:.4f}   best so far: mse={best['mse']:.4f}",
                flush=True,
            )
        assert best is not None
        print(
            f"best: rate={best['rate']} reg={best['reg']} "
            f"-> y = {best['w']:.2f} x + {best['b']:.2f} (mse {best['mse']:.4f})"
        )


if __name__ == "__main__":
    main()
