"""Self-contained HTML for `performance_report` and `get_task_stream(plot=...)`.

Everything a page needs is inline: one ``<style>`` block, SVG drawn here in Python, and
the raw data as a JSON block (``<script type="application/json">``, never executed).
No scripts, stylesheets or fonts are loaded from anywhere, so the file opens offline
and under any content-security policy. Hovering a bar shows its SVG ``<title>``.
"""

from __future__ import annotations

import html
import json
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from ..sizes import format_bytes
from .text import format_duration as _long_duration

#: Width of the drawings in SVG units (they scale to the page).
WIDTH = 1000
#: Height of one lane of the task stream and one level of the profile.
ROW = 16
#: Profile levels drawn below the root; deeper frames are summed into their parent.
PROFILE_DEPTH = 60
#: Profile nodes narrower than this (in SVG units) are not drawn.
PROFILE_MIN_WIDTH = 0.5

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.5em; margin: 0 0 .3em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .4em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; }
th, td { padding: .15em .9em .15em 0; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 10px sans-serif; fill: #222; pointer-events: none; }
svg .axis { stroke: #999; stroke-width: .5; }
svg rect.err { stroke: #c00; stroke-width: 1.5; }
.legend span { display: inline-block; margin: 0 1em .3em 0; }
.legend i { display: inline-block; width: .9em; height: .9em; margin-right: .3em;
  vertical-align: -.1em; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; }
.muted { color: #777; }
"""


def format_duration(seconds: float) -> str:
    """Seconds for people: ``850 us``, ``12.3 ms``, ``4.21 s``, ``2m 05s``."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    return _long_duration(seconds)


def colour(prefix: str) -> str:
    """A stable colour for a key prefix (the same prefix, the same colour)."""
    hue = zlib.crc32(prefix.encode()) % 360
    return f"hsl({hue}, 62%, 58%)"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _lanes(records: list[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], int]], int]:
    """Each record with its lane (one row per concurrently running task of a worker),
    and the number of lanes."""
    placed: list[tuple[dict[str, Any], int]] = []
    lanes = 0
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_worker.setdefault(record["worker"], []).append(record)
    for worker in sorted(by_worker):
        ends: list[float] = []
        for record in sorted(by_worker[worker], key=lambda r: _span(r)[0]):
            start, stop = _span(record)
            lane = next((i for i, end in enumerate(ends) if end <= start), len(ends))
            if lane == len(ends):
                ends.append(stop)
            else:
                ends[lane] = stop
            placed.append((record, lanes + lane))
        lanes += max(1, len(ends))
    return placed, lanes


def _span(record: Mapping[str, Any]) -> tuple[float, float]:
    spans = record["startstops"]
    return min(s["start"] for s in spans), max(s["stop"] for s in spans)


def task_stream_svg(records: list[dict[str, Any]]) -> str:
    """The task stream as one SVG: a row per worker thread, a bar per task run (its
    colour by key prefix, outlined red if it failed), time left to right."""
    if not records:
        return '<p class="muted">No task ran.</p>'
    placed, lanes = _lanes(records)
    t0 = min(_span(r)[0] for r in records)
    t1 = max(_span(r)[1] for r in records)
    scale = WIDTH / max(t1 - t0, 1e-6)
    height = lanes * ROW + 24
    parts = [
        f'<svg class="task-stream" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="task stream" xmlns="http://www.w3.org/2000/svg">'
    ]
    for record, lane in placed:
        start, stop = _span(record)
        x = (start - t0) * scale
        width = max((stop - start) * scale, 0.8)
        failed = record.get("status") != "OK"
        tip = (
            f"{record['key']}\n{record['name']} on {record['worker']}\n"
            f"{format_duration(stop - start)}{' (error)' if failed else ''}"
        )
        marked = ' class="err"' if failed else ""
        parts.append(
            f'<rect x="{x:.2f}" y="{lane * ROW + 1}" width="{width:.2f}" height="{ROW - 2}" '
            f'fill="{colour(record["name"])}"{marked}>'
            f"<title>{_e(tip)}</title></rect>"
        )
    axis = lanes * ROW + 4
    parts.append(f'<line class="axis" x1="0" y1="{axis}" x2="{WIDTH}" y2="{axis}"/>')
    for i in range(6):
        x = WIDTH * i / 5
        anchor = "start" if i == 0 else "end" if i == 5 else "middle"
        label = format_duration((t1 - t0) * i / 5) if i else "0 s"
        parts.append(f'<text x="{x:.1f}" y="{axis + 14}" text-anchor="{anchor}">{_e(label)}</text>')
    parts.append("</svg>")
    prefixes = sorted({r["name"] for r in records})
    legend = "".join(
        f'<span><i style="background:{colour(p)}"></i>{_e(p)}</span>' for p in prefixes
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def profile_svg(tree: Mapping[str, Any]) -> str:
    """A profile tree (`trident._profile`) as an icicle chart: the root on top, each
    function below its caller, as wide as its share of the samples."""
    total = tree.get("count", 0)
    if not total:
        return '<p class="muted">No samples (the profiler samples running sync tasks).</p>'
    rects: list[str] = []
    depth_seen = 0

    def draw(node: Mapping[str, Any], x: float, depth: int) -> None:
        nonlocal depth_seen
        width = WIDTH * node["count"] / total
        if width < PROFILE_MIN_WIDTH or depth > PROFILE_DEPTH:
            return
        depth_seen = max(depth_seen, depth)
        description = node.get("description", {})
        name = description.get("name") or "all"
        where = f"{description.get('filename', '')}:{description.get('line_number', '')}"
        tip = f"{name}\n{where}\n{node['count']} samples ({100 * node['count'] / total:.1f}%)"
        if description.get("line"):
            tip += f"\n{description['line']}"
        fill = "#bbb" if depth == 0 else colour(name)
        rects.append(
            f'<rect x="{x:.2f}" y="{depth * ROW}" width="{width:.2f}" height="{ROW - 1}" '
            f'fill="{fill}"><title>{_e(tip)}</title></rect>'
        )
        if width > 40:
            label = name[: int(width / 6)]
            rects.append(f'<text x="{x + 3:.2f}" y="{depth * ROW + 11}">{_e(label)}</text>')
        for child in sorted(node["children"].values(), key=lambda c: -c["count"]):
            draw(child, x, depth + 1)
            x += WIDTH * child["count"] / total

    draw(tree, 0.0, 0)
    height = (depth_seen + 1) * ROW
    return (
        f'<svg class="profile" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="worker profile" xmlns="http://www.w3.org/2000/svg">'
        + "".join(rects)
        + "</svg>"
    )


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_e(c)}</td>' if i >= numeric_from else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _data_block(element_id: str, data: Any) -> str:
    text = json.dumps(data, default=str).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def page(title: str, body: str) -> str:
    """A complete HTML document around `body`, with the report's inline style."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def task_stream_page(records: list[dict[str, Any]]) -> str:
    """A standalone page with the task stream (``get_task_stream(plot='save')``)."""
    body = (
        f"<h1>Task stream</h1><p>{len(records)} task runs</p>"
        + task_stream_svg(records)
        + _data_block("task-stream-data", records)
    )
    return page("trident task stream", body)


def report_page(summary: Mapping[str, Any], records: list[dict[str, Any]], tree: Any) -> str:
    """The performance report: summary, task stream, worker profile and calling code.

    `summary` is what `trident.diagnostics.performance.summarize` returns.
    """
    overview = _table(
        ["", ""],
        [
            ["Duration", format_duration(summary["duration"])],
            ["Tasks", f"{summary['tasks']:,}"],
            ["Failed tasks", f"{summary['failed']:,}"],
            ["Compute time", format_duration(summary["compute_time"])],
            ["Bytes transferred between workers", format_bytes(summary["transfer_bytes"])],
            ["Workers", f"{summary['workers']:,}"],
        ],
    )
    prefixes = _table(
        ["Task prefix", "Tasks", "Compute time", "Mean per task"],
        [
            [p["prefix"], f"{p['tasks']:,}", format_duration(p["compute_time"]),
             format_duration(p["compute_time"] / p["tasks"])]
            for p in summary["prefixes"]
        ],
    )  # fmt: skip
    transfers = _table(
        ["Worker", "Bytes received from peers"],
        [[w, format_bytes(n)] for w, n in sorted(summary["transfer_by_worker"].items())],
    )
    code = summary.get("code") or "<not available>"
    body = (
        "<h1>trident performance report</h1>"
        f'<p class="muted">{_e(summary["started"])} · trident {_e(summary["version"])}</p>'
        f'<h2>Summary</h2><div id="summary">{overview}</div>'
        f'<h2>Compute time per task prefix</h2><div id="prefixes">{prefixes}</div>'
        f'<h2>Task stream</h2><div id="task-stream">{task_stream_svg(records)}</div>'
        f'<h2>Worker profile</h2><div id="profile">{profile_svg(tree or {})}</div>'
        f'<h2>Transfers</h2><div id="transfers">{transfers}</div>'
        f"<h2>Calling code</h2><pre>{_e(code)}</pre>"
        + _data_block("report-data", {"summary": summary, "task_stream": records, "profile": tree})
    )
    return page("trident performance report", body)


class TaskStreamFigure:
    """The task stream drawn as SVG (what ``get_task_stream(plot=True)`` gives as
    ``ts.figure``); displays itself in a notebook."""

    def __init__(self, records: list[dict[str, Any]]):
        self.svg = task_stream_svg(records)
        self.html = task_stream_page(records)

    def _repr_html_(self) -> str:
        return self.svg

    def save(self, filename: str) -> None:
        """Write the task stream as a self-contained HTML page."""
        with open(filename, "w", encoding="utf-8") as file:
            file.write(self.html)
