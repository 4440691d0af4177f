"""The examples and the README's code run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "sum of squares below 1000: 332833500" in result.stdout


def readme_python_blocks():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_opens_with_the_two_commands():
    blocks = re.findall(r"```(\w*)\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks[0][0] == "sh" and "examples/quickstart.py" in blocks[0][1]
    assert blocks[1][0] == "sh" and "pytest" in blocks[1][1]


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_python_blocks_run(index, tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(readme_python_blocks()[index])
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr


def test_parameter_server_example_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "parameter_server.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "learned weights: [1. 2. 3. 4. 5.]" in result.stdout
    assert "WARNING" not in result.stderr


def test_structured_cancellation_example_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "structured_cancellation.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "did not finish within its 0.5 s deadline" in out
    assert "ConnectionError('c.example: connection refused')" in out
    assert "the task goes on: d.example: ok" in out
