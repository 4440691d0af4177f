"""The functions a trident shuffle's tasks run on workers (see `trident.shuffle`).

They use dask.dataframe's own grouping and concatenation, so each output partition
holds the rows, in the order, that dask's single-stage task-based shuffle gives it.
"""

from __future__ import annotations

from typing import Any


def split_partition(
    frame: Any,
    column: Any,
    npartitions: int,
    ignore_index: bool,
    owners: tuple[int, ...],
) -> dict[int, dict[int, Any]]:
    """Group the rows of one input partition by output partition, and the pieces by
    owner: ``{owner: {output partition: piece}}``.

    `owners[j]` is the owner (an index into the shuffle's workers) of output partition
    `j`, or -1 when that partition is not computed. Every owner in `owners` gets an
    entry, empty pieces included.
    """
    from dask.dataframe.shuffle import shuffle_group

    pieces = shuffle_group(frame, column, 0, npartitions, npartitions, ignore_index, npartitions)
    bundles: dict[int, dict[int, Any]] = {}
    for part, owner in enumerate(owners):
        if owner >= 0:
            bundles.setdefault(owner, {})[part] = pieces[part]
    return bundles


def take_bundle(bundles: dict[int, dict[int, Any]], owner: int) -> dict[int, Any]:
    """The pieces of one split that `owner` needs."""
    return bundles[owner]


def unpack_partition(bundles: list[dict[int, Any]], part: int, ignore_index: bool) -> Any:
    """Output partition `part`: its pieces from every input partition, in input order,
    concatenated as dask's task-based shuffle concatenates them."""
    from dask.dataframe.core import _concat

    return _concat([bundle[part] for bundle in bundles], ignore_index)
