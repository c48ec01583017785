"""A model used in a forked child, under each threading layer.

Each case runs in a child process of its own (Numba picks its layer once per
process): it fits, forks (multiprocessing's "fork" start method, as gunicorn
and Celery do), and the grandchild predicts, recommends and fits.
"""

import pytest
from _isolated import run_under_layer

SCRIPT = r"""
import multiprocessing
import sys

import numba
import numpy as np
import scipy.sparse as sp

from sklearn_cml import CMLRecommender

rng = np.random.default_rng(0)
X = sp.csr_matrix((rng.random((120, 30)) < 0.2).astype(np.float32))
try:
    model = CMLRecommender(n_components=8, n_epochs=2, random_state=0, n_jobs=2).fit(X)
except ValueError as error:
    if "No threading layer could be loaded" not in str(error):
        raise
    print("UNAVAILABLE", str(error).splitlines()[0])
    sys.exit(0)
expected = model.predict(X[:5])


def use_model(queue):
    try:
        scores = model.predict(X[:5])
        items = model.recommend([0, 1], n_items=3)
        refit = CMLRecommender(n_components=8, n_epochs=2, random_state=0, n_jobs=2).fit(X)
        queue.put(("ok", scores, items, refit.user_embeddings_))
    except Exception as error:
        queue.put(("error", type(error).__name__, str(error)))


context = multiprocessing.get_context("fork")
queue = context.Queue()
child = context.Process(target=use_model, args=(queue,))
child.start()
child.join(300)
print("LAYER", numba.threading_layer())
print("EXIT", child.exitcode)
outcome = queue.get(timeout=5) if child.exitcode == 0 else ("killed",)
if outcome[0] == "ok":
    assert np.array_equal(outcome[1], expected), "the child's predictions differ"
    assert np.array_equal(outcome[3], model.user_embeddings_), "the child's fit differs"
    print("OUTCOME ok")
else:
    print("OUTCOME", *outcome)
"""


def run_layer(layer):
    """Run SCRIPT under ``layer`` (None: the package's choice); its lines by key."""
    child = run_under_layer(SCRIPT, layer)
    lines = dict(line.split(" ", 1) for line in child.stdout.splitlines() if " " in line)
    return lines, child.stderr


@pytest.mark.parametrize("layer", [None, "tbb", "workqueue"])
def test_forked_child_uses_the_model(layer):
    lines, stderr = run_layer(layer)
    if layer is None:  # the package's own choice must be a fork-safe layer
        assert lines["LAYER"] in ("tbb", "workqueue"), lines
    else:
        assert lines["LAYER"] == layer, lines
    assert lines["EXIT"] == "0" and lines["OUTCOME"] == "ok", (lines, stderr[-3000:])


def test_forked_child_of_gnu_openmp_gets_a_clear_error():
    # GNU OpenMP cannot run in a forked child; asked for explicitly, the
    # child's kernels refuse with an error instead of the process being killed.
    lines, stderr = run_layer("omp")
    if lines["OUTCOME"] == "ok":  # another OpenMP runtime, which forks safely
        assert lines["EXIT"] == "0"
        return
    assert lines["EXIT"] == "0", (lines, stderr[-3000:])
    assert lines["OUTCOME"].startswith("error RuntimeError"), lines
    assert "NUMBA_THREADING_LAYER=workqueue" in lines["OUTCOME"], lines
