"""Watching computations: `progress` and what it is made of.

``from trident.diagnostics import progress`` (also ``trident.progress``). See
``docs/how-to/progress.md``.
"""

from .progress import Progress as Progress
from .progress import progress as progress
from .tracker import Counts as Counts
from .tracker import ProgressUpdate as ProgressUpdate
from .widget import ProgressWidget as ProgressWidget

__all__ = ["Counts", "Progress", "ProgressUpdate", "ProgressWidget", "progress"]
