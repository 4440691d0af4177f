"""The public surface: names users import, pinned against the reference API table.

Every entry of the reference table (dask.distributed's Client API, in
``../shared/reference/``) is a promise. The entry names are listed here so the test
runs on any clone; when the reference file is present, the list is checked against it.
The test fails when an implemented entry disappears, and when one is implemented
without being taken off `NOT_YET` (so that list only shrinks, with the issue owning it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import trident

REFERENCE_FILE = (
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "dask-distributed-client-api.txt"
)

REFERENCE_ENTRIES = [
    "Client", "Client.call_stack", "Client.cancel", "Client.close", "Client.compute",
    "Client.gather", "Client.get", "Client.get_dataset", "Client.get_executor",
    "Client.get_metadata", "Client.get_scheduler_logs", "Client.get_worker_logs",
    "Client.has_what", "Client.list_datasets", "Client.map", "Client.ncores",
    "Client.persist", "Client.publish_dataset", "Client.profile", "Client.rebalance",
    "Client.replicate", "Client.restart", "Client.run", "Client.run_on_scheduler",
    "Client.scatter", "Client.scheduler_info", "Client.write_scheduler_file",
    "Client.set_metadata", "Client.start_ipython_workers", "Client.start_ipython_scheduler",
    "Client.submit", "Client.unpublish_dataset", "Client.upload_file", "Client.who_has",
    "worker_client", "get_worker", "get_client", "secede", "rejoin", "Reschedule",
    "ReplayExceptionClient.get_futures_error", "ReplayExceptionClient.recreate_error_locally",
    "Future", "Future.add_done_callback", "Future.cancel", "Future.cancelled", "Future.done",
    "Future.exception", "Future.result", "Future.traceback", "Lock", "Queue", "Variable",
    "as_completed", "distributed.diagnostics.progress", "wait", "fire_and_forget",
    "futures_of",
]  # fmt: skip

#: Reference entries that later issues implement (issue 6 owns all of these).
NOT_YET: set[str] = set()


def trident_name(entry: str) -> str:
    """Where trident puts a reference entry (dask's mixin and module paths flattened)."""
    return entry.replace("ReplayExceptionClient.", "Client.").removeprefix(
        "distributed.diagnostics."
    )


def resolve(name: str) -> object | None:
    obj: object = trident
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


@pytest.mark.skipif(not REFERENCE_FILE.exists(), reason="the reference file is outside this clone")
def test_entry_list_matches_the_reference_file():
    names = [
        match.group(1)
        for line in REFERENCE_FILE.read_text().splitlines()
        if (match := re.match(r"^([A-Za-z_][\w.]*)(?: \(.*\))? \|$", line))
    ]
    assert names == REFERENCE_ENTRIES


def test_implemented_reference_entries_stay_implemented():
    missing = {trident_name(e) for e in REFERENCE_ENTRIES if resolve(trident_name(e)) is None}
    assert missing - NOT_YET == set(), "reference entries disappeared"
    assert NOT_YET - missing == set(), "implemented now: remove them from NOT_YET"


def test_all_lists_exactly_the_public_names():
    public = {name for name in dir(trident) if not name.startswith(("_", "@"))}
    subpackages = {
        "actors", "cli", "client", "cluster", "comm", "coordination", "dashboard", "deploy",
        "diagnostics", "protocol", "scheduler", "security", "sizes", "testing", "worker",
    }  # fmt: skip
    assert set(trident.__all__) - {"__version__"} == public - subpackages
    for name in trident.__all__:
        assert getattr(trident, name) is not None


def test_the_api_table_lists_every_entry_with_an_existing_test():
    """docs/api.md: one row per reference entry, in order, each naming a test that exists."""
    root = Path(__file__).resolve().parents[1]
    rows = [
        line.split("|")[1:4]
        for line in (root / "docs" / "api.md").read_text().splitlines()
        if line.startswith("| `")
    ]
    assert [entry.strip().strip("`") for entry, _, _ in rows] == REFERENCE_ENTRIES
    for entry, status, test in rows:
        assert status.strip().startswith("implemented"), entry
        path, name = test.strip().strip("`").split("::")
        source = (root / path).read_text()
        assert re.search(rf"^(async )?def {name}\(", source, re.M), f"{entry}: no {test}"
