"""Sizes and durations as people write them: ``4GB``, ``512MiB``, ``1e9`` and back;
``"500ms"``, ``"5 minutes"``, ``2.5``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "b": 1,
}


def parse_memory(value: int | float | str | None) -> int:
    """Bytes from ``4GB``, ``512MiB``, ``1e9`` or a number; 0 means no limit.

    Raises `ValueError` for text that is not a size.
    """
    if value is None:
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    text = value.strip().lower().replace(" ", "")
    for unit, factor in _UNITS.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(float(text))


def format_bytes(n: float) -> str:
    """``1.50 GB``, ``12.00 kB``, ``512 B``: decimal units, two decimals above bytes."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


#: seconds per duration unit, by every spelling dask's ``parse_timedelta`` accepts
_SECONDS = {
    **dict.fromkeys(("us", "microsecond", "microseconds"), 1e-6),
    **dict.fromkeys(("ms", "millisecond", "milliseconds"), 1e-3),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds", ""), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800.0),
}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration(value: float | str | timedelta) -> float:
    """Seconds from a number (seconds), a `timedelta`, or text such as ``"1s"``,
    ``"500ms"``, ``"2.5 minutes"``, ``"1h"`` (dask's units and spellings).

    Raises `ValueError` for text that is not a duration and for negative numbers.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        unit = match.group(2).lower() if match is not None else None
        if match is None or unit not in _SECONDS:
            raise ValueError(f"not a duration: {value!r}")
        seconds = float(match.group(1)) * _SECONDS[unit]
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return seconds
