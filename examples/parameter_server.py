"""A parameter server with actors: workers pull weights, push gradients, in parallel.

A `ParameterServer` actor holds the model; training tasks run on the cluster, each
pulling the current weights from the actor, computing a gradient on its own data shard,
and pushing it back. The server applies updates one at a time, in arrival order.

Run with ``python examples/parameter_server.py``.
"""

import numpy as np

from trident import Client


class ParameterServer:
    """Holds the weights of a linear model and applies gradient updates."""

    def __init__(self, dimension: int, learning_rate: float):
        self.weights = np.zeros(dimension)
        self.learning_rate = learning_rate
        self.updates = 0

    def pull(self) -> np.ndarray:
        return self.weights

    def push(self, gradient: np.ndarray) -> int:
        self.weights -= self.learning_rate * gradient
        self.updates += 1
        return self.updates


def train_shard(server, seed: int, steps: int, true_weights: np.ndarray) -> float:
    """Run `steps` of SGD on one shard of synthetic data; return the last loss."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(256, true_weights.size))
    targets = features @ true_weights
    loss = float("inf")
    for _ in range(steps):
        weights = server.pull().result()
        error = features @ weights - targets
        loss = float(np.mean(error**2))
        server.push(features.T @ error / len(targets)).result()
    return loss


def main() -> None:
    true_weights = np.arange(1.0, 6.0)
    with Client(n_workers=2, threads_per_worker=2) as client:
        server = client.actor(ParameterServer, true_weights.size, 0.05)
        shards = [
            client.submit(train_shard, server, seed, 60, true_weights, pure=False)
            for seed in range(4)
        ]
        losses = client.gather(shards)
        weights = server.pull().result()
        print("updates applied:", server.updates)
        print("final losses per shard:", [round(loss, 4) for loss in losses])
        print("learned weights:", np.round(weights, 2), "true:", true_weights)
        assert np.allclose(weights, true_weights, atol=0.1)


if __name__ == "__main__":
    main()
