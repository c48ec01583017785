"""The per-pair solver's step with the WARP hinge against a plain-numpy reference."""

import math

import numpy as np
import pytest
from _helpers import config_of
from _numerics import reference_adagrad, reference_sample

from sklearn_cml._interactions import Interactions
from sklearn_cml._losses import LOSSES
from sklearn_cml._losses.hinge import HingeParameters
from sklearn_cml._rng import seed_states
from sklearn_cml._sampling import alias_sampler, sampling_tables, uniform_sampler
from sklearn_cml._solvers._base import compiled_for
from sklearn_cml._solvers.hogwild import CALLS, WorkUnits, epoch_chunk, make_scratch
from sklearn_cml._steps import Embeddings, Optimizer


def reference_warp_pair(user, items, grad_sq_user, grad_sq_items, positive, seen,
                        states, n_negatives, margin, learning_rate, max_norm, tables=None,
                        pair_weight=1.0):
    """Plain-numpy WARP step (the paper's), drawing the same items as the kernel.

    Uniform draws without ``tables``; otherwise alias draws, each impostor
    counting its inverse probability in the rank estimate.  The pair's
    loss and gradients are multiplied by ``pair_weight`` (0: no step).
    """
    threshold = np.sum((user - items[positive]) ** 2) + margin
    impostors = []
    for _ in range(n_negatives):
        states[0], candidate = reference_sample(states[0], items.shape[0], tables)
        distance = np.sum((user - items[candidate]) ** 2)
        if distance < threshold and candidate not in seen:  # positives are skipped
            impostors.append((distance, candidate))
    if not impostors or pair_weight == 0.0:
        return 0.0
    distance, negative = min(impostors)
    counted = (len(impostors) if tables is None
               else sum(float(tables[2][k]) for _, k in impostors))
    # The rank estimate is at most the catalogue's size.
    rank = math.floor(min(items.shape[0] * counted / n_negatives, items.shape[0]))
    weight = pair_weight * math.log(rank + 1)
    gradients = {
        "user": 2 * weight * (items[negative] - items[positive]),
        positive: 2 * weight * (items[positive] - user),
        negative: 2 * weight * (user - items[negative]),
    }
    for key, gradient in gradients.items():
        if key == "user":
            vector, grad_sq, row = user, grad_sq_user, 0
        else:
            vector, grad_sq, row = items[key], grad_sq_items, key
        reference_adagrad(vector, grad_sq, row, gradient, learning_rate, max_norm)
    return weight * (threshold - distance)


@pytest.mark.parametrize("exponent", [0.0, 0.8])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_slots, mark_limit, weighted", [(1, 100, False), (3, 100, False),
                                                           (1, 0, False), (1, 100, True)])
def test_hinge_epoch_matches_numpy_reference(seed, n_slots, mark_limit, exponent, weighted):
    """Both ways of telling the user's items among the draws (marks, binary
    search) give the paper's step, with uniform and with popularity-weighted
    negatives, and with pair weights (one of them 0) multiplying each
    pair's step."""
    rng = np.random.default_rng(seed)
    n_items, n_components = 30, 5
    items = (rng.normal(size=(n_items, n_components)) * 0.4).astype(np.float32)
    users = (rng.normal(size=(1, n_components)) * 0.4).astype(np.float32)
    seen = np.sort(rng.choice(n_items, size=6, replace=False)).astype(np.int32)
    indptr = np.array([0, seen.size], dtype=np.int64)
    grad_sq_users = np.full(1, 0.1, dtype=np.float32)
    grad_sq_items = np.full(n_items, 0.1, dtype=np.float32)
    initial_items = items.copy()
    expected = [a.astype(np.float64) for a in (users, items, grad_sq_users, grad_sq_items)]
    states = seed_states(seed, 1)
    reference_states = states.copy()
    losses = np.zeros(1, dtype=np.float32)
    popularity = rng.integers(0, 50, size=n_items)
    tables = sampling_tables(popularity, exponent)

    pair_weights = np.ones(seen.size, dtype=np.float32)
    if weighted:
        pair_weights = rng.uniform(0.2, 3.0, seen.size).astype(np.float32)
        pair_weights[1] = 0.0
    # The per-pair solver's negatives are the pair's own: the hardest impostor.
    parameters = HingeParameters(np.float32(1.5), True, True)
    sampler = uniform_sampler(n_items) if exponent == 0.0 else alias_sampler(*tables)
    embeddings = Embeddings(users, grad_sq_users, items, grad_sq_items)
    optimizer = Optimizer(np.float32(0.1), np.float32(1.0))
    config = config_of(loss="hinge", n_negatives=10, n_components=n_components)
    scratch = make_scratch(config, n_slots, n_items, n_components)._replace(
        mark_limit=mark_limit)
    run_chunk = compiled_for(epoch_chunk, LOSSES["hinge"], CALLS, "hogwild")
    units = WorkUnits(seen, pair_weights, np.empty(0, np.int64), np.empty(0, np.int32), 1)
    for position in range(seen.size):  # one pass, pairs in order
        order = np.array([position], dtype=np.int32)
        scratch.marks.fill(-1)  # as before each chunk
        run_chunk(parameters, sampler, units, order, 0, 1, Interactions(indptr, seen, n_items),
                  embeddings, optimizer, scratch, states, losses, n_slots)
        reference_warp_pair(
            expected[0][0], expected[1], expected[2], expected[3], seen[position],
            set(seen.tolist()), reference_states, 10, 1.5, 0.1, 1.0,
            None if exponent == 0.0 else tables, float(pair_weights[position]),
        )  # fmt: skip
    np.testing.assert_allclose(users, expected[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(items, expected[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad_sq_users, expected[2], rtol=1e-4)
    np.testing.assert_allclose(grad_sq_items, expected[3], rtol=1e-4)
    assert not np.allclose(items, initial_items)  # the pass did update vectors
