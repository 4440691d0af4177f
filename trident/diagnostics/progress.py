"""`progress`: watch futures finish, as text bars, notebook widgets or an async stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any, TextIO

import anyio

from .._public import publish
from ..client.structures import futures_of
from .text import TextBars
from .tracker import ProgressTracker, ProgressUpdate
from .widget import ProgressWidget, in_notebook, widgets_available


def progress(
    *futures: Any,
    notebook: bool | None = None,
    multi: bool = True,
    complete: bool = True,
    width: int = 40,
    interval: float = 0.1,
    file: TextIO | None = None,
    group_by: str = "prefix",
) -> Any:
    """Show the progress of futures until they are all done (dask's ``progress``).

    Arguments:
        futures: futures, or collections holding futures (lists, dicts, ...), or
            persisted dask collections: their bars count every task of the graph
            behind them (as dask's do), not only the outputs (text bars; a notebook
            widget counts the outputs).
        notebook: draw ipywidgets bars (True), text bars (False), or decide (None:
            widgets inside a Jupyter kernel when ipywidgets is installed).
        multi: one bar per function (key prefix) instead of one overall bar.
        complete: count futures that are already done (False: only the others).
        width: characters of a text bar.
        interval: seconds between redraws of a text bar on a terminal.
        file: where text bars go (``sys.stdout`` by default).
        group_by: what a bar of `multi` counts: ``"prefix"`` (dask's default: the tasks
            of one function, by key prefix), the only grouping trident draws
            (`ValueError` for others, such as dask's ``"spans"``).

    What it does and returns depends on where it is called:

    - with futures of a blocking client, it draws text bars until every future is done
      (redrawn in place on a terminal; a line per tenth of the work in a log) and
      returns None;
    - in a notebook, it returns a `ProgressWidget` at once, which shows itself as the
      value of the cell and updates live;
    - with futures of an asynchronous client, it returns a `Progress`: ``await`` it to
      draw text bars until done, or ``async for update in progress(...)`` to get a
      `ProgressUpdate` each time futures finish.

    Failed and cancelled futures count as done (bars show how many failed); progress
    never raises their errors. Raises `ImportError` for ``notebook=True`` without
    ipywidgets, and `RuntimeError` when a blocking call would wait inside the client's
    own event loop.
    """
    if group_by != "prefix":
        raise ValueError(
            f"progress(group_by={group_by!r}) is not supported: bars group tasks by "
            "key prefix (group_by='prefix')"
        )
    found = futures_of(list(futures))
    graph = any(hasattr(item, "__dask_graph__") for item in futures)
    if notebook is None:
        notebook = in_notebook() and widgets_available()
    if notebook:
        return ProgressWidget(ProgressTracker(found, complete), multi)
    if any(future.client.asynchronous for future in found):
        return Progress(ProgressTracker(found, complete, graph), multi, width, interval, file)
    if any(future.client._future_watch.in_loop_thread for future in found):
        raise RuntimeError("progress() cannot block inside the client's event loop")
    tracker = ProgressTracker(found, complete, graph)
    bars = TextBars(multi, width, file)
    try:
        while True:
            tracker.refresh_graph()
            update = tracker.snapshot()
            if update.complete:
                break
            bars.draw(update)
            tracker.wait_finished(interval)  # changes meanwhile are drawn together
        bars.finish(update)
    finally:
        tracker.close()
    return None


class Progress:
    """The progress of futures of an asynchronous client (what `progress` returns there).

    ``await progress(futures)`` draws text bars until every future is done.
    ``async for update in progress(futures):`` yields a `ProgressUpdate` now and after
    each change (changes that happen while the loop body runs are merged), the last one
    complete; leaving the loop early stops the tracking. Use one or the other once.
    """

    def __init__(
        self,
        tracker: ProgressTracker,
        multi: bool = True,
        width: int = 40,
        interval: float = 0.1,
        file: TextIO | None = None,
    ):
        self._tracker = tracker
        self._multi = multi
        self._width = width
        self._interval = interval
        self._file = file

    def __await__(self) -> Generator[Any, None, None]:
        return self._draw().__await__()

    async def _draw(self) -> None:
        tracker = self._tracker
        bars = TextBars(self._multi, self._width, self._file)
        try:
            while True:
                await tracker.refresh_graph_async()
                update = tracker.snapshot()
                if update.complete:
                    break
                bars.draw(update)
                with anyio.move_on_after(self._interval):  # changes meanwhile: drawn together
                    await tracker.wait_finished_async()
            bars.finish(update)
        finally:
            tracker.close()

    def __aiter__(self) -> AsyncIterator[ProgressUpdate]:
        return self._updates()

    async def _updates(self) -> AsyncIterator[ProgressUpdate]:
        tracker = self._tracker
        try:
            while True:
                await tracker.refresh_graph_async()
                version, update = tracker.versioned_snapshot()
                yield update
                if update.complete:
                    return
                await tracker.wait_async(version)
        finally:
            tracker.close()


publish(globals())
