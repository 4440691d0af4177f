"""The floor plan of the package holds: the import contracts in pyproject.toml
([tool.importlinter], see docs/architecture.md) are kept, and they cover every module.

A new wrong-way import (a worker module importing the client, the scheduler importing
the dashboard, a state machine importing trio), even inside a function or under
TYPE_CHECKING, fails here.
"""

from __future__ import annotations

import logging
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

from importlinter.cli import lint_imports

import trident

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def _contracts() -> list[dict]:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_are_kept(capsys):
    # import-linter configures logging with disable_existing_loggers: give the loggers
    # that existed back, or later tests that read trident's log records see none
    loggers = [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.disabled
    ]
    try:
        result = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    finally:
        for logger in loggers:
            logger.disabled = False
    out = capsys.readouterr().out
    assert result == 0, out
    assert "3 kept, 0 broken" in out


def test_every_module_of_the_package_sits_in_a_layer():
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    named = {
        name.strip().removeprefix("trident.")
        for layer in layers["layers"]
        for name in layer.replace("|", ":").split(":")
    }
    present = {info.name for info in pkgutil.iter_modules(trident.__path__)}
    assert present == named


def test_the_roles_are_declared_independent():
    (roles,) = [c for c in _contracts() if c["type"] == "independence"]
    assert set(roles["modules"]) == {"trident.scheduler", "trident.worker", "trident.client"}


def test_the_state_machines_load_without_an_event_loop():
    code = (
        "import sys, trident.scheduler.state, trident.worker.state; "
        "print(sorted(m for m in ('trio', 'anyio', 'sniffio') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"
