"""Statistical profiling of running tasks (`Client.profile`).

A `Sampler` owned by each worker looks at the stacks of its running sync tasks every
`interval` seconds (only while some run) and counts each stack in a tree per task
prefix. Every `cycle` seconds the trees of the cycle are kept, with the cycle's start
time, for `history` cycles; a query merges the cycles that overlap its time range.

A profile tree has dask's shape, so tools written for dask's profiles read it::

    {"identifier": "root", "count": 12, "description": {...}, "children": {
        "inc;/path/tasks.py;4": {"identifier": ..., "count": 12, "description":
            {"filename": "/path/tasks.py", "name": "inc", "line_number": 6,
             "line": "time.sleep(0.1)"}, "children": {...}}}}

Frames are merged per function (name, file and first line): `count` is how many
samples had that function on the stack by that path, and `line_number` the line it
was at in the first such sample.
"""

from __future__ import annotations

import linecache
import time
from collections import deque
from collections.abc import Iterable, Mapping
from types import CodeType, FrameType
from typing import Any

import trio

from .._keys import key_prefix
from .._profile import Tree, merge, new_tree
from .executor import Job
from .inspection import running_tasks

#: Seconds between samples.
SAMPLE_INTERVAL = 0.01
#: Seconds of samples per kept tree.
CYCLE_SECONDS = 1.0
#: How many cycles are kept (about ten minutes).
HISTORY_CYCLES = 600

_identifiers: dict[CodeType, str] = {}


def identifier(code: CodeType) -> str:
    """``name;filename;first line``: one node per function."""
    found = _identifiers.get(code)
    if found is None:
        if len(_identifiers) > 10_000:
            _identifiers.clear()
        found = _identifiers[code] = f"{code.co_name};{code.co_filename};{code.co_firstlineno}"
    return found


def add_stack(tree: Tree, frames: Iterable[FrameType]) -> None:
    """Count one sample of `frames` (outermost first) in `tree`."""
    tree["count"] += 1
    node = tree
    for frame in frames:
        code = frame.f_code
        ident = identifier(code)
        children = node["children"]
        child = children.get(ident)
        if child is None:
            # f_lineno is None while a frame of another thread is between lines
            line_number = frame.f_lineno or code.co_firstlineno
            description = {
                "filename": code.co_filename,
                "name": code.co_name,
                "line_number": line_number,
                "line": linecache.getline(code.co_filename, line_number).strip(),
            }
            child = children[ident] = new_tree(ident, description)
        child["count"] += 1
        node = child


class Sampler:
    """The profiler of one worker: samples its running sync tasks while it serves.

    `jobs` is the worker's map of run id -> `Job` for the runs in flight.
    """

    def __init__(
        self,
        jobs: Mapping[int, Job],
        *,
        interval: float = SAMPLE_INTERVAL,
        cycle: float = CYCLE_SECONDS,
        history: int = HISTORY_CYCLES,
        clock: Any = time.time,
    ):
        self._jobs = jobs
        self.interval = interval
        self.cycle = cycle
        self._clock = clock
        #: (start time, {prefix: tree}) of past cycles, oldest first
        self.cycles: deque[tuple[float, dict[str, Tree]]] = deque(maxlen=history)
        self._current: dict[str, Tree] = {}
        self._current_start = clock()
        self._wakeup: trio.Event | None = None

    def wake(self) -> None:
        """A run started: sample again if idle (call from the worker's trio thread)."""
        if self._wakeup is not None:
            self._wakeup.set()

    async def run(self) -> None:
        """Sample every `interval` seconds while runs are in flight, until cancelled.

        With none in flight it sleeps until `wake`: an idle worker's loop is not woken
        a hundred times a second for nothing (about 2% of a core per worker).
        """
        while True:
            if not self._jobs:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                self._wakeup = None
            await trio.sleep(self.interval)
            self.sample()

    def sample(self) -> None:
        """Count the stacks of the running sync tasks once; start a new cycle when due."""
        now = self._clock()
        if now - self._current_start >= self.cycle:
            if self._current:
                self.cycles.append((self._current_start, self._current))
            self._current = {}
            self._current_start = now
        if not self._jobs:
            return
        for job, frames in running_tasks(self._jobs):
            prefix = key_prefix(job.key)
            tree = self._current.get(prefix)
            if tree is None:
                tree = self._current[prefix] = new_tree()
            add_stack(tree, frames)

    def profile(
        self, key: str | None = None, start: float | None = None, stop: float | None = None
    ) -> Tree:
        """The merged tree of the tasks with prefix `key` (all when None) sampled in
        cycles that overlap ``[start, stop]`` (wall-clock seconds; open ends when None)."""
        if key is not None and not self._known(key):
            key = key_prefix(key)  # a whole key names its prefix
        chosen: list[Tree] = []
        cycles = [*self.cycles, (self._current_start, self._current)]
        for i, (begin, trees) in enumerate(cycles):
            end = cycles[i + 1][0] if i + 1 < len(cycles) else self._clock()
            if (start is not None and end < start) or (stop is not None and begin > stop):
                continue
            if key is None:
                chosen.extend(trees.values())
            elif key in trees:
                chosen.append(trees[key])
        return merge(*chosen)

    def _known(self, prefix: str) -> bool:
        return prefix in self._current or any(prefix in trees for _, trees in self.cycles)
