"""The softmax's weights, the per-pair solver's draws and its softmax epoch, against numpy."""

import functools

import numpy as np
import pytest
from _helpers import config_of
from _numerics import central_difference, reference_adagrad, reference_sample
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from sklearn_cml._interactions import Interactions
from sklearn_cml._losses import LOSSES, LossRow, RowScratch
from sklearn_cml._losses.softmax import (
    GROUP_SIZE,
    SoftmaxParameters,
    exp_shifted,
    float_order_key,
    softmax_weights,
)
from sklearn_cml._rng import random_permutation, seed_states, shuffle_within_rows
from sklearn_cml._sampling import alias_sampler, sampling_tables, uniform_sampler
from sklearn_cml._solvers._base import compiled_for
from sklearn_cml._solvers.hogwild import (
    CALLS,
    WorkUnits,
    draw_row,
    epoch_chunk,
    make_scratch,
    user_groups,
)
from sklearn_cml._steps import Embeddings, Optimizer


def reference_group_loss(user, items, positives, negatives, log_counts, temperature,
                         weights=None):
    """The module docstring's loss, summed over the group, with numpy; each
    positive's term times its weight (1 without ``weights``)."""
    positive_logits = -np.sum((user - items[positives]) ** 2, axis=1) / temperature
    negative_logits = log_counts - np.sum((user - items[negatives]) ** 2, axis=1) / temperature
    negative_sum = np.sum(np.exp(negative_logits))  # exp(-inf) = 0: skipped draws
    terms = np.log(np.exp(positive_logits) + negative_sum) - positive_logits
    return float(np.sum(terms if weights is None else weights * terms))


@njit
def _weigh(parameters, row, pair_coef, scratch):
    return softmax_weights(parameters, row, pair_coef, scratch)


def softmax_row(positive_distances, negative_distances, temperature):
    """``(loss, dL/dd of each positive, dL/dD of each negative)`` from the
    softmax's weights function (every draw counting for one item)."""
    n_negatives = len(negative_distances)
    distances = np.array(negative_distances, np.float32)
    coefs = np.empty(len(positive_distances), np.float32)
    row = LossRow(np.array(positive_distances, np.float32),
                  np.ones(len(positive_distances), np.float32), distances,
                  np.ones(n_negatives, np.float32), np.zeros(n_negatives, np.float32), 1, 10)
    parameters = SoftmaxParameters(np.float32(1 / temperature), np.float32(0.0), np.float32(1.0))
    _, loss = _weigh(parameters, row, coefs,
                     RowScratch(np.empty(n_negatives, np.float32),
                                np.empty(n_negatives, np.int32)))
    return loss, coefs, distances


@pytest.mark.parametrize("nearest", ["positive", "negative"])
def test_weights_stay_finite_at_tiny_temperatures(nearest):
    """Logits of thousands: each positive's exponents are shifted by its own
    largest, whether that is the positive's or a negative's, so nothing
    overflows and no denominator underflows to zero."""
    # Two positives at squared distances 0 and 1; the negative farther than
    # both (1.96), or between them (0.25).
    negative = 1.96 if nearest == "positive" else 0.25
    loss, coefs, weights = softmax_row([0.0, 1.0], [negative], 1e-3)
    assert np.isfinite(loss) and loss >= 0
    assert np.isfinite(coefs).all() and np.isfinite(weights).all()
    if nearest == "negative":
        # The far positive loses to the negative (d = 1 > 0.25): a pull on
        # it and a push on the negative; the near positive is at rest.
        assert loss == pytest.approx((1.0 - 0.25) / 1e-3, rel=1e-6)
        assert coefs[0] == pytest.approx(0.0, abs=1e-12)
        assert coefs[1] > 0 and weights[0] < 0


def test_a_row_of_only_the_users_items_has_no_loss():
    loss, coefs, weights = softmax_row([0.3, 0.5], [np.inf, np.inf, np.inf], 0.3)
    assert loss == 0.0
    np.testing.assert_array_equal(coefs, 0.0)
    np.testing.assert_array_equal(weights, 0.0)


