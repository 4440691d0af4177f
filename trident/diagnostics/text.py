"""Progress bars as text, for terminals and logs.

On a terminal the bars are redrawn in place (one line per key prefix with ``multi``).
Elsewhere (a file, a CI log) a line is written each time another tenth of the work is
done, so logs stay short.
"""

from __future__ import annotations

import sys
from typing import TextIO

from .tracker import Counts, ProgressUpdate


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def bar_line(label: str, counts: Counts, width: int, elapsed: float | None = None) -> str:
    """One bar: ``label [#####     ] |  50% Completed |  5 / 10 | 1 error | 0.3s``."""
    done, total, errors = counts
    fraction = done / total if total else 1.0
    filled = round(width * fraction)
    line = f"[{'#' * filled}{' ' * (width - filled)}] | {fraction:4.0%} Completed"
    line += f" | {done:>{len(str(total))}} / {total}"
    if errors:
        line += f" | {errors} error{'s' if errors != 1 else ''}"
    if elapsed is not None:
        line += f" | {format_duration(elapsed)}"
    return f"{label} {line}" if label else line


def render(update: ProgressUpdate, multi: bool, width: int) -> list[str]:
    """The lines showing `update`: one overall bar, or one per group with `multi`."""
    if not multi or len(update.groups) <= 1:
        counts = Counts(update.done, update.total, update.errors)
        return [bar_line("", counts, width, update.elapsed)]
    label_width = max(len(name) for name in update.groups)
    lines = [
        bar_line(name.ljust(label_width), counts, width) for name, counts in update.groups.items()
    ]
    lines[-1] += f" | {format_duration(update.elapsed)}"
    return lines


class TextBars:
    """Draws progress updates on a text stream.

    Arguments:
        multi: one bar per key prefix instead of one overall bar.
        width: characters of each bar.
        file: where to write (``sys.stdout`` by default).
    """

    def __init__(self, multi: bool = True, width: int = 40, file: TextIO | None = None):
        self.multi = multi
        self.width = width
        self.file = file if file is not None else sys.stdout
        isatty = getattr(self.file, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self._lines_drawn = 0
        self._last_tenth = -1

    def draw(self, update: ProgressUpdate) -> None:
        """Show `update` (on a terminal at once; elsewhere at each further tenth)."""
        lines = render(update, self.multi, self.width)
        if self.terminal:
            self._redraw(lines)
            return
        tenth = int(update.fraction * 10)
        if tenth > self._last_tenth:
            self._last_tenth = tenth
            self.file.write("\n".join(lines) + "\n")
            self.file.flush()

    def _redraw(self, lines: list[str]) -> None:
        out = []
        if self._lines_drawn:
            out.append(f"\x1b[{self._lines_drawn - 1}F\r" if self._lines_drawn > 1 else "\r")
        out.append("\n".join(f"\x1b[2K{line}" for line in lines))
        self.file.write("".join(out))
        self.file.flush()
        self._lines_drawn = len(lines)

    def finish(self, update: ProgressUpdate) -> None:
        """Draw the final state and end the line."""
        self.draw(update)
        if self.terminal:
            self.file.write("\n")
            self.file.flush()
