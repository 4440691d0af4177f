"""Watching computations: `progress` and what it is made of, `get_task_stream` and
`performance_report`.

``from trident.diagnostics import progress`` (also ``trident.progress``). See
``docs/how-to/progress.md``.
"""

from .performance import performance_report as performance_report
from .progress import Progress as Progress
from .progress import progress as progress
from .task_stream import get_task_stream as get_task_stream
from .tracker import Counts as Counts
from .tracker import ProgressUpdate as ProgressUpdate
from .widget import ProgressWidget as ProgressWidget

__all__ = [
    "Counts",
    "Progress",
    "ProgressUpdate",
    "ProgressWidget",
    "get_task_stream",
    "performance_report",
    "progress",
]
