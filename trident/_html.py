"""Small HTML tables for notebooks' rich display (``_repr_html_`` of `Client`, `Future`
and `LocalCluster`)."""

from __future__ import annotations

import html
from collections.abc import Iterable


def html_table(title: str, rows: Iterable[tuple[str, str]]) -> str:
    """A titled two-column table. Row labels are escaped here; values are inserted as
    given, so callers escape text and may pass markup (a link)."""
    body = "".join(
        f'<tr><th style="text-align: left">{html.escape(label)}</th><td>{value}</td></tr>'
        for label, value in rows
    )
    return (
        f'<div><h4 style="margin-bottom: 0.3em">{html.escape(title)}</h4>'
        f"<table>{body}</table></div>"
    )
