"""`trident._keys.key_prefix`: the name part of a key, as dask's ``key_split`` gives it.

Tasks are grouped by prefix for duration estimates and pipelining; a prefix that kept
part of a unique token made every task of ``dask.delayed`` (keys such as
``inc-1888e446-cbe1-4732-9cb8-274e586c9ba9``) a group of its own, with no estimate.
"""

from __future__ import annotations

import uuid

import pytest

from trident._keys import encode_key, key_prefix


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("x", "x"),
        ("x-1", "x"),
        ("x-1-2-3", "x"),
        ("inc-1f3a9c", "inc"),
        (f"inc-{uuid.uuid4()}", "inc"),
        ("hello-world-1", "hello-world"),
        ("x-abcdefab", "x"),  # an 8-letter hex token is not a name
        ("shuffle-split-taskshuffle-963d81c84eda494782093f086a0c1573", "shuffle-split-taskshuffle"),
        (encode_key(("x-abc", 0, 1)), "x-abc"),
        (encode_key(("x-2", 1)), "x"),
    ],
)
def test_prefix_matches_dasks_key_split(key, prefix):
    assert key_prefix(key) == prefix


def test_against_dask_itself():
    key_split = pytest.importorskip("dask.utils").key_split
    keys = [f"inc-{uuid.uuid4()}", "sum-aggregate-abc1", "finalize-hlgfinalizecompute-8b0a6b"]
    keys += [f"load-{i}-{j}" for i in range(3) for j in range(3)]
    for key in keys:
        assert key_prefix(key) == key_split(key)
