"""A streaming pipeline whose stages hand records over through distributed queues.

The main program feeds raw records into a `Queue`; two long-running stage tasks on the
cluster each take from one queue and put into the next (parse, then enrich); the main
program reads finished records from the last queue as they arrive. A ``None`` travels
behind the last record and tells each stage to stop.

Run with ``python examples/pipeline.py``.
"""

from __future__ import annotations

import json
import random

from trident import Client, Queue


def load(record_id: int) -> str:
    """A raw record, as a source would deliver it."""
    rng = random.Random(record_id)
    return json.dumps({"id": record_id, "temperature_f": round(rng.uniform(10, 100), 1)})


def parse(raw: str) -> dict:
    """Stage 1: decode and convert units."""
    record = json.loads(raw)
    record["temperature_c"] = round((record.pop("temperature_f") - 32) * 5 / 9, 2)
    return record


def enrich(record: dict) -> dict:
    """Stage 2: derive a label."""
    t = record["temperature_c"]
    record["label"] = "cold" if t < 5 else "mild" if t < 22 else "hot"
    return record


STAGES = {"parse": parse, "enrich": enrich}


def run_stage(name: str, source: str, sink: str) -> int:
    """Move records from queue `source` to queue `sink` through stage `name`."""
    inbox, outbox = Queue(source), Queue(sink)
    handled = 0
    while (item := inbox.get()) is not None:
        outbox.put(STAGES[name](item))
        handled += 1
    outbox.put(None)  # pass the end of the stream on
    return handled


def main(n: int = 200) -> None:
    # Each stage task holds a thread while it runs: two workers x two threads.
    with Client(n_workers=2, threads_per_worker=2) as client:
        stages = [
            client.submit(run_stage, "parse", "raw", "parsed", pure=False),
            client.submit(run_stage, "enrich", "parsed", "done", pure=False),
        ]
        raw, done = Queue("raw"), Queue("done")
        for record_id in range(n):
            raw.put(load(record_id))
        raw.put(None)
        labels: dict[str, int] = {}
        received = 0
        while (record := done.get(timeout=60)) is not None:
            labels[record["label"]] = labels.get(record["label"], 0) + 1
            received += 1
            if received % 50 == 0:
                print(f"{received}/{n} records through the pipeline", flush=True)
        print("handled per stage:", client.gather(stages))
        print("summary:", json.dumps({"records": received, "labels": labels}, sort_keys=True))


if __name__ == "__main__":
    main()
