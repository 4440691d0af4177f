"""Register joblib's ``'trident'`` backend on ``import trident`` without importing joblib.

joblib takes half a second to import, and worker processes import trident too, so
``import trident`` must not pay for it. `install` registers the backend at once when
joblib is already imported; otherwise, when joblib is installed, it puts a finder on
``sys.meta_path`` that lets joblib import as usual and then imports
`trident.joblib_backend` (which registers it); once joblib is imported the finder
removes itself. Without joblib it does nothing.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

BACKEND_MODULE = "trident.joblib_backend"


def install() -> None:
    """Have the backend registered now (joblib imported) or once joblib is imported."""
    if "joblib" in sys.modules:
        importlib.import_module(BACKEND_MODULE)
    elif not any(isinstance(f, _JoblibFinder) for f in sys.meta_path) and (
        importlib.util.find_spec("joblib") is not None
    ):
        sys.meta_path.insert(0, _JoblibFinder())


class _JoblibFinder(importlib.abc.MetaPathFinder):
    """Finds ``joblib`` with the finders after it and wraps its loader (`_Loader`)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "joblib":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if isinstance(spec.loader, importlib.abc.Loader):
                    spec.loader = _Loader(spec.loader, self)
                return spec
        return None


class _Loader(importlib.abc.Loader):
    """joblib's own loader, then the backend's registration."""

    def __init__(self, loader: importlib.abc.Loader, finder: _JoblibFinder):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader  # joblib keeps its own loader afterwards
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        if self._finder in sys.meta_path:  # joblib is imported: nothing left to wait for
            sys.meta_path.remove(self._finder)
        importlib.import_module(BACKEND_MODULE)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self._loader, name)
