"""`unique_hex`: identifiers unique across processes and time, cheaper than `uuid4`.

Each process draws 64 random bits once (again in a forked child) and counts up from
there; `uuid.uuid4` reads the system's random source on every call, which showed in
profiles of `submit` and `map`.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter = itertools.count(1)


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count(1)


_reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


#: Odd, so multiplying by it modulo 2**64 maps distinct counts to distinct numbers; the
#: ids then look as random as uuid4's (keys show in the dashboard and in errors).
_SPREAD = 0x9E3779B97F4A7C15
_MASK = 2**64 - 1


def unique_hex() -> str:
    """32 hex digits never returned before, in this process or any other."""
    return f"{_prefix}{next(_counter) * _SPREAD & _MASK:016x}"
