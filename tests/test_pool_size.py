"""pool_size="auto": negatives per block sized to the users' pairs."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_cml import CMLRecommender
from sklearn_cml._config import POOL_BOUNDS, POOL_STEP, auto_pool_size, training_config
from sklearn_cml._interactions import to_interactions
from sklearn_cml.datasets import make_interactions

CONFIG = CMLRecommender().get_params()


def matrix_with(pairs_per_user, n_users=50, n_items=5000, seed=0):
    """A CSR where every user has ``pairs_per_user`` distinct items."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n_users), pairs_per_user)
    cols = np.concatenate([rng.choice(n_items, pairs_per_user, replace=False)
                           for _ in range(n_users)])
    return sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)),
                         shape=(n_users, n_items))


@settings(max_examples=50, deadline=None)
@given(n_interactions=st.integers(0, 10**9), n_users=st.integers(0, 10**7))
def test_within_bounds_and_a_multiple_of_the_step(n_interactions, n_users):
    size = auto_pool_size(n_interactions, n_users)
    assert POOL_BOUNDS[0] <= size <= POOL_BOUNDS[1]
    assert size % POOL_STEP == 0


def test_grows_with_the_pairs_per_user_then_stops():
    sizes = [auto_pool_size(per_user * 1000, 1000) for per_user in (1, 5, 8, 12, 16, 20, 60)]
    assert all(a <= b for a, b in zip(sizes, sizes[1:])), sizes
    assert sizes[0] == POOL_BOUNDS[0] and sizes[-1] == POOL_BOUNDS[1]
    assert POOL_BOUNDS[0] < sizes[3] < POOL_BOUNDS[1]  # proportional in between


@pytest.mark.parametrize("per_user, expected", [(5, 512), (12, 1216), (40, 2048)])
def test_fit_resolves_it_from_the_mean_user(per_user, expected):
    X = matrix_with(per_user)
    model = CMLRecommender(n_components=4, n_epochs=1, random_state=0).fit(X)
    assert model.resolved_params_["pool_size"] == expected
    # Users without pairs do not count in the mean.
    padded = sp.vstack([X, sp.csr_matrix((30, X.shape[1]), dtype=np.float32)]).tocsr()
    assert training_config(CONFIG, to_interactions(padded)).pool_size == expected


def test_an_explicit_value_wins_and_the_hogwild_solver_resolves_none():
    X = matrix_with(5)
    model = CMLRecommender(n_components=4, n_epochs=1, pool_size=100, random_state=0).fit(X)
    assert "pool_size" not in model.resolved_params_
    assert training_config({**CONFIG, "pool_size": 100}, to_interactions(X)).pool_size == 100
    hogwild = CMLRecommender(n_components=4, n_epochs=1, solver="hogwild", random_state=0)
    assert "pool_size" not in hogwild.fit(X).resolved_params_


def test_partial_fit_and_fold_in_keep_the_fitted_pool():
    X = matrix_with(40)
    fitted = {"pool_size": 2048}
    sparse_rows = to_interactions(matrix_with(2, n_users=5))
    # New users with two items each would resolve 512 on their own.
    assert training_config(CONFIG, sparse_rows).pool_size == 512
    assert training_config(CONFIG, sparse_rows, fitted).pool_size == 2048
    model = CMLRecommender(n_components=4, n_epochs=1, random_state=0).fit(X)
    model.partial_fit(matrix_with(2))
    assert model.resolved_params_["pool_size"] == 2048


def test_reproducible():
    X = make_interactions(n_users=300, n_items=200, random_state=0)
    first, second = (CMLRecommender(n_components=8, n_epochs=3, random_state=1).fit(X)
                     for _ in range(2))
    assert first.resolved_params_ == second.resolved_params_
    np.testing.assert_array_equal(first.item_embeddings_, second.item_embeddings_)
