"""Quickstart: start a local cluster, run tasks on it, combine their results.

Run with ``python examples/quickstart.py``.
"""

from trident import Client, as_completed


def square(x: int) -> int:
    return x * x


def total(values: list[int]) -> int:
    return sum(values)


def main() -> None:
    # No address: trident starts a LocalCluster of worker processes for this client.
    with Client() as client:
        print(client)
        squares = client.map(square, range(1000))  # 1,000 tasks, returned at once
        result = client.submit(total, squares)  # depends on every square
        print("sum of squares below 1000:", result.result())

        firsts = [client.submit(square, n, pure=False) for n in range(5)]
        for future in as_completed(firsts):
            print("finished", future.key, "->", future.result())


if __name__ == "__main__":
    main()