@njit
def _draw_row(sampler, state, user, stamp, interactions, user_vector, items, scratch):
    return draw_row(sampler, state, user, stamp, interactions, user_vector, items, scratch, 0)


@pytest.mark.parametrize("mark_limit", [10**6, 0])
@pytest.mark.parametrize("exponent", [0.0, 0.8])
def test_draws_of_the_users_items_are_at_infinity_and_draws_are_weighed(exponent, mark_limit):
    """Marked or searched, a draw of one of the user's items is at distance
    +inf; every draw stands for ``n_items / n_draws`` items, times its
    inverse sampling probability relative to uniform."""
    n_items, n_negatives = 20, 25
    seen = np.array([2, 5, 11], dtype=np.int32)
    tables = None if exponent == 0.0 else sampling_tables(np.arange(n_items), exponent)
    sampler = uniform_sampler(n_items) if tables is None else alias_sampler(*tables)
    config = config_of(loss="softmax", n_negatives=n_negatives, n_components=3)
    scratch = make_scratch(config, 1, n_items, 3)._replace(mark_limit=mark_limit)
    n_draws = scratch.n_draws
    items = np.random.default_rng(0).normal(size=(n_items, 3)).astype(np.float32)
    user = items[0] * 0.5
    _draw_row(sampler, seed_states(0, 1)[0], 0, 1, Interactions(
        np.array([0, seen.size], np.int64), seen, n_items), user, items, scratch)

    negatives, distances = scratch.negatives[0], scratch.distances[0]
    is_seen = np.isin(negatives, seen)
    assert is_seen.any() and not is_seen.all()
    assert np.isposinf(distances[is_seen]).all()
    np.testing.assert_allclose(distances[~is_seen],
                               np.sum((user - items[negatives[~is_seen]]) ** 2, axis=1),
                               rtol=1e-5)
    inverse = np.ones(n_items) if tables is None else tables[2]
    counts = n_items / n_draws * inverse[negatives]
    np.testing.assert_allclose(scratch.counts[0], counts, rtol=1e-5)
    np.testing.assert_allclose(scratch.log_counts[0], np.log(counts), rtol=1e-5, atol=1e-6)


@st.composite
def csr_structures(draw):
    counts = draw(st.lists(st.integers(0, 40), min_size=1, max_size=8))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    indices = np.concatenate(
        [np.sort(rng.choice(60, size=count, replace=False)) for count in counts]
    ).astype(np.int32)
    return indptr, indices


@settings(max_examples=50, deadline=None)
@given(structure=csr_structures(), seed=st.integers(0, 1000))
def test_groups_cover_each_entry_once_within_its_row(structure, seed):
    indptr, indices = structure
    starts, users = user_groups(indptr, GROUP_SIZE)
    covered = []
    for start, user in zip(starts, users):
        stop = min(start + GROUP_SIZE, indptr[user + 1])
        assert indptr[user] <= start < stop
        covered.extend(range(start, stop))
    assert sorted(covered) == list(range(indices.size))

    shuffled = np.empty_like(indices)
    shuffle_within_rows(indptr, indices, shuffled, seed)
    for row in range(indptr.size - 1):
        segment = slice(indptr[row], indptr[row + 1])
        np.testing.assert_array_equal(np.sort(shuffled[segment]), indices[segment])


def test_shuffle_within_rows_is_a_seeded_uniform_permutation():
    indptr = np.array([0, 4], dtype=np.int64)
    indices = np.arange(4, dtype=np.int32)
    shuffled = np.empty_like(indices)
    firsts = []
    for seed in range(4000):
        shuffle_within_rows(indptr, indices, shuffled, seed)
        firsts.append(shuffled[0])
    # Each item leads a quarter of the time (binomial sd about 27 of 1000).
    np.testing.assert_allclose(np.bincount(firsts, minlength=4), 1000, atol=135)
    again = np.empty_like(indices)
    shuffle_within_rows(indptr, indices, again, 3999)
    np.testing.assert_array_equal(again, shuffled)


