"""Fits, fold-ins and metrics from concurrent Python threads, under each threading layer.

Each layer runs in a child process (``NUMBA_THREADING_LAYER`` is read once
per process, and a layer that is not thread-safe aborts the process).
"""

import pytest
from _isolated import run_under_layer

SCRIPT = r"""
import sys
import threading

import numba
import numpy as np
import scipy.sparse as sp

from sklearn_cml import CMLRecommender
from sklearn_cml.metrics import recall_at_k

rng = np.random.default_rng(0)
X = sp.csr_matrix((rng.random((200, 40)) < 0.2).astype(np.float32))


def work(seed, n_jobs, loss):
    model = CMLRecommender(n_components=8, n_negatives=3, n_epochs=3, loss=loss,
                           random_state=seed, n_jobs=n_jobs).fit(X)
    model.partial_fit(X)
    return model.user_embeddings_, model.transform(X[:20]), recall_at_k(X, model, k=5)


# One thread is bitwise reproducible; two threads run Hogwild.
JOBS = [(0, 1, "hinge"), (1, 1, "softmax"), (2, 2, "hinge"), (3, 2, "softmax")]
try:
    alone = [work(*job) for job in JOBS[:2]]
except ValueError as error:
    if "No threading layer could be loaded" not in str(error):
        raise
    print("UNAVAILABLE", str(error).splitlines()[0])
    sys.exit(0)

results, errors = {}, []


def run(index, job):
    try:
        results[index] = work(*job)
    except BaseException as error:
        errors.append(repr(error))


threads = [threading.Thread(target=run, args=(index, job))
           for index, job in enumerate(JOBS * 3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert not errors, errors
for index, job in enumerate(JOBS * 3):
    if job[1] == 1:
        expected = alone[JOBS.index(job)]
        got = results[index]
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
        assert got[2] == expected[2]
    assert np.isfinite(results[index][0]).all()
print("LAYER", numba.threading_layer())
"""


@pytest.mark.parametrize("layer", ["omp", "tbb", "workqueue"])
def test_concurrent_threads_are_safe(layer):
    child = run_under_layer(SCRIPT, layer, timeout=600)
    assert f"LAYER {layer}" in child.stdout
