"""A new loss is one module and one registry entry.

The module here is a toy loss, the squared-distance hinge on every sampled
impostor with weight 1 (no rank weight); the entry is
``LOSSES["squared_hinge"]``.  Nothing else changes: the estimator accepts
the name, the per-pair solver trains with it, and fold-in places new users
with the same step.
"""

import subprocess
import sys
from typing import NamedTuple

import numpy as np
import pytest
from _helpers import SMALL, held_out_dense_blocks, recall_of_recommendations
from numba import njit

from sklearn_cml import CMLRecommender
from sklearn_cml._losses import LOSSES, Loss
from sklearn_cml._sampling import draw
from sklearn_cml._steps import adagrad_step, contains_sorted, squared_distance


class SquaredHingeParameters(NamedTuple):
    n_negatives: int
    margin: np.float32


class SquaredHingeScratch(NamedTuple):
    gradients: np.ndarray  # float32 (n_slots, 3, n_components): user, positive, negative


@njit
def squared_hinge_step(parameters, sampler, user, positives, weights, position, interactions,
                       embeddings, optimizer, scratch, slot, rng_state, update_items):
    """``w sum_k [margin + d(u, p) - d(u, k)]_+`` over the sampled negatives
    ``k``, with ``w`` the pair's weight."""
    indptr, indices = interactions.indptr, interactions.indices
    items, item, weight = embeddings.items, positives[0], weights[0]
    user_vector, positive = embeddings.users[user], items[item]
    gradients = scratch.gradients[slot]
    threshold = squared_distance(user_vector, positive) + parameters.margin
    loss = np.float32(0.0)
    for _ in range(parameters.n_negatives):
        rng_state, negative = draw(sampler, rng_state)
        distance = squared_distance(user_vector, items[negative])
        if distance >= threshold or contains_sorted(indices, indptr[user], indptr[user + 1],
                                                    negative):
            continue
        loss += weight * (threshold - distance)
        for d in range(gradients.shape[1]):
            gradients[0, d] = 2.0 * weight * (items[negative, d] - positive[d])
            gradients[1, d] = 2.0 * weight * (positive[d] - user_vector[d])
            gradients[2, d] = 2.0 * weight * (user_vector[d] - items[negative, d])
        rate, radius = optimizer.learning_rate, optimizer.max_norm
        adagrad_step(user_vector, embeddings.user_grad_sq, user, gradients[0], rate, radius)
        if update_items:
            adagrad_step(positive, embeddings.item_grad_sq, item, gradients[1], rate, radius)
            adagrad_step(items[negative], embeddings.item_grad_sq, negative, gradients[2], rate,
                         radius)
    return rng_state, loss


SQUARED_HINGE = Loss(
    name="squared_hinge",
    group_size=1,
    parameters_type=SquaredHingeParameters,
    parameters=lambda params, reference_count, fold_in: SquaredHingeParameters(
        params.n_negatives, np.float32(params.margin)),
    scratch=lambda n_slots, n_components, n_items, params: SquaredHingeScratch(
        np.empty((n_slots, 3, n_components), dtype=np.float32)),
    pair_step=squared_hinge_step,
)


@pytest.fixture
def with_toy_loss(monkeypatch):
    monkeypatch.setitem(LOSSES, "squared_hinge", SQUARED_HINGE)


def test_a_registered_loss_trains_and_places_new_users(with_toy_loss, dense_blocks):
    train, test, _, item_block = dense_blocks
    model = CMLRecommender(**{**SMALL, "n_epochs": 20}, loss="squared_hinge", top_k=10,
                           solver="hogwild", random_state=0).fit(train)
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    _, neighbors = model.kneighbors_items(n_neighbors=5)
    assert np.mean(item_block[neighbors] == item_block[:, None]) > 0.98
    assert recall_of_recommendations(model, train, test, n_items=10) > 0.97
    assert model.score(train) > 0.9  # fold-in runs the same step on new rows


def test_a_solver_without_a_step_for_the_loss_is_refused(with_toy_loss, dense_blocks):
    train = dense_blocks[0]
    with pytest.raises(ValueError, match="solver='block' cannot train loss='squared_hinge'"):
        CMLRecommender(**SMALL, loss="squared_hinge", solver="block").fit(train)
    model = CMLRecommender(**SMALL, loss="squared_hinge", solver="hogwild",
                           random_state=0).fit(train)
    before = model.item_embeddings_.copy()
    model.set_params(solver="block")
    for method in (model.partial_fit, model.transform):
        with pytest.raises(ValueError, match="Use solver='hogwild'"):
            method(train)
    np.testing.assert_array_equal(model.item_embeddings_, before)


def test_an_unregistered_loss_is_refused(dense_blocks):
    with pytest.raises(ValueError, match="The 'loss' parameter"):
        CMLRecommender(loss="squared_hinge").fit(dense_blocks[0])


@pytest.fixture(scope="module")
def dense_blocks():
    return held_out_dense_blocks()


def test_an_outside_loss_leaves_the_kernel_cache_usable(with_toy_loss, dense_blocks):
    """Its types must not reach the on-disk cache index, which every process
    loads: a new process, where this module is unknown, still trains."""
    CMLRecommender(**{**SMALL, "n_epochs": 1}, loss="squared_hinge",
                   solver="hogwild").fit(dense_blocks[0])
    script = ("import numpy as np; from sklearn_cml import CMLRecommender; "
              "X = (np.random.default_rng(0).random((40, 20)) < 0.3).astype(float); "
              "CMLRecommender(n_components=4, n_epochs=1).fit(X).transform(X)")
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
