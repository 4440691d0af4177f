"""`get_task_stream`: the task runs of a block of code, as dask's context manager.

::

    with get_task_stream() as ts:
        x.compute()
    ts.data      # [{"key", "name", "worker", "status", "startstops": [...]}, ...]

    async with get_task_stream(client=c) as ts:   # an asynchronous client
        await c.compute(x)

On entry the client's clock is read; on exit the scheduler's records of the runs that
ended since then are fetched (`Client.get_task_stream(start=...)`). The runs are timed
by the workers' clocks, so a worker whose clock is far behind the client's may have
runs left out, as with dask's older, time-based version of this manager.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from .._public import publish
from ..client.client import Client, default_client
from .report_html import TaskStreamFigure


class get_task_stream:
    """Collect the task stream of the block it wraps (``with`` or ``async with``).

    Arguments:
        client: the client to ask (the default client when None).
        plot: False for data only; True to also draw ``ts.figure`` (an SVG figure that
            displays itself in a notebook; dask draws a bokeh figure); ``"save"`` to
            also write it to `filename` as a self-contained HTML page.
        filename: where ``plot="save"`` writes the page.

    After the block, ``ts.data`` is the list of task records (dask's fields: ``key``,
    ``name`` (the key prefix), ``worker``, ``status`` (``"OK"`` or ``"error"``),
    ``startstops``), oldest first. A blocking client needs ``with``; an asynchronous
    one ``async with``.
    """

    data: list[dict[str, Any]]

    def __init__(
        self,
        client: Client | None = None,
        plot: bool | str = False,
        filename: str = "task-stream.html",
    ):
        if plot not in (False, True, "save"):
            raise ValueError(f"plot must be False, True or 'save', not {plot!r}")
        self.client = client if client is not None else default_client()
        self.data = []
        self.figure: TaskStreamFigure | None = None
        self._plot = plot
        self._filename = filename
        self._start = 0.0

    def __enter__(self) -> get_task_stream:
        if self.client.asynchronous:
            raise TypeError("use 'async with get_task_stream()' with an asynchronous client")
        self._start = time.time()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._collected(self.client.get_task_stream(start=self._start))

    async def __aenter__(self) -> get_task_stream:
        if not self.client.asynchronous:
            raise TypeError("use 'with get_task_stream()' with a blocking client")
        self._start = time.time()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._collected(await self.client.get_task_stream(start=self._start))

    def _collected(self, records: list[dict[str, Any]]) -> None:
        self.data.extend(records)
        if self._plot:
            self.figure = TaskStreamFigure(self.data)
            if self._plot == "save":
                self.figure.save(self._filename)


publish(globals())
