"""Preload modules: user code a scheduler or worker process runs when it starts.

As dask's ``--preload``: each entry is a module name (``mypackage.setup``), imported, or
the path of a ``.py`` file, run as a module of its own. A module that defines
``dask_setup(server)`` or ``trident_setup(server)`` has it called with the server (the
`Worker` or the `Scheduler` actor) once it is listening; ``dask_teardown(server)`` /
``trident_teardown(server)`` are called when it stops. Either may be ``async def``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

SETUP_NAMES = ("trident_setup", "dask_setup")
TEARDOWN_NAMES = ("trident_teardown", "dask_teardown")


class PreloadError(RuntimeError):
    """A preload module could not be found or imported."""


def import_preload(entry: str) -> ModuleType:
    """Import `entry`: a ``.py`` file's path or a module name.

    Raises `PreloadError` if there is no such file or module, or importing it failed.
    """
    if entry.endswith(".py"):
        path = Path(entry).expanduser().resolve()
        if not path.is_file():
            raise PreloadError(f"preload file {entry} does not exist")
        name = f"trident_preload_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise PreloadError(f"cannot load preload file {entry}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise PreloadError(f"preload file {entry} failed: {exc!r}") from exc
        return module
    try:
        return importlib.import_module(entry)
    except ImportError as exc:
        raise PreloadError(f"cannot import preload module {entry!r}: {exc}") from exc


def _hook(module: ModuleType, names: Sequence[str]) -> Any:
    for name in names:
        hook = getattr(module, name, None)
        if callable(hook):
            return hook
    return None


async def _call(hook: Any, server: object) -> None:
    result = hook(server)
    if inspect.isawaitable(result):
        await result


class Preloads:
    """The preload modules of one server, imported on construction.

    Raises `PreloadError` from the constructor when an entry cannot be imported.
    """

    def __init__(self, entries: Sequence[str]):
        self.modules = [import_preload(entry) for entry in entries]
        self._set_up: list[ModuleType] = []

    async def setup(self, server: object) -> None:
        """Call each module's setup hook with `server`, in order (checkpoints when a
        hook is async)."""
        for module in self.modules:
            hook = _hook(module, SETUP_NAMES)
            self._set_up.append(module)
            if hook is not None:
                await _call(hook, server)

    async def teardown(self, server: object) -> None:
        """Call the teardown hook of each module set up, in reverse order."""
        set_up, self._set_up = self._set_up, []
        for module in reversed(set_up):
            hook = _hook(module, TEARDOWN_NAMES)
            if hook is not None:
                await _call(hook, server)
