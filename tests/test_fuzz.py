"""Fuzzing every public entry point with raw sparse structures, and
``InteractionEncoder`` with tables of every kind of id, in a child process."""

import os
import subprocess
import sys
from pathlib import Path

# Examples per check: enough to cover the malformed shapes several times over
# within seconds; set SKLEARN_CML_FUZZ_EXAMPLES for a longer, randomised run.
CI_EXAMPLES = 300


def test_no_input_crashes_or_escapes_validation():
    examples = os.environ.get("SKLEARN_CML_FUZZ_EXAMPLES")
    mode = "random" if examples else "derandomize"
    script = Path(__file__).with_name("_fuzz_entry_points.py")
    child = subprocess.run(
        [sys.executable, str(script), examples or str(CI_EXAMPLES), mode],
        capture_output=True, text=True, timeout=600,
    )
    assert child.returncode == 0, (
        f"the fuzzed process exited with code {child.returncode} "
        f"({'killed by a signal: a crash' if child.returncode < 0 else 'a failing example'})"
        f":\n{child.stdout[-5000:]}\n{child.stderr[-5000:]}"
    )
