"""The Numba kernels against finite differences and a plain-numpy reference."""

import math

import numpy as np
import pytest

from sklearn_cml._covariance import (
    covariance_gradient,
    covariance_loss,
    covariance_step,
    off_diagonal_covariance,
)
from sklearn_cml._kernels import (
    adagrad_step,
    contains_sorted,
    holdout_mask,
    rank_weight,
    row_hash_states,
    row_of_entry,
    shuffle_pairs,
    triplet_gradients,
    warp_epoch_chunk,
)
from sklearn_cml._rng import next_uint64, random_below, seed_states
from sklearn_cml._sampling import sampling_tables


def central_difference(loss, x, eps=1e-6):
    """Numerical gradient of ``loss`` at ``x`` (float64)."""
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        gradient[index] = (loss(x + step) - loss(x - step)) / (2 * eps)
    return gradient


def test_triplet_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    margin, weight = 0.7, math.log(5.0)
    for _ in range(5):
        user, positive, negative = rng.normal(size=(3, 6)) * 0.4

        def loss(u, p, n):
            return weight * (margin + np.sum((u - p) ** 2) - np.sum((u - n) ** 2))

        analytic = np.empty((3, 6))
        triplet_gradients(user, positive, negative, weight, *analytic)
        numeric = [
            central_difference(lambda u: loss(u, positive, negative), user),
            central_difference(lambda p: loss(user, p, negative), positive),
            central_difference(lambda n: loss(user, positive, n), negative),
        ]
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_covariance_loss_is_squared_off_diagonal_covariance():
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(9, 5)), rng.normal(size=(4, 5))
    stacked = np.vstack([first, second])
    reference = np.cov(stacked.T, bias=True)
    np.fill_diagonal(reference, 0.0)
    mean, covariance = off_diagonal_covariance(first, second)
    np.testing.assert_allclose(mean, stacked.mean(axis=0))
    np.testing.assert_allclose(covariance, reference, atol=1e-12)
    assert covariance_loss(covariance, 13) == pytest.approx((reference**2).sum() / 13)


def test_covariance_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(12, 4))
    empty = np.zeros((0, 4))

    def loss(y):
        _, covariance = off_diagonal_covariance(y, empty)
        return covariance_loss(covariance, y.shape[0])

    mean, covariance = off_diagonal_covariance(rows, empty)
    analytic = covariance_gradient(rows, mean, covariance, rows.shape[0])
    np.testing.assert_allclose(analytic, central_difference(loss, rows), rtol=1e-5, atol=1e-9)


def test_covariance_step_decorrelates():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(200, 1))
    # Strongly correlated dimensions, inside the unit ball.
    users = (0.3 * base + 0.05 * rng.normal(size=(200, 4))).astype(np.float32)
    items = (0.3 * base[:50] + 0.05 * rng.normal(size=(50, 4))).astype(np.float32)
    grad_sq = [np.full(200, 0.1, dtype=np.float32), np.full(50, 0.1, dtype=np.float32)]
    losses = [
        covariance_step(users, grad_sq[0], items, grad_sq[1], 1e4, 0.05, 1.0)
        for _ in range(50)
    ]
    assert losses[-1] < 0.2 * losses[0]


def test_rank_weight_is_log_of_estimated_rank():
    cases = [(100, 1, 20), (100, 20, 20), (7, 3, 5), (1000, 0, 10)]
    for n_items, n_impostors, n_negatives in cases:
        rank = math.floor(n_items * n_impostors / n_negatives)
        assert rank_weight(n_items, n_impostors, n_negatives) == pytest.approx(
            math.log(rank + 1), rel=1e-6
        )


@pytest.mark.parametrize("max_norm", [0.5, 10.0])
def test_adagrad_step_then_projection(max_norm):
    rng = np.random.default_rng(4)
    vector = rng.normal(size=7).astype(np.float32)
    grad_sq = rng.uniform(0.1, 1.0, size=3).astype(np.float32)
    gradient = rng.normal(size=7).astype(np.float32)
    expected_grad_sq = grad_sq.astype(np.float64)
    expected_grad_sq[1] += np.mean(gradient.astype(np.float64) ** 2)
    expected = vector - 0.3 * gradient / np.sqrt(expected_grad_sq[1])
    norm = np.linalg.norm(expected)
    if norm > max_norm:
        expected *= max_norm / norm
    adagrad_step(vector, grad_sq, 1, gradient, np.float32(0.3), np.float32(max_norm))
    np.testing.assert_allclose(grad_sq, expected_grad_sq, rtol=1e-6)
    np.testing.assert_allclose(vector, expected, rtol=1e-5)
    assert np.linalg.norm(vector) <= max_norm * (1 + 1e-6)
    assert (norm > max_norm) == (max_norm == 0.5)  # both branches are exercised


def test_row_of_entry_skips_empty_rows():
    indptr = np.array([0, 0, 2, 2, 2, 5, 6], dtype=np.int64)
    rows = [row_of_entry(indptr, position) for position in range(6)]
    assert rows == [1, 1, 4, 4, 4, 5]


def test_contains_sorted():
    values = np.array([1, 4, 9, 12], dtype=np.int32)
    for value in range(14):
        assert contains_sorted(values, 1, 3, value) == (value in (4, 9))


