"""Task keys: `key_prefix` (the function-name part every role groups keys by) and the
reversible encoding of dask's keys as the strings that travel (`encode_key`,
`decode_key`).

The scheduler groups tasks by prefix (durations, the dashboard's task stream), the worker
names profile trees by it, and diagnostics count by it; a neutral leaf so that none of
them imports another for it.

dask keys are strings, bytes, ints, floats and tuples of those (``('x-abc', 0, 1)``).
On the wire every key is a string: a string key is itself, any other key its ``repr``
(``"('x-abc', 0, 1)"``, ``"3"``, ``"b'k'"``), and a string key that reads like such a
``repr`` is quoted (``"'3'"``), so `decode_key` always gives back the key the user
gave, with its type. The client encodes at its edge; the scheduler and workers only
see strings.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any

_prefixes: dict[str, str] = {}
_TUPLE_HEAD = re.compile(r"""\((['"])([^'"\\]*)\1""")
_HEX_WORD = re.compile("[a-f]+")  # an all-letter hex token, not a name
#: Distinct prefixes interned at most: keys of a user's own making may all differ.
PREFIXES_INTERNED = 10_000


def key_prefix(key: str) -> str:
    """The function-name part of a key, as dask's ``key_split`` finds it: the first
    ``-``-separated word and the purely alphabetic words after it, up to the first
    other word or 8-letter hex word: ``inc-1f3a...`` -> ``inc``,
    ``inc-1888e446-cbe1-4732-...`` (dask.delayed's keys) -> ``inc``, ``x-1-2`` -> ``x``,
    ``hello-world-1`` -> ``hello-world``.

    Prefixes are interned: a million tasks of one function share one string (up to
    `PREFIXES_INTERNED` distinct prefixes; beyond that they are not kept).
    """
    if key[:1] == "(":  # an encoded tuple key: ('x-abc', 0, 1) -> its name, x-abc
        found = _TUPLE_HEAD.match(key)
        if found is not None:
            key = found.group(2)
    prefix, sep, rest = key.partition("-")
    while sep:
        word, sep, rest = rest.partition("-")
        if not word.isalpha() or (len(word) == 8 and _HEX_WORD.fullmatch(word)):
            break
        prefix = f"{prefix}-{word}"
    interned = _prefixes.get(prefix)
    if interned is not None:
        return interned
    if len(_prefixes) < PREFIXES_INTERNED:
        _prefixes[prefix] = prefix
    return prefix


#: A wire key that is an encoded (non-string, or quoted) key starts like a Python literal.
_ENCODED_START = re.compile(r"""[(\'"]|b[\'"]|-?\.?\d""")
_KEY_ATOMS = (str, bytes, int, float)


def _valid_key(key: Any) -> bool:
    """A string, bytes, int, finite float, or a tuple of those: what `repr` writes so
    that `ast.literal_eval` reads it back."""
    kind = type(key)
    if kind is tuple:
        return all(_valid_key(item) for item in key)
    if kind is float:
        return math.isfinite(key)
    return kind in _KEY_ATOMS


def encode_key(key: Any) -> str:
    """The wire form of a dask key (see the module docstring).

    Raises `TypeError` for anything that is not a string, bytes, int, float or a tuple
    of those, and for floats that do not survive the round trip (nan, inf).
    """
    if type(key) is str:
        return repr(key) if _ENCODED_START.match(key) else key
    if not _valid_key(key):
        raise TypeError(
            "keys are str, bytes, int, finite float or tuples of those, not "
            f"{type(key).__name__} ({key!r})"
        )
    return repr(key)


def decode_key(wire: str) -> Any:
    """The key a wire key stands for: the inverse of `encode_key` (a string that no
    `encode_key` made stays itself)."""
    if not _ENCODED_START.match(wire):
        return wire
    try:
        key = ast.literal_eval(wire)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return wire
    return key if _valid_key(key) else wire
