"""The demo (``python -m sklearn_cml``): reproducible with ``--seed``."""

import os
import subprocess
import sys

from sklearn_cml.__main__ import main

SMALL = ["--n-users", "300", "--n-items", "100", "--n-epochs", "3"]


def run_demo(*args):
    """The demo's standard output, run as the README says, in a new process."""
    result = subprocess.run([sys.executable, "-m", "sklearn_cml", *args], capture_output=True,
                            text=True, env=dict(os.environ), check=True)
    return result.stdout


def test_the_same_seed_prints_the_same_output():
    first = run_demo("--seed", "0")
    assert "popularity baseline" in first and "Similar items" in first
    assert run_demo("--seed", "0") == first


def test_another_seed_prints_other_results(capsys):
    outputs = []
    for seed in ("0", "1"):
        main([*SMALL, "--seed", seed])
        outputs.append(capsys.readouterr().out)
    assert outputs[0] != outputs[1]
    assert "(seed 1)" in outputs[1]
    for output in outputs:
        metric_lines = [line.split()[0] for line in output.splitlines() if "recall@20" in line]
        assert metric_lines == ["CML", "popularity"]


def test_verbose_shows_progress(capsys):
    main([*SMALL, "--seed", "0", "--verbose"])
    assert "[CMLRecommender] epoch 3/3" in capsys.readouterr().out