def reference_draw(state, probability):
    """An item drawn as the alias tables do: column from the high bits, then
    kept with probability ``keep`` (exact, from the tables' definition)."""
    keep_threshold, alias, _ = probability
    state, bits = next_uint64(state)
    column = ((int(bits) >> 32) * len(alias)) >> 32
    if int(bits) & 0xFFFFFFFF < int(keep_threshold[column]):
        return state, column
    return state, int(alias[column])


def reference_warp_pair(user, items, grad_sq_user, grad_sq_items, positive, seen,
                        states, n_negatives, margin, learning_rate, max_norm, tables=None):
    """Plain-numpy WARP step, drawing the same items as the kernel.

    Uniform draws without ``tables``; otherwise alias draws, each impostor
    counting its inverse probability in the rank estimate.
    """
    threshold = np.sum((user - items[positive]) ** 2) + margin
    impostors = []
    for _ in range(n_negatives):
        if tables is None:
            states[0], candidate = random_below(states[0], items.shape[0])
        else:
            states[0], candidate = reference_draw(states[0], tables)
        distance = np.sum((user - items[candidate]) ** 2)
        if distance < threshold and candidate not in seen:  # positives are skipped
            impostors.append((distance, candidate))
    if not impostors:
        return 0.0
    distance, negative = min(impostors)
    counted = (len(impostors) if tables is None
               else sum(float(tables[2][k]) for _, k in impostors))
    weight = math.log(math.floor(items.shape[0] * counted / n_negatives) + 1)
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
        grad_sq[row] += np.mean(gradient**2)  # row-wise AdaGrad
        vector -= learning_rate * gradient / np.sqrt(grad_sq[row])
        norm = np.linalg.norm(vector)
        if norm > max_norm:
            vector *= max_norm / norm
    return weight * (threshold - distance)


@pytest.mark.parametrize("exponent", [0.0, 0.8])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_slots, mark_limit", [(1, 100), (3, 100), (1, 0)])
def test_warp_epoch_matches_numpy_reference(seed, n_slots, mark_limit, exponent):
    """Both ways of skipping positives (marks, binary search) give the
    reference, with uniform and with popularity-weighted negatives."""
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
    marks = np.full((n_slots, n_items), 7, dtype=np.int32)
    losses = np.zeros(1, dtype=np.float32)
    popularity = rng.integers(0, 50, size=n_items)
    tables = sampling_tables(popularity, exponent)

    for position in range(seen.size):  # one pass, pairs in order
        order = np.array([position], dtype=np.int32)
        warp_epoch_chunk(
            order, 0, 1, indptr, seen,
            users, grad_sq_users, items, grad_sq_items,
            10, np.float32(1.5), True, np.float32(0.1), np.float32(1.0), states, losses,
            np.empty((1, 3, n_components), dtype=np.float32), marks, mark_limit,
            None if exponent == 0.0 else tables,
        )  # fmt: skip
        reference_warp_pair(
            expected[0][0], expected[1], expected[2], expected[3], seen[position],
            set(seen.tolist()), reference_states, 10, 1.5, 0.1, 1.0,
            None if exponent == 0.0 else tables,
        )  # fmt: skip
    np.testing.assert_allclose(users, expected[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(items, expected[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad_sq_items, expected[3], rtol=1e-4)
    assert not np.allclose(items, initial_items)  # the pass did update vectors


def test_random_below_is_uniform():
    states = seed_states(7, 1)
    state, draws = states[0], []
    for _ in range(20000):
        state, value = random_below(np.uint64(state), 5)
        draws.append(value)
    counts = np.bincount(np.array(draws), minlength=5)
    assert counts.min() > 3700 and counts.max() < 4300


def test_shuffle_pairs_is_a_seeded_uniform_permutation():
    order = np.empty(6, dtype=np.int32)
    counts = np.zeros((6, 6))
    for seed in range(3000):
        shuffle_pairs(order, seed)
        assert sorted(order) == list(range(6))
        counts[np.arange(6), order] += 1
    # Every value lands in every place about equally often (expected 500).
    assert counts.min() > 400 and counts.max() < 600
    again = np.empty(6, dtype=np.int32)
    shuffle_pairs(again, 2999)
    np.testing.assert_array_equal(again, order)


def test_seed_states_are_distinct_and_nonzero():
    states = seed_states(0, 64)
    assert np.unique(states).size == 64 and (states != 0).all()


def test_row_hash_states_depend_only_on_row_content():
    indptr = np.array([0, 2, 4, 5], dtype=np.int64)
    indices = np.array([1, 3, 1, 3, 2], dtype=np.int32)
    states = row_hash_states(indptr, indices, 11)
    assert states[0] == states[1] != states[2]
    assert row_hash_states(indptr, indices, 12)[0] != states[0]


def test_holdout_mask_fraction_and_determinism():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 30, size=50)
    indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    indices = np.concatenate(
        [np.sort(rng.choice(100, size=n, replace=False)) for n in lengths]
    ).astype(np.int32)
    mask = holdout_mask(indptr, indices, 5, 0.2)
    held = np.add.reduceat(mask.astype(int), indptr[:-1])[lengths > 0]
    for n, n_held in zip(lengths[lengths > 0], held):
        expected = 0 if n < 2 else min(max(1, round(0.2 * n)), n - 1)
        assert n_held == expected
    np.testing.assert_array_equal(mask, holdout_mask(indptr, indices, 5, 0.2))
