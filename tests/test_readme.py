"""The README's Quickstart commands and CI stay in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quickstart_has_a_demo_and_a_test_command():
    demo, tests = quickstart_commands()
    assert demo.endswith("python -m sklearn_cml")
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command():
    _, tests = quickstart_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines


def test_ci_builds_the_docs_with_the_readme_docs_command():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    (docs,) = re.findall(r"```bash\n(.+?)\n```", section)
    assert "sphinx-build -W" in docs
    assert docs in (ROOT / ".ci" / "run").read_text().splitlines()
