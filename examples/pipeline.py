"""A streaming pipeline built from futures: load -> parse -> enrich, then a summary.

Every record flows through the three stages on its own: a stage's task depends on the
previous stage's future for that record only, so early records reach the last stage
while later ones are still loading, and the workers never wait for a whole stage. The
main program consumes finished records in completion order.

(A pipeline whose stages hand items over through a distributed ``Queue`` waits for
trident's coordination primitives; this one needs only futures.)

Run with ``python examples/pipeline.py``.
"""

from __future__ import annotations

import json
import random
import time

from trident import Client, as_completed


def load(record_id: int) -> str:
    """Stage 1: fetch a raw record (simulated I/O)."""
    rng = random.Random(record_id)
    time.sleep(rng.uniform(0.001, 0.02))
    return json.dumps({"id": record_id, "temperature_f": round(rng.uniform(10, 100), 1)})


def parse(raw: str) -> dict:
    """Stage 2: decode and convert units."""
    record = json.loads(raw)
    record["temperature_c"] = round((record.pop("temperature_f") - 32) * 5 / 9, 2)
    return record


def enrich(record: dict) -> dict:
    """Stage 3: derive a label."""
    t = record["temperature_c"]
    record["label"] = "cold" if t < 5 else "mild" if t < 22 else "hot"
    return record


def summarize(records: list[dict]) -> dict:
    """Final step: one summary over every record."""
    labels: dict[str, int] = {}
    for record in records:
        labels[record["label"]] = labels.get(record["label"], 0) + 1
    mean = sum(r["temperature_c"] for r in records) / len(records)
    return {"records": len(records), "mean_c": round(mean, 2), "labels": labels}


def main(n: int = 200) -> None:
    with Client() as client:
        raw = client.map(load, range(n))
        parsed = client.map(parse, raw)  # each depends on its own `load` only
        enriched = client.map(enrich, parsed)
        hot = 0
        for done, future in enumerate(as_completed(enriched), start=1):
            hot += future.result()["label"] == "hot"
            if done % 50 == 0:
                print(f"{done}/{n} records through the pipeline, {hot} hot so far", flush=True)
        summary = client.submit(summarize, enriched).result()
        print("summary:", json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
