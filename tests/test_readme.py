"""The README's Quickstart commands and CI stay in step."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quickstart_has_a_demo_and_a_test_command():
    demo, tests = quickstart_commands()
    assert demo.endswith("python -m sklearn_cml")
    assert tests.split(" && ")[-1].startswith(".venv/bin/python -m pytest")


def test_ci_runs_the_readme_test_command_then_the_slow_group():
    """CI runs the README's command verbatim, then, in the environment it
    made, the slow group that the command leaves out: every test runs."""
    _, tests = quickstart_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines
    slow = tests.rsplit(" && ", 1)[-1] + " -m slow"
    assert slow in ci_lines
    assert ci_lines.index(slow) > ci_lines.index(tests)


def test_the_readme_says_how_to_run_the_slow_group():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    _, tests = quickstart_commands()
    assert f"`{tests.rsplit(' && ', 1)[-1]} -m slow`" in section


def test_the_slow_marker_is_registered_and_markers_are_strict():
    # A misspelt marker is an error, not a test that silently joins the default run.
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^addopts = ".*--strict-markers', text, re.M)
    assert re.search(r'^    "slow: ', text, re.M)


def _pytest(*args):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_run_without_m_leaves_out_the_slow_group_and_says_so():
    # tests/test_real_data.py is all in the slow group; nothing of it runs.
    run = _pytest("tests/test_real_data.py",
                  "tests/test_readme.py::test_quickstart_has_a_demo_and_a_test_command")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"\b1 passed, 3 deselected\b", run.stdout), run.stdout[-3000:]
    assert ("3 slow tests deselected (long end-to-end runs); run them with "
            "`python -m pytest -m slow`") in run.stdout


def test_with_workers_the_report_still_says_how_many_were_left_out():
    pytest.importorskip("xdist", reason="pytest-xdist is in the test extra")
    run = _pytest("-n", "2", "--dist", "loadfile", "tests/test_real_data.py",
                  "tests/test_readme.py::test_quickstart_has_a_demo_and_a_test_command")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "3 slow tests deselected (long end-to-end runs)" in run.stdout, run.stdout[-3000:]


def test_m_slow_selects_the_slow_group_only():
    run = _pytest("--collect-only", "-q", "-m", "slow", "tests/test_real_data.py",
                  "tests/test_readme.py")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    collected = [line for line in run.stdout.splitlines() if "::" in line]
    assert len(collected) == 3 and all("test_real_data.py" in line for line in collected)
    assert "slow tests deselected" not in run.stdout


def test_ci_builds_the_docs_with_the_readme_docs_command():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    (docs,) = re.findall(r"```bash\n(.+?)\n```", section)
    assert "sphinx-build -W" in docs
    assert docs in (ROOT / ".ci" / "run").read_text().splitlines()
