"""The public surface: names users import, pinned against the reference API table.

Every entry of the reference table (dask.distributed's Client API, in
``shared/reference/`` beside the clone) is a promise. The entry names are listed here
and checked against that file, which every checkout has next to it (CI clones beside a
copy of ``shared/``). The test fails when an implemented entry disappears, and when one
is implemented without being taken off `NOT_YET` (so that list only shrinks, with the
issue owning it).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import trident

REFERENCE_NAME = "dask-distributed-client-api.txt"
CLONE = Path(__file__).resolve().parents[1]


def find_reference_file(clone: Path) -> Path | None:
    """``shared/reference/<REFERENCE_NAME>`` in the nearest of `clone` and the directories
    above it: ``/some/dir/shared`` for a clone at ``/some/dir/<clone>`` (CI), and the
    shared folder further up for a git worktree nested deeper."""
    for directory in (clone, *clone.parents):
        candidate = directory / "shared" / "reference" / REFERENCE_NAME
        if candidate.is_file():
            return candidate
    return None


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


def test_the_reference_file_is_found_beside_a_clone(tmp_path):
    clone = tmp_path / "some" / "dir" / "trident"
    (clone / "tests").mkdir(parents=True)
    assert find_reference_file(clone) is None
    reference = tmp_path / "some" / "dir" / "shared" / "reference" / REFERENCE_NAME
    reference.parent.mkdir(parents=True)
    reference.write_text("Client |\n")
    assert find_reference_file(clone) == reference
    assert find_reference_file(clone / "tests") == reference


def test_entry_list_matches_the_reference_file():
    reference = find_reference_file(CLONE)
    assert reference is not None, f"no shared/reference/{REFERENCE_NAME} beside {CLONE}"
    names = [
        match.group(1)
        for line in reference.read_text().splitlines()
        if (match := re.match(r"^([A-Za-z_][\w.]*)(?: \(.*\))? \|$", line))
    ]
    assert names == REFERENCE_ENTRIES


def test_implemented_reference_entries_stay_implemented():
    missing = {trident_name(e) for e in REFERENCE_ENTRIES if resolve(trident_name(e)) is None}
    assert missing - NOT_YET == set(), "reference entries disappeared"
    assert NOT_YET - missing == set(), "implemented now: remove them from NOT_YET"


def static_exports() -> dict[str, str]:
    """Public name -> defining module, read from the imports ``trident/__init__.py`` shows
    type checkers (what static tools see), not from the module's own ``__all__``."""
    tree = ast.parse((CLONE / "trident" / "__init__.py").read_text())
    exports = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 or node.module == "builtins"):
            module = f"trident.{node.module}" if node.level == 1 else "builtins"
            for alias in node.names:
                if alias.asname == alias.name:  # the explicit re-export form
                    exports[alias.name] = module
    return exports


def test_all_lists_exactly_the_names_type_checkers_see():
    assert sorted(trident.__all__) == sorted(static_exports())


@pytest.mark.parametrize("name", sorted(static_exports()))
def test_every_public_name_is_the_object_its_module_defines(name):
    module = static_exports()[name]
    expected = getattr(importlib.import_module(module), name)
    assert getattr(trident, name) is expected
    namespace: dict[str, object] = {}
    exec(f"from trident import {name}", namespace)
    assert namespace[name] is expected
    if name != "__version__" and hasattr(expected, "__qualname__"):
        assert expected.__qualname__ == name  # a class or function, not an alias


def test_every_top_level_reference_entry_is_public():
    entries = {trident_name(e) for e in REFERENCE_ENTRIES}
    assert {e for e in entries if "." not in e} <= set(trident.__all__)


def test_dir_shows_every_public_name():
    assert set(trident.__all__) <= set(dir(trident))


#: The heading of docs/api.md's second table: what dask code uses beyond the reference.
BEYOND_HEADING = "## Beyond the reference"


def api_table_rows(beyond: bool) -> list[list[str]]:
    """The rows (name, status, test) of docs/api.md's reference table, or of its
    "beyond the reference" table."""
    text = (CLONE / "docs" / "api.md").read_text()
    reference, _, rest = text.partition(BEYOND_HEADING)
    return [
        line.split("|")[1:4]
        for line in (rest if beyond else reference).splitlines()
        if line.startswith("| `")
    ]


def assert_implemented_with_a_test(rows: list[list[str]]) -> None:
    for entry, status, test in rows:
        assert status.strip().startswith("implemented"), entry
        path, name = test.strip().strip("`").split("::")
        source = (CLONE / path).read_text()
        assert re.search(rf"^(async )?def {name}\(", source, re.M), f"{entry}: no {test}"


def test_the_api_table_lists_every_entry_with_an_existing_test():
    """docs/api.md: one row per reference entry, in order, each naming a test that exists."""
    rows = api_table_rows(beyond=False)
    assert [entry.strip().strip("`") for entry, _, _ in rows] == REFERENCE_ENTRIES
    assert_implemented_with_a_test(rows)


def test_the_beyond_the_reference_table_names_existing_tests():
    rows = api_table_rows(beyond=True)
    assert rows, f"docs/api.md has no {BEYOND_HEADING!r} table"
    assert_implemented_with_a_test(rows)
