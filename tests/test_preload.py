"""Preload modules: imported by name or run from a file, their setup hooks called."""

from __future__ import annotations

import sys

import pytest

from trident._preload import PreloadError, Preloads


class Server:
    def __init__(self):
        self.calls = []


async def test_a_file_is_run_and_its_hooks_called_in_order(tmp_path):
    path = tmp_path / "hooks.py"
    path.write_text(
        "async def trident_setup(server):\n    server.calls.append('setup')\n"
        "def dask_teardown(server):\n    server.calls.append('teardown')\n"
    )
    preloads = Preloads([str(path)])
    server = Server()
    await preloads.setup(server)
    await preloads.teardown(server)
    await preloads.teardown(server)  # only once
    assert server.calls == ["setup", "teardown"]


async def test_a_module_is_imported_by_name(tmp_path, monkeypatch):
    (tmp_path / "preload_by_name.py").write_text(
        "def dask_setup(server):\n    server.calls.append(__name__)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    preloads = Preloads(["preload_by_name"])
    server = Server()
    await preloads.setup(server)
    assert server.calls == ["preload_by_name"]
    del sys.modules["preload_by_name"]


def test_missing_or_broken_preloads_say_which(tmp_path):
    with pytest.raises(PreloadError, match="does not exist"):
        Preloads([str(tmp_path / "nothing.py")])
    with pytest.raises(PreloadError, match="no_such_module_here"):
        Preloads(["no_such_module_here"])
    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('bad setup')\n")
    with pytest.raises(PreloadError, match="bad setup"):
        Preloads([str(broken)])
