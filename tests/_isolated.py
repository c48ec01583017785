"""Run snippets of code in a child Python process.

A snippet that corrupts memory kills the process that runs it.  Run in a
child, it fails the one test that ran it instead of killing the test run,
and the cases after it still run (in a new child).
"""

import json
import subprocess
import sys

_MARK = "@@isolated "

_RUNNER = r"""
import json, pickle, sys

def same(a, b):
    import numpy as np
    import scipy.sparse as sp
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True))
    if sp.issparse(a) or sp.issparse(b):
        return sp.issparse(a) and sp.issparse(b) and a.shape == b.shape and (a != b).nnz == 0
    if hasattr(a, "__dict__") and type(a) is type(b):  # dataclasses, fitted estimators
        return same(vars(a), vars(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b

request = json.loads(sys.stdin.read())
shared = {}
exec(request["prelude"], shared)
model_bytes = pickle.dumps(shared["model"]) if "model" in shared else None
for name, code in request["cases"].items():
    print(MARK + json.dumps({"case": name, "started": True}), flush=True)
    namespace = dict(shared)
    if model_bytes is not None:
        namespace["model"] = pickle.loads(model_bytes)
    record = {"case": name, "outcome": "returned"}
    try:
        exec(code, namespace)
    except Exception as error:
        record = {"case": name, "outcome": "raised", "type": type(error).__name__,
                  "types": [cls.__name__ for cls in type(error).__mro__],
                  "message": str(error)}
    if model_bytes is not None:
        before = pickle.loads(model_bytes)
        after = namespace["model"]
        # Fitted state only: a snippet may change parameters (set_params).
        fitted = [name for name in vars(before) if name not in before.get_params()]
        record["model_unchanged"] = sorted(vars(after)) == sorted(vars(before)) and all(
            same(vars(after)[name], vars(before)[name]) for name in fitted)
    print(MARK + json.dumps(record), flush=True)
""".replace("MARK", repr(_MARK))


def run_isolated(cases, prelude="", timeout=900):
    """Run each code snippet of ``cases`` (name -> code) in a child process.

    ``prelude`` runs once per child, and the snippets see what it defines;
    a ``model`` it defines is given to each snippet as a fresh copy, and the
    outcome says whether the snippet left its fitted state unchanged.  Returns name
    -> outcome: ``{"outcome": "returned"}``, ``{"outcome": "raised", "type",
    "types" (the exception's classes), "message"}`` or, when the child died
    during the snippet, ``{"outcome": "crashed", "returncode", "stderr"}``.
    """
    outcomes = {}
    remaining = dict(cases)
    while remaining:
        request = json.dumps({"prelude": prelude, "cases": remaining})
        child = subprocess.run([sys.executable, "-c", _RUNNER], input=request,
                               capture_output=True, text=True, timeout=timeout)
        running = None
        for line in child.stdout.splitlines():
            if not line.startswith(_MARK):
                continue
            record = json.loads(line[len(_MARK):])
            if record.get("started"):
                running = record["case"]
            else:
                outcomes[record.pop("case")] = record
                running = None
        if running is None:
            if child.returncode != 0 and not outcomes:
                raise RuntimeError(f"The child process failed before any case:\n{child.stderr}")
            break
        outcomes[running] = {"outcome": "crashed", "returncode": child.returncode,
                             "stderr": child.stderr[-3000:]}
        remaining = {name: code for name, code in remaining.items() if name not in outcomes}
    return outcomes


def describe(outcome):
    """One line on an outcome, for assertion messages."""
    if outcome["outcome"] == "crashed":
        return f"the process crashed (exit code {outcome['returncode']}):\n{outcome['stderr']}"
    if outcome["outcome"] == "raised":
        return f"raised {outcome['type']}: {outcome['message']}"
    return "returned normally"



def run_under_layer(script, layer, timeout=900):
    """Run ``script`` in a child with ``NUMBA_THREADING_LAYER=layer`` (None:
    unset, the package chooses) and 2 Numba threads; fails the test if the
    child dies, skips it, saying why, if the script printed ``UNAVAILABLE``
    (the layer does not load here).  Returns the finished child."""
    import os

    import pytest

    environment = dict(os.environ, NUMBA_NUM_THREADS="2")
    environment.pop("NUMBA_THREADING_LAYER", None)
    if layer is not None:
        environment["NUMBA_THREADING_LAYER"] = layer
    child = subprocess.run([sys.executable, "-c", script], env=environment,
                           capture_output=True, text=True, timeout=timeout)
    assert child.returncode == 0, (
        f"under the {layer} layer the process exited with code {child.returncode}:\n"
        f"{child.stdout[-3000:]}\n{child.stderr[-3000:]}")
    if child.stdout.startswith("UNAVAILABLE"):
        reason = f"Numba's {layer} threading layer is not available here: {child.stdout[12:]}"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return child
