"""Fold-in, one loop for both solvers: the training step on new users, items frozen."""

import numpy as np
import pytest
from _helpers import config_of

from sklearn_cml._interactions import to_interactions
from sklearn_cml._rng import row_hash_states
from sklearn_cml._sampling import uniform_sampler
from sklearn_cml._solvers import fold_in
from sklearn_cml._steps import Embeddings
from sklearn_cml.datasets import make_interactions


def placed(solver, loss, n_epochs, rows=slice(None)):
    """``(vectors, AdaGrad sums, items before, items after)`` of fold-in on
    a small matrix's ``rows``, from the same start for every call."""
    X = make_interactions(n_users=30, n_items=80, random_state=0).tolil()
    X[3] = 0  # a row without items
    data = to_interactions(X.tocsr()[rows])
    # A margin past every distance in the ball: every draw is an impostor.
    config = config_of(data, solver=solver, loss=loss, n_components=4, n_negatives=3,
                       pool_size=16, margin=4.5, fold_in_epochs=n_epochs)
    rng = np.random.default_rng(0)
    items = (rng.normal(size=(80, 4)) * 0.3).astype(np.float32)
    users = (rng.normal(size=(data.n_users, 4)) * 0.3).astype(np.float32)
    grad_sq = np.full(data.n_users, 0.1, np.float32)
    before = items.copy()
    fold_in(config, data, np.ones(data.n_interactions, np.float32),
            Embeddings(users, grad_sq, items, np.empty(0, np.float32)), uniform_sampler(80),
            5.0, row_hash_states(data.indptr, data.indices, 7))
    counts = np.diff(data.indptr)
    # Rows with items and with items left to be negatives take steps.
    return users, grad_sq, before, items, (counts > 0) & (counts < data.n_items)


@pytest.mark.parametrize("loss", ["hinge", "softmax"])
@pytest.mark.parametrize("solver", ["hogwild", "block"])
def test_fold_in_steps_accumulate_and_leave_the_items(solver, loss):
    users, grad_sq, before, items, stepped = placed(solver, loss, 3)
    assert stepped.sum() > 10 and not stepped[3]
    assert (grad_sq[stepped] > 0.1).all()  # the AdaGrad sums grow
    assert (grad_sq[~stepped] == np.float32(0.1)).all()  # nothing to push: no step
    np.testing.assert_array_equal(items, before)
    assert np.all(np.linalg.norm(users, axis=1) <= 1.0 + 1e-6)


@pytest.mark.parametrize("loss", ["hinge", "softmax"])
@pytest.mark.parametrize("solver", ["hogwild", "block"])
def test_a_row_is_placed_whatever_the_other_rows(solver, loss):
    """Each row has its own random state and scratch: the same rows give the
    same vectors alone or in a batch."""
    users = placed(solver, loss, 4)[0]
    np.testing.assert_array_equal(placed(solver, loss, 4, rows=slice(0, 10))[0], users[:10])
