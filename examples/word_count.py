"""Map-reduce word count over text files.

Each file is counted by its own task (map); the partial counts are merged pairwise in a
tree of tasks (reduce), so no single task sees everything until the last merge.

Run with ``python examples/word_count.py [FILE ...]``; without files it writes a few
sample files to a temporary directory and counts those.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

from trident import Client

SAMPLE = [
    "the quick brown fox jumps over the lazy dog",
    "structured concurrency makes the lifetime of every task visible",
    "a scheduler hands tasks to workers and the workers hand back results",
    "the dog sleeps while the fox runs and the workers work",
]


def count_words(path: str) -> Counter[str]:
    """Map: the words of one file, lower-cased."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return Counter(re.findall(r"[a-z']+", text.lower()))


def merge(a: Counter[str], b: Counter[str]) -> Counter[str]:
    """Reduce: two partial counts into one."""
    return a + b


def write_samples(directory: Path, copies: int = 25) -> list[str]:
    paths = []
    for i in range(copies):
        path = directory / f"sample-{i}.txt"
        path.write_text("\n".join(SAMPLE[i % len(SAMPLE) :] + SAMPLE[: i % len(SAMPLE)]))
        paths.append(str(path))
    return paths


def word_count(client: Client, paths: list[str]) -> Counter[str]:
    partials = client.map(count_words, paths)
    while len(partials) > 1:  # a tree of merges: log2(files) levels
        pairs = zip(partials[::2], partials[1::2], strict=False)
        merged = [client.submit(merge, a, b) for a, b in pairs]
        if len(partials) % 2:
            merged.append(partials[-1])
        partials = merged
    return partials[0].result()


def main(argv: list[str]) -> None:
    with Client() as client, tempfile.TemporaryDirectory() as tmp:
        paths = argv or write_samples(Path(tmp))
        counts = word_count(client, paths)
        print(f"{len(paths)} files, {sum(counts.values())} words, {len(counts)} distinct")
        for word, n in counts.most_common(5):
            print(f"{word:>12} {n}")


if __name__ == "__main__":
    main(sys.argv[1:])
