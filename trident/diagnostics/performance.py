"""`performance_report`: one self-contained HTML file about a block of code, as dask's.

::

    with performance_report(filename="report.html"):
        x.compute()

    async with performance_report(filename="report.html"):   # asynchronous client
        await client.compute(x)

On entry it notes the time and how many bytes each worker has fetched from its peers;
on exit it asks the cluster for the task stream since then (`Client.get_task_stream`),
the workers' merged profile (`Client.profile`) and the fetched bytes again, and writes
a page (`report_html.report_page`) with a summary (duration, tasks, compute time per
key prefix, bytes moved between workers), the task stream, the profile and the calling
code. The page loads nothing from the network: it opens offline.
"""

from __future__ import annotations

import ast
import datetime
import linecache
import os
import sys
import time
from collections.abc import Mapping
from types import FrameType, TracebackType
from typing import Any

from .._public import publish
from .._version import __version__
from ..client.client import Client, default_client
from .report_html import report_page


def fetched_bytes(dask_worker: Any) -> int:
    """Bytes the worker has fetched from its peers (run on each worker by `Client.run`)."""
    return int(dask_worker.state.bytes_fetched)


def summarize(
    records: list[dict[str, Any]],
    start: float,
    duration: float,
    transfer_by_worker: Mapping[str, int],
    workers: int,
    code: str,
) -> dict[str, Any]:
    """The report's summary: counts, compute time (total and per key prefix, the
    slowest prefix first) and transfers, as plain data."""
    per_prefix: dict[str, list[float]] = {}
    failed = 0
    for record in records:
        spent = sum(s["stop"] - s["start"] for s in record["startstops"])
        entry = per_prefix.setdefault(record["name"], [0, 0.0])
        entry[0] += 1
        entry[1] += spent
        failed += record["status"] != "OK"
    prefixes = [
        {"prefix": prefix, "tasks": int(count), "compute_time": spent}
        for prefix, (count, spent) in sorted(per_prefix.items(), key=lambda i: -i[1][1])
    ]
    return {
        "duration": duration,
        "tasks": len(records),
        "failed": failed,
        "compute_time": sum(p["compute_time"] for p in prefixes),
        "prefixes": prefixes,
        "transfer_bytes": sum(transfer_by_worker.values()),
        "transfer_by_worker": dict(transfer_by_worker),
        "workers": workers,
        "code": code,
        "started": datetime.datetime.fromtimestamp(start)
        .astimezone()
        .isoformat(timespec="seconds"),
        "version": __version__,
    }


def calling_code(frame: FrameType | None) -> str:
    """The ``with`` statement running at `frame`'s current line, whole, with its place
    (just that line when the source cannot be parsed)."""
    if frame is None:
        return ""
    filename, line = frame.f_code.co_filename, frame.f_lineno
    lines = linecache.getlines(filename, frame.f_globals)
    if not lines:
        return f"# {filename}:{line}"
    first, last = line, line
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        tree = None
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, (ast.With, ast.AsyncWith)) and node.lineno == line:
            last = node.end_lineno or line
            break
    text = "".join(lines[first - 1 : min(last, first + 200)]).rstrip()
    return f"# {filename}:{line}\n{text}"


class performance_report:
    """Write a performance report of the block it wraps (``with`` or ``async with``).

    Arguments:
        filename: where the HTML file goes (replaced if it exists).
        stacklevel: which frame's code the report shows: 1 (the default) is the code
            that entered the block.
        mode: accepted for dask's signature and ignored: trident writes one inline
            file (in dask it picks where bokeh loads its scripts from).
        storage_options: accepted for dask's signature; must be empty, as trident
            writes to a local path (in dask they go to fsspec).
        client: the client to ask (the default client when None).

    A blocking client needs ``with``; an asynchronous one ``async with``. The report
    is written even when the block raises (the exception then propagates).
    """

    def __init__(
        self,
        filename: str | os.PathLike[str] = "dask-report.html",
        stacklevel: int = 1,
        mode: str | None = None,
        storage_options: dict[str, Any] | None = None,
        *,
        client: Client | None = None,
    ):
        if storage_options:
            raise ValueError("performance_report writes local files: storage_options is unused")
        self.filename = os.fspath(filename)
        self.mode = mode
        self._stacklevel = max(1, stacklevel)
        self._client = client
        self._start = 0.0
        self._fetched: dict[str, int] = {}
        self._code = ""

    def _enter(self) -> None:
        self._start = time.time()
        try:
            self._code = calling_code(sys._getframe(self._stacklevel + 1))
        except ValueError:  # fewer frames than `stacklevel`
            self._code = ""

    def __enter__(self) -> performance_report:
        client = self._client = self._client or default_client()
        if client.asynchronous:
            raise TypeError("use 'async with performance_report()' with an asynchronous client")
        self._enter()
        self._fetched = client.run(fetched_bytes)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client = self._client
        assert client is not None
        records = client.get_task_stream(start=self._start)
        tree = client.profile(start=self._start)
        fetched = client.run(fetched_bytes)
        self._write(records, tree, fetched)

    async def __aenter__(self) -> performance_report:
        client = self._client = self._client or default_client()
        if not client.asynchronous:
            raise TypeError("use 'with performance_report()' with a blocking client")
        self._enter()
        self._fetched = await client.run(fetched_bytes)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client = self._client
        assert client is not None
        records = await client.get_task_stream(start=self._start)
        tree = await client.profile(start=self._start)
        fetched = await client.run(fetched_bytes)
        self._write(records, tree, fetched)

    def _write(
        self,
        records: list[dict[str, Any]],
        tree: Any,
        fetched: Mapping[str, int],
    ) -> None:
        transfers = {w: n - self._fetched.get(w, 0) for w, n in fetched.items()}
        summary = summarize(
            records,
            self._start,
            time.time() - self._start,
            transfers,
            len(fetched),
            self._code,
        )
        page = report_page(summary, records, tree)
        with open(self.filename, "w", encoding="utf-8") as file:
            file.write(page)


publish(globals())
