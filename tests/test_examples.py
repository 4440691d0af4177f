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


def run_example(name: str, *args: str) -> str:
    """Run ``examples/NAME`` as a user would; return its stdout (it must succeed)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_word_count_counts_sample_files():
    out = run_example("word_count.py")
    assert "25 files, 1025 words, 30 distinct" in out
    assert re.search(r"^\s+the 175$", out, flags=re.M)


def test_word_count_counts_given_files(tmp_path):
    (tmp_path / "a.txt").write_text("spam spam eggs")
    (tmp_path / "b.txt").write_text("Spam ham")
    out = run_example("word_count.py", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"))
    assert "2 files, 5 words, 3 distinct" in out
    assert re.search(r"^\s+spam 3$", out, flags=re.M)


def test_parameter_sweep_reports_progress_and_the_best_fit():
    out = run_example("parameter_sweep.py")
    progress = [line for line in out.splitlines() if line.startswith("[")]
    assert len(progress) == 20
    assert progress[-1].startswith("[20/20]")
    best = re.search(r"-> y = ([\d.]+) x \+ ([\d.]+)", out)
    assert best is not None
    assert abs(float(best.group(1)) - 3.0) < 0.2
    assert abs(float(best.group(2)) - 0.5) < 0.2


def test_crawler_fetches_until_its_deadline():
    out = run_example("crawler.py", "1.5")
    fetched = int(re.search(r"fetched (\d+) pages", out).group(1))
    cancelled = int(re.search(r"cancelled (\d+) fetches", out).group(1))
    # 5,000 pages take far longer than the deadline: some are fetched, the rest cancelled.
    assert 0 < fetched < 5_000, out
    assert cancelled > 0, out


def test_pipeline_streams_records_through_its_stages():
    out = run_example("pipeline.py")
    assert "200/200 records through the pipeline" in out
    assert "handled per stage: [200, 200]" in out
    summary = re.search(r"summary: (.*)", out).group(1)
    assert '"records": 200' in summary
    assert '"labels"' in summary


def test_monte_carlo_estimates_pi():
    out = run_example("monte_carlo.py", "4e6")
    estimate = float(re.search(r"pi ~ ([\d.]+)", out).group(1))
    assert abs(estimate - 3.14159) < 0.01
    assert "in 4 tasks" in out


def readme_python_blocks():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_opens_with_the_two_commands():
    blocks = re.findall(r"```(\w*)\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks[0][0] == "sh"
    assert "examples/quickstart.py" in blocks[0][1]
    assert blocks[1][0] == "sh"
    assert "pytest" in blocks[1][1]


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
