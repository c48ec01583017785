"""The losses' weights and the block solver against finite differences and numpy."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from _numerics import central_difference
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from sklearn_cml import CMLRecommender
from sklearn_cml._interactions import Interactions
from sklearn_cml._losses import LossRow, RowScratch
from sklearn_cml._losses.hinge import HingeParameters, hinge_weights
from sklearn_cml._losses.softmax import SoftmaxParameters, softmax_weights
from sklearn_cml._sampling import alias_sampler, sampling_tables, uniform_sampler
from sklearn_cml._solvers import block
from sklearn_cml.datasets import make_interactions

TEMPERATURE, MARGIN = 0.4, 0.8


def softmax_loss(u, pool, positives, log_counts, masked, pair_weights=None):
    """The sampled softmax of a user's pairs against a pool, with numpy;
    each pair's term times its weight (1 without ``pair_weights``)."""
    pool_logits = log_counts - np.sum((u - pool) ** 2, axis=1) / TEMPERATURE
    pool_sum = np.exp(pool_logits[~masked]).sum()
    logits = -np.sum((u - positives) ** 2, axis=1) / TEMPERATURE
    terms = np.log(np.exp(logits) + pool_sum) - logits
    return float(np.sum(terms if pair_weights is None else pair_weights * terms))


def hinge_loss(u, pool, positives, counts, masked, n_items, pair_weights=None, hardest=False):
    """The WARP hinge of each pair, shared by its pool impostors (with
    ``hardest``, on the closest impostor alone), with numpy; each pair's
    term times its weight (1 without ``pair_weights``).

    The rank weight and the impostor count are piecewise constant, so
    finite differences away from their steps see them as constants, as the
    analytic gradient does."""
    distances = np.where(masked, np.inf, np.sum((u - pool) ** 2, axis=1))
    if pair_weights is None:
        pair_weights = np.ones(len(positives))
    total = 0.0
    for p, pair_weight in zip(positives, pair_weights):
        threshold = np.sum((u - p) ** 2) + MARGIN
        impostors = distances < threshold
        if impostors.any():
            weight = math.log(math.floor(min(counts[impostors].sum(), n_items)) + 1)
            violations = threshold - distances[impostors]
            total += pair_weight * weight * (violations.max() if hardest else violations.mean())
    return total


def row_case(seed, n_pool=12, n_components=5, n_pairs=3):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n_components) * 0.4
    pool = rng.normal(size=(n_pool, n_components)) * 0.4
    positives = rng.normal(size=(n_pairs, n_components)) * 0.4
    counts = rng.uniform(0.5, 3.0, size=n_pool)
    masked = np.zeros(n_pool, dtype=bool)
    masked[[1, 7]] = True
    return u, pool, positives, counts, masked


@njit
def _hinge(parameters, row, pair_coef, scratch):
    return hinge_weights(parameters, row, pair_coef, scratch)


@njit
def _softmax(parameters, row, pair_coef, scratch):
    return softmax_weights(parameters, row, pair_coef, scratch)


def row_gradients(loss, u, pool, positives, counts, masked, n_items=40, pair_weights=None):
    """The solvers' gradients of one row, from the loss's weights: ``dL/dD``
    and ``dL/dd_b`` times ``dD/du = 2 (u - v)``."""
    n_pool = pool.shape[0]
    distances = np.sum((u - pool) ** 2, axis=1).astype(np.float32)
    distances[masked] = np.inf
    counts32 = counts.astype(np.float32)
    coefs = np.empty(positives.shape[0], dtype=np.float32)
    if loss == "softmax":
        parameters = SoftmaxParameters(np.float32(1 / TEMPERATURE), np.float32(0.0),
                                       np.float32(10.0))
    else:
        parameters = HingeParameters(np.float32(MARGIN), True, loss == "hinge hardest")
    if pair_weights is None:
        pair_weights = np.ones(positives.shape[0])
    row = LossRow(np.sum((u - positives) ** 2, axis=1).astype(np.float32),
                  pair_weights.astype(np.float32), distances, counts32, np.log(counts32), 10,
                  n_items)
    weigh = _softmax if loss == "softmax" else _hinge
    total, value = weigh(parameters, row, coefs,
                         RowScratch(np.empty(n_pool, np.float32), np.empty(n_pool, np.int32)))
    weights = distances.astype(np.float64)
    grad_u = 2 * ((weights.sum() + coefs.sum()) * u - weights @ pool - coefs @ positives)
    grad_pool = 2 * weights[:, None] * (pool - u)
    grad_positives = 2 * coefs[:, None] * (positives - u)
    return value, total, weights, grad_u, grad_pool, grad_positives


