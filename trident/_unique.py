"""`unique_hex`: identifiers unique across processes and time, cheaper than `uuid4`.

Each process draws 64 random bits once (again in a forked child) and counts up from
there; `uuid.uuid4` reads the system's random source on every call, which showed in
profiles of `submit` and `map`.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count()


_reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def unique_hex() -> str:
    """32 hex digits never returned before, in this process or any other."""
    return f"{_prefix}{next(_counter):016x}"
