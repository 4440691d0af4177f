"""Profile trees: the call-tree counts a worker's sampler keeps, and their merging.

A tree node is a dict: ``identifier``, ``description`` (file, function, line), ``count``
(samples through it) and ``children`` (identifier -> node). Workers build them
(`trident.worker.profiling`); a client merges the trees of many workers
(`Client.profile`), so the data type and `merge` live in this neutral leaf.
"""

from __future__ import annotations

from typing import Any

Tree = dict[str, Any]


def new_tree(identifier: str = "root", description: dict[str, Any] | None = None) -> Tree:
    """An empty profile tree (or node)."""
    return {
        "identifier": identifier,
        "description": description or {"filename": "", "name": "", "line_number": 0, "line": ""},
        "count": 0,
        "children": {},
    }


def merge(*trees: Tree) -> Tree:
    """One tree counting every sample of `trees` (the inputs are not modified)."""
    merged = new_tree()
    for tree in trees:
        _merge_into(merged, tree)
    return merged


def _merge_into(target: Tree, source: Tree) -> None:
    target["count"] += source["count"]
    children = target["children"]
    for ident, child in source["children"].items():
        mine = children.get(ident)
        if mine is None:
            mine = children[ident] = new_tree(ident, dict(child["description"]))
        _merge_into(mine, child)