@pytest.mark.parametrize("pair_weights", [None, (0.5, 2.25, 0.0)])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("loss", ["softmax", "hinge", "hinge hardest"])
def test_row_weights_give_the_gradients_of_the_loss(loss, seed, pair_weights):
    """Each loss's weights, turned into gradients as the solvers do, match
    finite differences of the loss: unweighted, and with pair weights (one
    of them 0) on the pairs' terms."""
    u, pool, positives, counts, masked = row_case(seed)
    if pair_weights is not None:
        pair_weights = np.array(pair_weights)
    value, total, weights, grad_u, grad_pool, grad_positives = row_gradients(
        loss, u, pool, positives, counts, masked, pair_weights=pair_weights)
    if loss == "softmax":
        def loss_of(u=u, pool=pool, positives=positives):
            return softmax_loss(u, pool, positives, np.log(counts), masked, pair_weights)
    else:
        def loss_of(u=u, pool=pool, positives=positives):
            return hinge_loss(u, pool, positives, counts, masked, 40, pair_weights,
                              hardest=loss == "hinge hardest")

    assert value == pytest.approx(loss_of(), rel=1e-5)
    assert total == pytest.approx(weights.sum(), rel=1e-5, abs=1e-6)
    tolerance = dict(rtol=2e-3, atol=2e-4)  # float32 rows, the polynomial exp
    np.testing.assert_allclose(grad_u, central_difference(lambda x: loss_of(u=x), u),
                               **tolerance)
    np.testing.assert_allclose(grad_pool, central_difference(lambda x: loss_of(pool=x), pool),
                               **tolerance)
    np.testing.assert_allclose(
        grad_positives, central_difference(lambda x: loss_of(positives=x), positives),
        **tolerance)
    # The user's own items (masked) get no push.
    np.testing.assert_array_equal(weights[masked], 0.0)
    assert np.abs(weights[~masked]).sum() > 0


@pytest.mark.parametrize("loss", ["hinge", "hinge hardest"])
def test_hinge_row_without_impostor_has_no_loss(loss):
    u, pool, positives, counts, masked = row_case(0)
    pool = pool + 10.0  # every pool item far beyond the margin
    value, total, weights, grad_u, _, _ = row_gradients(loss, u, pool, positives, counts,
                                                        masked)
    assert value == 0.0 and total == 0.0
    np.testing.assert_array_equal(weights, 0.0)
    np.testing.assert_array_equal(grad_u, 0.0)


# ------------------------------------------------------------- whole steps


def planted(n_users=60, n_items=30, seed=0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.25).astype(np.float32)
    dense[np.arange(n_users), np.arange(n_users) % n_items] = 1.0
    return sp.csr_matrix(dense)


