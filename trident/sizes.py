"""Byte sizes as people write them: ``4GB``, ``512MiB``, ``1e9``, and back."""

from __future__ import annotations

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
