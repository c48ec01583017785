"""A new loss, or a new search, is one module and one registry entry.

The module here is a toy loss, the squared-distance hinge on every sampled
impostor with weight 1 (no rank weight): for each positive ``p`` and each
negative ``n`` of a row, ``w_p [margin + d(u, p) - D(u, n)]_+``.  Its
weights function returns the derivatives of that loss with respect to the
row's distances, and nothing else: the entry is ``LOSSES["squared_hinge"]``.
The estimator accepts the name, both solvers train with it (drawing the
negatives, stepping the vectors), and fold-in places new users with it.

The search is a backend registered from outside, ``SEARCHES["brute"]``, that
finds the nearest items by brute force behind the package's over-asking
top-k: ``search="brute"`` is accepted at once and answers the queries the
rule between searches sends it.
"""

import subprocess
import sys
from typing import NamedTuple

import numpy as np
import pytest
from _helpers import SMALL, held_out_dense_blocks, recall_of_recommendations
from numba import njit

from sklearn_cml import CMLRecommender
from sklearn_cml._ann import approximate_top_k
from sklearn_cml._losses import LOSSES, Loss
from sklearn_cml._query import SEARCHES
from sklearn_cml._topk import exact_top_k
from sklearn_cml.datasets import make_interactions


class SquaredHingeParameters(NamedTuple):
    margin: np.float32


@njit
def squared_hinge_weights(parameters, row, pair_coef, scratch):
    """``sum_b w_b sum_n [margin + d_b - D_n]_+`` and its derivatives: each
    violating negative pulls its pair's distance down (``+w_b``) and its own
    up (``-w_b``).  The user's own items arrive at ``+inf`` and never
    violate."""
    distances = row.distances
    original = scratch.values[:distances.shape[0]]
    original[:] = distances
    distances[:] = 0.0
    loss = np.float32(0.0)
    for b in range(row.positive_distances.shape[0]):
        pair_coef[b] = 0.0
        threshold = row.positive_distances[b] + parameters.margin
        for n in range(distances.shape[0]):
            violation = threshold - original[n]
            if violation > 0.0:
                weight = row.pair_weights[b]
                loss += weight * violation
                pair_coef[b] += weight
                distances[n] -= weight
    return distances.sum(), loss


SQUARED_HINGE = Loss(
    name="squared_hinge",
    parameters_type=SquaredHingeParameters,
    parameters=lambda config, reference_count, shared_negatives: SquaredHingeParameters(
        np.float32(config.margin)),
    weights=squared_hinge_weights,
)


# Each solver compiles its kernels anew for the toy loss (they are not cached
# on disk: see the last test), which takes most of this module's time: the
# default solver's runs are in the default run, the other's in the slow group.
SOLVERS = ["block", pytest.param("hogwild", marks=pytest.mark.slow)]


@pytest.fixture
def with_toy_loss(monkeypatch):
    monkeypatch.setitem(LOSSES, "squared_hinge", SQUARED_HINGE)


@pytest.fixture(scope="module")
def dense_blocks():
    return held_out_dense_blocks()


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_registered_loss_trains_and_places_new_users(with_toy_loss, dense_blocks, solver):
    train, test, _, item_block = dense_blocks
    model = CMLRecommender(**{**SMALL, "n_epochs": 20}, loss="squared_hinge", top_k=10,
                           solver=solver, pool_size=64, random_state=0).fit(train)
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    _, neighbors = model.kneighbors_items(n_neighbors=5)
    assert np.mean(item_block[neighbors] == item_block[:, None]) > 0.98
    assert recall_of_recommendations(model, train, test, n_items=10) > 0.97
    assert model.score(train) > 0.9  # fold-in runs the same step on new rows


def test_an_unregistered_loss_is_refused(dense_blocks):
    with pytest.raises(ValueError, match="The 'loss' parameter"):
        CMLRecommender(loss="squared_hinge").fit(dense_blocks[0])


@pytest.mark.parametrize("solver", SOLVERS)
def test_an_outside_loss_leaves_the_kernel_cache_usable(with_toy_loss, dense_blocks, solver):
    """Its types must not reach the on-disk cache index, which every process
    loads: a new process, where this module is unknown, still trains."""
    model = CMLRecommender(**{**SMALL, "n_epochs": 1}, loss="squared_hinge", solver=solver)
    model.fit(dense_blocks[0]).transform(dense_blocks[0])
    script = ("import numpy as np; from sklearn_cml import CMLRecommender; "
              "X = (np.random.default_rng(0).random((40, 20)) < 0.3).astype(float); "
              "[CMLRecommender(n_components=4, n_epochs=1, solver=solver).fit(X).transform(X) "
              "for solver in ('hogwild', 'block')]")
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]


class BruteForceIndex:
    """A search backend from outside: the nearest items by brute force,
    through the package's over-asking top-k; it counts the queries it gets."""

    approximate = True
    n_queries = 0

    @classmethod
    def check_params(cls, search_params):
        if search_params:
            raise ValueError("search='brute' takes no search_params.")
        return {}

    def __init__(self, item_embeddings, params, seed, n_threads):
        self.item_embeddings = item_embeddings

    def answers_for(self, item_embeddings, params):
        return item_embeddings is self.item_embeddings

    def top_k(self, queries, k, exclude, params):
        def search(rows, width):
            BruteForceIndex.n_queries += rows.size
            distances, found = exact_top_k(queries[rows], self.item_embeddings, width)
            return found, distances

        return approximate_top_k(search, queries, self.item_embeddings, k, exclude)


@pytest.fixture
def with_toy_search(monkeypatch):
    monkeypatch.setitem(SEARCHES, "brute", BruteForceIndex)
    monkeypatch.setattr(BruteForceIndex, "n_queries", 0)


def test_a_registered_search_is_accepted_and_answers(with_toy_search):
    # A catalogue large enough that most queries are within the graph's share.
    X = make_interactions(n_users=60, n_items=3000, mean_interactions=8, random_state=0)
    model = CMLRecommender(n_components=8, n_epochs=2, search="brute", random_state=0).fit(X)
    users = np.arange(60)
    distances, items = model.recommend(users, n_items=5, return_distance=True)
    assert BruteForceIndex.n_queries >= 30
    exact = model.set_params(search="exact")
    expected = exact.recommend(users, n_items=5, return_distance=True)
    np.testing.assert_array_equal(items, expected[1])
    np.testing.assert_allclose(distances, expected[0], rtol=1e-5)
    model.set_params(search="brute")
    np.testing.assert_array_equal(model.kneighbors_items([0, 1], n_neighbors=4)[1],
                                  exact.set_params(search="exact").kneighbors_items(
                                      [0, 1], n_neighbors=4)[1])
    with pytest.raises(ValueError, match="search='brute' takes no search_params"):
        model.set_params(search="brute", search_params={"n_neighbors": 3}).recommend([0])


def test_an_unregistered_search_is_refused():
    X = make_interactions(n_users=20, n_items=30, random_state=0)
    with pytest.raises(ValueError, match="The 'search' parameter"):
        CMLRecommender(search="brute", n_epochs=1).fit(X)