@pytest.mark.parametrize("exponent", [0.0, 0.7])
def test_draw_pool_counts_and_inverse_map(exponent):
    n_items, n_pool = 25, 300
    popularity = np.arange(n_items)
    sampler = (uniform_sampler(n_items) if exponent == 0.0
               else alias_sampler(*sampling_tables(popularity, exponent)))
    pool = block._empty_pool(n_pool, n_items)
    block.draw_pool(np.uint64(12345), sampler, n_items, pool, 1)
    inverse = np.ones(n_items) if exponent == 0.0 else sampler.inverse_probability
    np.testing.assert_allclose(pool.counts, n_items * inverse[pool.items] / n_pool, rtol=1e-6)
    np.testing.assert_allclose(pool.log_counts, np.log(pool.counts), rtol=1e-5, atol=1e-6)
    # Walking each item's chain of entries finds exactly its entries.
    for item in range(n_items):
        entries = []
        if pool.stamp[item] == 1:
            n = pool.head[item]
            while n >= 0:
                entries.append(n)
                n = pool.next[n]
        assert sorted(entries) == list(np.flatnonzero(pool.items == item))


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_masking_hits_exactly_the_users_items_in_the_pool(seed):
    """Every pool entry that is one of the user's items (duplicates too) is
    masked, nothing else is touched, and a later block's stale map is not
    read (the stamps)."""
    rng = np.random.default_rng(seed)
    n_items, n_pool = 30, 40
    X = sp.random(6, n_items, density=0.3, format="csr", random_state=rng)
    X.sort_indices()
    indptr, indices = X.indptr.astype(np.int64), X.indices.astype(np.int32)
    pool = block._empty_pool(n_pool, n_items)
    for stamp in (1, 2):  # the second block's draws overwrite the first's map
        block.draw_pool(np.uint64(seed + stamp), uniform_sampler(n_items), n_items, pool, stamp)
    for user in range(X.shape[0]):
        row = rng.random(n_pool).astype(np.float32)
        before = row.copy()
        block.mask_user(row, user, indptr, indices, pool, 2)
        own = np.isin(pool.items, indices[indptr[user]:indptr[user + 1]])
        assert np.all(np.isinf(row[own]))
        np.testing.assert_array_equal(row[~own], before[~own])


def test_plan_covers_each_pair_once_and_merges_users():
    X = planted()
    # Each pair's weight encodes the pair, so that the plan must carry it along.
    weights = (X.indices + 1000 * np.repeat(np.arange(X.shape[0]), np.diff(X.indptr)))
    plan = block.make_plan(X.indptr.astype(np.int64), X.indices.astype(np.int32),
                           weights.astype(np.float32), 4, 50, 7)
    covered = []
    for k in range(plan.block_ptr.shape[0] - 1):
        users = plan.slot_user[plan.block_ptr[k]:plan.block_ptr[k + 1]]
        assert len(set(users.tolist())) == users.shape[0]  # one slot per user per block
        for s in range(plan.block_ptr[k], plan.block_ptr[k + 1]):
            pairs = slice(plan.slot_ptr[s], plan.slot_ptr[s + 1])
            covered += [(plan.slot_user[s], item, weight)
                        for item, weight in zip(plan.pair_item[pairs], plan.pair_weight[pairs])]
    expected = [(user, item, float(item + 1000 * user)) for user in range(X.shape[0])
                for item in X.indices[X.indptr[user]:X.indptr[user + 1]]]
    assert sorted(covered) == sorted(expected)


def reference_block(users, items, user_grad_sq, item_grad_sq, plan, pool_items, counts,
                    indptr, indices, loss, learning_rate=0.1, max_norm=1.0):
    """One block of the solver in numpy: every slot's loss gradient from the
    old vectors (finite differences of the numpy loss, over whole item
    vectors, so that an item drawn twice counts once per draw), the users'
    AdaGrad steps, then one step per item with its contributions summed."""
    item_gradients = np.zeros_like(items)
    new_users = users.copy()
    for s in range(plan.block_ptr[1]):
        user = plan.slot_user[s]
        positives = plan.pair_item[plan.slot_ptr[s]:plan.slot_ptr[s + 1]]
        own = set(indices[indptr[user]:indptr[user + 1]].tolist())
        masked = np.array([item in own for item in pool_items])
        if loss == "softmax":
            def loss_of(u, vectors, positives=positives, masked=masked):
                return softmax_loss(u, vectors[pool_items], vectors[positives], np.log(counts),
                                    masked)
        else:
            def loss_of(u, vectors, positives=positives, masked=masked):
                return hinge_loss(u, vectors[pool_items], vectors[positives], counts, masked,
                                  items.shape[0])
        u = users[user]
        grad_u = central_difference(lambda x: loss_of(x, items), u)
        item_gradients += central_difference(lambda x, u=u: loss_of(u, x), items)
        new_users[user] = adagrad(new_users[user], user_grad_sq, user, grad_u, learning_rate,
                                  max_norm)
    new_items = items.copy()
    for item in range(items.shape[0]):
        if np.abs(item_gradients[item]).max() > 1e-9:
            new_items[item] = adagrad(new_items[item], item_grad_sq, item, item_gradients[item],
                                      learning_rate, max_norm)
    return new_users, new_items