@pytest.mark.parametrize("temperature_exponent", [0.0, 0.5])
@pytest.mark.parametrize("exponent", [0.0, 0.8])
@pytest.mark.parametrize("seed", range(3))
def test_softmax_epoch_matches_numpy_reference(seed, exponent, temperature_exponent):
    """One slot and one block of the per-pair solver: the kernel's epoch is
    the reference's sequence of group steps (same groups, same draws), each
    applying the numpy gradients with row-wise AdaGrad: positives, then
    negatives, then the user.  Each user's temperature is ``0.5 * (n_u /
    5) ** temperature_exponent``."""
    rng = np.random.default_rng(seed)
    n_items, n_components, n_negatives = 40, 5, 2
    base_temperature, learning_rate, max_norm, reference_count = 0.5, 0.1, 0.9, 5.0
    counts = [GROUP_SIZE + 4, 3]  # a user with two groups, one with one
    indices = np.concatenate(
        [np.sort(rng.choice(n_items, size=count, replace=False)) for count in counts]
    ).astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    users = (rng.normal(size=(2, n_components)) * 0.4).astype(np.float32)
    items = (rng.normal(size=(n_items, n_components)) * 0.4).astype(np.float32)
    user_grad_sq = np.full(2, 0.1, dtype=np.float32)
    item_grad_sq = np.full(n_items, 0.1, dtype=np.float32)
    expected = [a.astype(np.float64) for a in (users, items, user_grad_sq, item_grad_sq)]
    initial_items = items.copy()
    tables = None if exponent == 0.0 else sampling_tables(rng.integers(0, 50, n_items), exponent)
    sampler = uniform_sampler(n_items) if tables is None else alias_sampler(*tables)

    starts, group_users = user_groups(indptr, GROUP_SIZE)
    order = np.empty(starts.size, dtype=np.int32)
    random_permutation(order, seed)
    shuffled = np.empty_like(indices)
    shuffle_within_rows(indptr, indices, shuffled, seed)
    states = seed_states(seed, 1)
    reference_state = states[0]
    losses = np.zeros(1, dtype=np.float32)
    parameters = SoftmaxParameters(np.float32(1 / base_temperature),
                                   np.float32(temperature_exponent), np.float32(reference_count))
    config = config_of(loss="softmax", n_negatives=n_negatives, n_components=n_components)
    scratch = make_scratch(config, 1, n_items, n_components)
    compiled_for(epoch_chunk, LOSSES["softmax"], CALLS, "hogwild")(
        parameters, sampler,
        WorkUnits(shuffled, np.ones(shuffled.size, np.float32), starts, group_users, GROUP_SIZE),
        order, 0, order.size, Interactions(indptr, indices, n_items),
        Embeddings(users, user_grad_sq, items, item_grad_sq),
        Optimizer(np.float32(learning_rate), np.float32(max_norm)), scratch, states, losses, 1,
    )  # fmt: skip

    n_draws = n_negatives * GROUP_SIZE
    expected_loss = 0.0
    for group in order:
        user = group_users[group]
        positives = shuffled[starts[group]:min(starts[group] + GROUP_SIZE, indptr[user + 1])]
        temperature = base_temperature * (counts[user] / reference_count) ** temperature_exponent
        negatives = np.empty(n_draws, dtype=np.int64)
        for k in range(n_draws):
            reference_state, negatives[k] = reference_sample(reference_state, n_items, tables)
        inverse = np.ones(n_items) if tables is None else tables[2].astype(np.float64)
        log_counts = np.log(n_items / n_draws * inverse[negatives])
        log_counts[np.isin(negatives, indices[indptr[user]:indptr[user + 1]])] = -np.inf
        user_vectors, item_vectors, user_sq, item_sq = expected
        u = user_vectors[user]
        expected_loss += reference_group_loss(u, item_vectors, positives, negatives, log_counts,
                                              temperature)
        grad_user = central_difference(
            functools.partial(reference_group_loss, items=item_vectors, positives=positives,
                              negatives=negatives, log_counts=log_counts,
                              temperature=temperature), u)
        logits = -np.sum((u - item_vectors[positives]) ** 2, axis=1) / temperature
        terms = np.exp(log_counts - np.sum((u - item_vectors[negatives]) ** 2, axis=1)
                       / temperature)
        z = np.exp(logits) + terms.sum()
        positive_gradients = (2 / temperature * (1 - np.exp(logits) / z))[:, None] * (
            item_vectors[positives] - u)
        negative_gradients = (2 / temperature * terms * np.sum(1 / z))[:, None] * (
            u - item_vectors[negatives])
        for item, gradient in zip(positives, positive_gradients):
            reference_adagrad(item_vectors[item], item_sq, item, gradient, learning_rate,
                              max_norm)
        for item, gradient, term in zip(negatives, negative_gradients, terms):
            if term > 0:
                reference_adagrad(item_vectors[item], item_sq, item, gradient, learning_rate,
                                  max_norm)
        reference_adagrad(u, user_sq, user, grad_user, learning_rate, max_norm)

    np.testing.assert_allclose(users, expected[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(items, expected[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(user_grad_sq, expected[2], rtol=1e-4)
    np.testing.assert_allclose(item_grad_sq, expected[3], rtol=1e-4)
    assert losses[0] == pytest.approx(expected_loss, rel=1e-4)
    assert not np.allclose(items, initial_items)  # the pass did update vectors


def test_temperature_exponent_reaches_training_and_fold_in():
    from sklearn_cml import CMLRecommender
    from sklearn_cml.datasets import make_interactions

    X = make_interactions(n_users=80, n_items=40, n_clusters=3, random_state=0)
    params = dict(n_components=6, n_negatives=3, n_epochs=3, fold_in_epochs=3, loss="softmax",
                  random_state=0)
    flat = CMLRecommender(**params).fit(X)
    scaled = CMLRecommender(**params, temperature_exponent=0.5).fit(X)
    assert scaled.loss_curve_ != flat.loss_curve_
    placed = scaled.transform(X)
    np.testing.assert_array_equal(scaled.transform(X[:3]), placed[:3])  # still row-wise
    assert not np.array_equal(scaled.set_params(temperature_exponent=0.0).transform(X), placed)
    # A row without items has no temperature to scale: it stays the mean user.
    empty = scaled.set_params(temperature_exponent=0.5).transform(np.zeros((1, X.shape[1])))
    np.testing.assert_allclose(empty[0], scaled.user_embeddings_.mean(axis=0), rtol=1e-5,
                               atol=1e-6)


@njit
def _exp_shifted(values, top, bits):
    return exp_shifted(values, top, bits)


@njit
def _order_keys(values):
    keys = np.empty(values.shape[0], np.int32)
    bits = values.view(np.int32)
    for n in range(values.shape[0]):
        keys[n] = float_order_key(bits[n])
    return keys


@settings(deadline=None)
@given(st.lists(st.floats(-80.0, 0.0, width=32), min_size=1, max_size=300),
       st.floats(-5.0, 5.0, width=32))
def test_exp_shifted_matches_numpy(offsets, top):
    """The block row's vector exp: relative error below 1e-5 and exact sums;
    a masked (-inf) entry gives exactly 0."""
    values = np.array(offsets + [-np.inf], np.float32) + np.float32(top)
    expected = np.exp(values.astype(np.float64) - np.float32(top))
    out = values.copy()
    total = _exp_shifted(out, np.float32(top), np.empty(values.shape[0], np.int32))
    assert out[-1] == 0.0
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-35)
    np.testing.assert_allclose(total, expected.sum(), rtol=1e-5)


@settings(deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False), min_size=2, max_size=50))
def test_float_order_key_orders_as_the_floats(values):
    """The integer keys behind the row's max sort as the floats do (signed
    zeros, infinities, subnormals included), and the key is its own inverse."""
    floats = np.array(values, np.float32)
    keys = _order_keys(floats)
    by_key = floats[np.argsort(keys)]
    assert np.all(by_key[:-1] <= by_key[1:])
    assert np.array_equal(_order_keys(keys.view(np.float32)).view(np.float32).view(np.int32),
                          floats.view(np.int32))
    assert floats[np.argmax(keys)] == floats.max()
