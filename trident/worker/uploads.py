"""Files uploaded with `Client.upload_file`: stored in a directory of the worker's own
(on ``sys.path`` while the worker runs) and imported, so tasks can import them.

A ``.py`` file is a module; a ``.zip``, ``.egg`` or ``.pyz`` file goes on ``sys.path``
itself and the top-level modules and packages in it are imported. A module imported
already is reloaded, so uploading a new version takes effect.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import pkgutil
import shutil
import sys
import tempfile
from types import ModuleType

logger = logging.getLogger("trident.worker")

ARCHIVE_SUFFIXES = (".zip", ".egg", ".pyz")
SUFFIXES = (".py", *ARCHIVE_SUFFIXES)


class UploadedFiles:
    """The uploaded files of one worker; call `close` when the worker stops."""

    def __init__(self) -> None:
        self.directory: str | None = None
        self._paths: list[str] = []

    def store(self, filename: str, data: bytes, *, load: bool = True) -> list[ModuleType]:
        """Write `data` as `filename` (its base name) and import it (if `load`); return the
        modules imported.

        Raises `ValueError` for an unsupported suffix and whatever importing raises.
        """
        name = os.path.basename(filename)
        stem, suffix = os.path.splitext(name)
        if suffix not in SUFFIXES:
            raise ValueError(f"cannot upload {name!r}: only {', '.join(SUFFIXES)} files")
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix="trident-uploads-")
            self._add_path(self.directory)
        path = os.path.join(self.directory, name)
        with open(path, "wb") as file:
            file.write(data)
        if suffix == ".py":
            with contextlib.suppress(OSError):  # never reuse a cached older version
                os.remove(importlib.util.cache_from_source(path))
            names = [stem]
        else:
            sys.path_importer_cache.pop(path, None)  # the archive may have been replaced
            self._add_path(path)
            names = [module.name for module in pkgutil.iter_modules([path])]
        importlib.invalidate_caches()
        if not load:
            return []
        return [_import_fresh(module_name, path) for module_name in names]

    def _add_path(self, path: str) -> None:
        if path not in sys.path:
            sys.path.insert(0, path)
            self._paths.append(path)

    def try_store(self, filename: str, data: bytes, *, load: bool, who: str) -> str | None:
        """`store`, reporting a failure instead of raising it: None when the file was
        stored (and imported), else the error as text (also logged, naming worker `who`)."""
        try:
            self.store(filename, data, load=load)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("worker %s: uploaded %s failed: %s", who, filename, error)
            return error
        return None

    def close(self) -> None:
        """Take the files off ``sys.path`` and delete them (modules stay imported)."""
        for path in self._paths:
            with contextlib.suppress(ValueError):
                sys.path.remove(path)
        self._paths.clear()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def _import_fresh(name: str, path: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is None:
        return importlib.import_module(name)
    if path.endswith(ARCHIVE_SUFFIXES):
        # A module loaded from an archive before: drop it (and its submodules) so the
        # new archive's version is imported, not a cached one.
        for loaded in [n for n in sys.modules if n == name or n.startswith(name + ".")]:
            del sys.modules[loaded]
        return importlib.import_module(name)
    return importlib.reload(module)