def adagrad(vector, grad_sq, row, gradient, learning_rate, max_norm):
    grad_sq[row] += np.mean(gradient ** 2)
    vector = vector - learning_rate * gradient / np.sqrt(grad_sq[row])
    norm = np.linalg.norm(vector)
    return vector * (max_norm / norm) if norm > max_norm else vector


@pytest.mark.parametrize("loss", ["softmax", "hinge"])
def test_one_block_matches_numpy_reference(loss):
    """A single block (every pair of a small matrix) against the reference,
    on the same plan and the same pool."""
    X = planted(n_users=12, n_items=20)
    model = CMLRecommender(n_components=6, solver="block", loss=loss, block_size=10**6,
                           pool_size=16, n_epochs=1, covariance_weight=0.0, average=False,
                           temperature=TEMPERATURE, temperature_exponent=0.0, margin=MARGIN,
                           learning_rate=0.1, random_state=0)
    model.set_params(n_epochs=1)
    model.fit(X)  # builds the state; the test replays its second epoch
    state = model._training
    users, items = state.user_embeddings.copy(), state.item_embeddings.copy()
    user_grad_sq, item_grad_sq = state.user_grad_sq.copy(), state.item_grad_sq.copy()
    rng_state = state.rng_states[0]
    data = Interactions(X.indptr.astype(np.int64), X.indices.astype(np.int32), X.shape[1])
    from sklearn_cml._rng import stream_seed
    from sklearn_cml._sampling import make_sampler

    plan = block.make_plan(data.indptr, data.indices, np.ones(data.n_interactions, np.float32),
                           block.GROUP_SIZE, 10**6,
                           stream_seed(state.seed, "pair order", state.n_iter))
    assert plan.block_ptr.shape[0] == 2  # one block
    pool = block._empty_pool(16, X.shape[1])
    sampler = make_sampler(data.indices, data.n_items, model.negative_sampling_exponent)
    block.draw_pool(rng_state, sampler, data.n_items, pool, 10**9)
    expected_user_sq, expected_item_sq = (user_grad_sq.astype(np.float64),
                                          item_grad_sq.astype(np.float64))
    expected_users, expected_items = reference_block(
        users.astype(np.float64), items.astype(np.float64), expected_user_sq,
        expected_item_sq, plan, pool.items.copy(),
        pool.counts.astype(np.float64), data.indptr, data.indices, loss,
        learning_rate=model.learning_rate)

    model.partial_fit(X)
    np.testing.assert_allclose(model.user_embeddings_, expected_users, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(model.item_embeddings_, expected_items, rtol=2e-3, atol=2e-4)
    # The AdaGrad sums accumulate (the reference adds to them in place).
    np.testing.assert_allclose(model._training.user_grad_sq, expected_user_sq, rtol=2e-3)
    np.testing.assert_allclose(model._training.item_grad_sq, expected_item_sq, rtol=2e-3)
    assert not np.allclose(model.item_embeddings_, items)  # the step did move the items


@pytest.mark.parametrize("loss", ["softmax", "hinge"])
def test_block_solver_is_bitwise_reproducible_across_thread_counts(loss):
    X = planted()
    params = dict(n_components=8, solver="block", loss=loss, block_size=40, pool_size=32,
                  n_epochs=3, random_state=0)
    fits = [CMLRecommender(**params, n_jobs=n_jobs).fit(X) for n_jobs in (1, 1, 2, 2)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.user_embeddings_, fits[0].user_embeddings_)
        np.testing.assert_array_equal(other.item_embeddings_, fits[0].item_embeddings_)
        assert other.loss_curve_ == fits[0].loss_curve_
    different = CMLRecommender(**{**params, "random_state": 1}).fit(X)
    assert not np.array_equal(different.item_embeddings_, fits[0].item_embeddings_)


def test_a_huge_block_size_is_bounded_by_the_data():
    """Buffers are sized by the data, not by the parameter: one block."""
    X = planted(n_users=20, n_items=15)
    model = CMLRecommender(n_components=4, n_epochs=2, block_size=10**15, pool_size=8,
                           random_state=0).fit(X)
    assert np.isfinite(model.item_embeddings_).all()
    assert model.loss_curve_[-1] < model.loss_curve_[0]


@pytest.mark.parametrize("n_epochs", [1, 4])
def test_fold_in_matches_numpy_reference(n_epochs):
    """Fold-in epochs of a new user (one group, one pool each) against the
    softmax's finite-difference gradient and row-wise AdaGrad steps, whose
    sums accumulate over the epochs; the user ends at the mean of its
    vectors at the end of the second half's epochs (with 4: the 3rd and
    4th; with 1: none, the last)."""
    from sklearn_cml._rng import row_hash_states, shuffle_row, stream_seed
    from sklearn_cml._sampling import make_sampler

    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((30, 20)) < 0.3).astype(np.float32))
    model = CMLRecommender(n_components=4, pool_size=8, n_epochs=3, temperature=0.3,
                           temperature_exponent=0.0, covariance_weight=0.0, average=False,
                           fold_in_epochs=n_epochs, random_state=0).fit(X)
    new = sp.csr_matrix(X[:1])
    placed = model.transform(new)[0]

    items = model.item_embeddings_.astype(np.float64)
    indices, indptr = new.indices.astype(np.int32), new.indptr.astype(np.int64)
    start = items[indices].mean(axis=0)  # the centroid of the user's items
    start /= max(1.0, np.linalg.norm(start))
    state = row_hash_states(indptr, indices, stream_seed(model._model.seed, "fold-in rows"))[0]
    sampler = make_sampler(X.indices.astype(np.int32), X.shape[1],
                           model.negative_sampling_exponent)
    pool = block._empty_pool(8, X.shape[1])
    user, grad_sq, ends = start, np.full(1, 0.1), []
    for epoch in range(n_epochs):
        shuffled = np.empty(indices.shape[0], np.int32)
        state = shuffle_row(np.uint64(state), indices, shuffled, 0, indices.shape[0])
        state = block.draw_pool(np.uint64(state), sampler, X.shape[1], pool, epoch + 1)
        masked = np.isin(pool.items, indices)

        def loss_of(u, shuffled=shuffled, masked=masked):
            pool_logits = (np.log(pool.counts.astype(np.float64))
                           - np.sum((u - items[pool.items]) ** 2, axis=1) / model.temperature)
            pool_sum = np.exp(pool_logits[~masked]).sum()
            logits = -np.sum((u - items[shuffled]) ** 2, axis=1) / model.temperature
            return np.sum(np.log(np.exp(logits) + pool_sum) - logits)

        user = adagrad(user, grad_sq, 0, central_difference(loss_of, user), model.learning_rate,
                       model.max_norm)
        ends.append(user)
    expected = np.mean(ends[n_epochs // 2:], axis=0) if n_epochs > 1 else ends[-1]
    np.testing.assert_allclose(placed, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(placed, start)



def test_the_parallel_loops_function_compiles_once():
    # Numba types a prange index as int64, then as uint64 after the parallel
    # transformation; a function called with the raw index compiles for both.
    # A copy of item_side, not cached, compiled for the signature a fit used.
    X = make_interactions(n_users=60, n_items=40, random_state=0)
    CMLRecommender(n_components=4, n_epochs=1, solver="block", random_state=0).fit(X)
    copy = njit(parallel=True, cache=False)(block.item_side.py_func)
    copy.compile(block.item_side.signatures[0])
    index_types = {str(signature[0]) for signature in block._item_chunk.signatures}
    assert index_types == {"int64"}, block._item_chunk.signatures
