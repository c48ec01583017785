"""The kernels only read arrays the package owns, never the caller's.

The caller still holds the arrays it passed: another thread may change
``X.indices`` after validation.  Validation therefore copies the raw
arrays first and checks the copies, which training, fold-in and the
queries then read.  A caller's array changed during ``fit`` runs in a
child process (``_isolated``): before the copy, the kernels read the
changed indices and crashed.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from _isolated import describe, run_isolated

from sklearn_cml import CMLRecommender, _engine
from sklearn_cml._sparse_checks import check_sparse_structure
from sklearn_cml.datasets import make_interactions

PARAMS = dict(n_components=8, n_negatives=3, n_epochs=2, fold_in_epochs=2, random_state=0)


def _int64_csr(X):
    """X with int64 index arrays, which validation could pass on uncopied."""
    X = sp.csr_matrix(X)
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int64)
    return X


@pytest.mark.parametrize("solver", ["block", "hogwild"])
def test_training_reads_copies_of_the_callers_arrays(monkeypatch, solver):
    X = _int64_csr(make_interactions(n_users=60, n_items=40, random_state=0))
    features = _int64_csr(np.eye(40, 6)[:, ::-1] + np.eye(40, 6))
    weights = X.copy()
    seen = {}
    real_fit, real_fold_in = _engine.fit, _engine.fold_in

    def spy_fit(data, config, features=None, weights=None):
        seen["fit"], seen["features"] = data, features
        return real_fit(data, config, features, weights)

    def spy_fold_in(model, data, config, weights=None):
        seen["fold_in"] = data
        return real_fold_in(model, data, config, weights)

    monkeypatch.setattr(_engine, "fit", spy_fit)
    monkeypatch.setattr(_engine, "fold_in", spy_fold_in)
    model = CMLRecommender(**PARAMS, solver=solver, cold_start="network", hidden_size=4)
    model.fit(X, item_features=features, sample_weight=weights)
    model.transform(X)
    for data in (seen["fit"], seen["fold_in"]):
        assert not np.shares_memory(data.indices, X.indices)
        assert not np.shares_memory(data.indptr, X.indptr)
    assert not np.shares_memory(seen["features"].indices, features.indices)
    assert not np.shares_memory(seen["features"].indptr, features.indptr)


@pytest.mark.parametrize("fmt", ["csr", "csc", "bsr", "coo", "lil", "dia", "dok"])
def test_checked_matrix_owns_its_arrays(fmt):
    X = sp.random(7, 5, density=0.4, format=fmt, random_state=0)
    checked = check_sparse_structure(X, "X")
    assert checked is not X and checked.format == fmt
    assert (checked != X).nnz == 0
    for name in ("data", "indices", "indptr", "offsets", "row", "col"):
        if hasattr(X, name) and isinstance(getattr(X, name), np.ndarray):
            assert not np.shares_memory(getattr(checked, name), getattr(X, name)), name


PRELUDE = """
import threading
import numpy as np
import scipy.sparse as sp
from sklearn_cml import CMLRecommender, _engine

PARAMS = dict(n_components=8, n_negatives=3, n_epochs=3, fold_in_epochs=2, random_state=0)
X = sp.random(400, 300, density=0.05, format="csr", random_state=0)
X.data[:] = 1.0
X.indices = X.indices.astype(np.int32)
X.indptr = X.indptr.astype(np.int64)
original = X.copy()

def corrupted_after_validation(name):
    '''Make ``_engine.<name>`` first overwrite the caller's X.indices, as
    another thread could between validation and training.'''
    real = getattr(_engine, name)
    def corrupting(*args, **kwargs):
        X.indices[:] = 2**31 - 1
        return real(*args, **kwargs)
    return real, corrupting

def with_corruption(name, action):
    real, corrupting = corrupted_after_validation(name)
    setattr(_engine, name, corrupting)
    try:
        return action()
    finally:
        setattr(_engine, name, real)
        X.indices[:] = original.indices

def racing(action, n_runs=3):
    '''Run ``action`` while a thread writes 2**31 - 1 into X.indices.'''
    stop = threading.Event()
    def mutate():
        k = 0
        while not stop.is_set():
            X.indices[k % X.indices.size] = 2**31 - 1
            k += 997
    thread = threading.Thread(target=mutate)
    thread.start()
    try:
        for _ in range(n_runs):
            try:
                action()
            except ValueError:
                pass  # the check saw the change first: a clean error
    finally:
        stop.set()
        thread.join()
        X.indices[:] = original.indices
"""

CASES = {}
for solver in ("block", "hogwild"):
    fit = f"CMLRecommender(**PARAMS, solver={solver!r}).fit(X)"
    CASES[f"fit {solver}"] = (
        f"model = with_corruption('fit', lambda: {fit})\n"
        "assert (model.user_items_ != original).nnz == 0")
    CASES[f"partial_fit {solver}"] = (
        f"model = with_corruption('train', lambda: CMLRecommender(**PARAMS, "
        f"solver={solver!r}).partial_fit(X))\n"
        "assert (model.user_items_ != original).nnz == 0")
    CASES[f"transform {solver}"] = (
        f"model = {fit}\n"
        "expected = model.transform(original)\n"
        "assert np.array_equal(with_corruption('fold_in', lambda: model.transform(X)), expected)")
    CASES[f"racing fit {solver}"] = f"racing(lambda: {fit})"


@pytest.fixture(scope="module")
def outcomes():
    return run_isolated(CASES, prelude=PRELUDE)


@pytest.mark.parametrize("name", list(CASES))
def test_changing_the_callers_array_during_a_call_cannot_crash_it(outcomes, name):
    outcome = outcomes[name]
    assert outcome["outcome"] == "returned", describe(outcome)
