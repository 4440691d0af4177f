"""Progress bars as Jupyter widgets, when ipywidgets is installed.

ipywidgets is not a dependency of trident: `widgets_available` says whether it can be
imported, and `ProgressWidget` imports it only when built.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from .text import format_duration
from .tracker import Counts, ProgressTracker, ProgressUpdate


def widgets_available() -> bool:
    """True when ipywidgets can be imported."""
    return "ipywidgets" in sys.modules or importlib.util.find_spec("ipywidgets") is not None


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel attached)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class ProgressWidget:
    """Live bars in a notebook: one overall, or one per key prefix with `multi`.

    Updated from the futures' client as they finish; displays itself when it is the
    value of a cell (or with ``IPython.display.display``). Raises `ImportError` naming
    ipywidgets when it is not installed.
    """

    def __init__(self, tracker: ProgressTracker, multi: bool = True):
        try:
            import ipywidgets
        except ImportError as exc:
            raise ImportError(
                "progress bars in notebooks need ipywidgets: pip install ipywidgets"
            ) from exc
        self._tracker = tracker
        self._shown = 0  # futures done at the latest redraw
        update = tracker.snapshot()
        names = list(update.groups) if multi and len(update.groups) > 1 else [""]
        self._bars: dict[str, Any] = {}
        self._labels: dict[str, Any] = {}
        rows = []
        for name in names:
            bar = ipywidgets.IntProgress(min=0, max=max(1, update.total), value=0)
            label = ipywidgets.HTML(value="")
            self._bars[name], self._labels[name] = bar, label
            title = ipywidgets.HTML(value=f"<tt>{name}</tt>" if name else "")
            rows.append(ipywidgets.HBox([title, bar, label]))
        self._elapsed = ipywidgets.HTML(value="")
        self.box = ipywidgets.VBox([*rows, self._elapsed])
        self._show(update)
        tracker.add_callback(self._refresh)
        if update.complete:
            tracker.close()

    def _refresh(self) -> None:
        update = self._tracker.snapshot()
        # Every trait change is a message to the browser: redraw per 1% of the futures,
        # not per future (10,000 a second would flood the notebook).
        if not update.complete and abs(update.done - self._shown) < max(1, update.total // 100):
            return
        self._show(update)
        if update.complete:
            self._tracker.close()

    def _show(self, update: ProgressUpdate) -> None:
        self._shown = update.done
        groups = (
            update.groups
            if len(self._bars) > 1
            else {"": Counts(update.done, update.total, update.errors)}
        )
        for name, (done, total, errors) in groups.items():
            bar = self._bars[name]
            bar.max = max(1, total)
            bar.value = done
            bar.bar_style = "danger" if errors else ("success" if done >= total else "")
            text = f"{done} / {total}" + (f", {errors} failed" if errors else "")
            self._labels[name].value = f"<tt>{text}</tt>"
        state = "finished" if update.complete else "running"
        self._elapsed.value = f"<tt>{state} after {format_duration(update.elapsed)}</tt>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)
