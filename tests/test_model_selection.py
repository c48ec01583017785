"""Tests for sklearn_cml.model_selection: per-user splits of interaction matrices.

The expected per-user counts are recomputed here with plain Python (``round``
and a loop over users), independently of the vectorised implementation.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.model_selection import ShuffleSplit, cross_val_score

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import load_movielens, make_interactions
from sklearn_cml.model_selection import (
    leave_k_out_split,
    train_test_split,
    train_validation_test_split,
)

# --------------------------------------------------------------------------
# Expected counts and invariants, written without the implementation's tricks


def expected_held_out(n, test_size, min_interactions):
    """Items a user with ``n`` interactions holds out in ``train_test_split``."""
    if isinstance(test_size, int):
        return test_size if n >= max(min_interactions, test_size + 1) else 0
    if n < max(min_interactions, 2):
        return 0
    return min(max(round(test_size * n), 1), n - 1)


def expected_three_way(n, sizes, min_interactions):
    """(train, validation, test) counts of a user with ``n`` interactions."""
    if n < min_interactions:
        return (n, 0, 0)
    n_train, n_validation = round(sizes[0] * n), round(sizes[1] * n)
    return (n_train, n_validation, n - n_train - n_validation)


def positive_entries(X):
    """Dense float64 copy of ``X`` with everything not positive set to 0."""
    dense = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    dense = dense.astype(np.float64)
    return np.where(dense > 0, dense, 0.0)


def row_counts(X):
    """Number of positive entries per row of ``X`` (any format)."""
    return (positive_entries(X) > 0).sum(axis=1)


def assert_partition(X, parts):
    """Parts are canonical CSR, same shape, disjoint, and add up to X's positives."""
    positives = positive_entries(X)
    expected_dtype = np.float64 if X.dtype == np.float64 else np.float32
    covered = np.zeros(positives.shape, dtype=np.int64)
    total = np.zeros(positives.shape)
    for part in parts:
        assert type(part) is sp.csr_matrix
        assert part.shape == positives.shape
        assert part.dtype == expected_dtype
        assert np.all(part.data > 0), "explicit zeros or negatives in a part"
        part_copy = part.copy()
        part_copy.has_sorted_indices = False
        part_copy.sort_indices()
        np.testing.assert_array_equal(part_copy.indices, part.indices)
        assert part.has_sorted_indices
        dense = part.toarray()
        covered += dense > 0
        total += dense
    assert covered.max(initial=0) <= 1, "an interaction is in two parts"
    np.testing.assert_array_equal(covered, positives > 0)
    np.testing.assert_allclose(total, positives, rtol=1e-6)


def to_sets(part):
    """The (row, item) pairs of a CSR part, as a set."""
    coo = part.tocoo()
    return set(zip(coo.row.tolist(), coo.col.tolist()))


@st.composite
def interaction_matrices(draw):
    """Small CSR matrices with empty rows and columns and explicit zeros."""
    n_users = draw(st.integers(1, 25))
    n_items = draw(st.integers(1, 15))
    values = draw(arrays(np.int64, (n_users, n_items),
                         elements=st.sampled_from([0, 0, 0, 1, 2, 5])))
    explicit_zero = draw(arrays(np.bool_, (n_users, n_items)))
    rows, cols = np.nonzero((values > 0) | explicit_zero)
    return sp.csr_matrix(
        (values[rows, cols].astype(np.float64), (rows, cols)), shape=(n_users, n_items)
    )


SEEDS = st.integers(0, 2**32 - 1)

# --------------------------------------------------------------------------
# Invariants over random matrices


@settings(max_examples=80, deadline=None)
@given(
    X=interaction_matrices(),
    test_size=st.one_of(st.floats(0.01, 0.99), st.integers(1, 6)),
    min_interactions=st.integers(1, 8),
    seed=SEEDS,
)
def test_train_test_split_invariants(X, test_size, min_interactions, seed):
    parts = train_test_split(
        X, test_size=test_size, min_interactions=min_interactions, random_state=seed
    )
    assert len(parts) == 2
    assert_partition(X, parts)
    n_u = row_counts(X)
    expected = [expected_held_out(int(n), test_size, min_interactions) for n in n_u]
    np.testing.assert_array_equal(parts[1].getnnz(axis=1), expected)
    np.testing.assert_array_equal(parts[0].getnnz(axis=1), n_u - expected)
    # a user with held-out items keeps at least one in train
    assert np.all(parts[0].getnnz(axis=1)[np.asarray(expected) > 0] >= 1)


@settings(max_examples=60, deadline=None)
@given(X=interaction_matrices(), k=st.integers(1, 6), seed=SEEDS)
def test_leave_k_out_invariants(X, k, seed):
    X_train, X_test = leave_k_out_split(X, k=k, random_state=seed)
    assert_partition(X, (X_train, X_test))
    n_u = row_counts(X)
    np.testing.assert_array_equal(X_test.getnnz(axis=1), np.where(n_u > k, k, 0))
    # same as the train_test_split it documents
    for a, b in zip(
        (X_train, X_test),
        train_test_split(X, test_size=k, min_interactions=1, random_state=seed),
    ):
        np.testing.assert_array_equal(a.toarray(), b.toarray())


@settings(max_examples=80, deadline=None)
@given(
    X=interaction_matrices(),
    weights=st.tuples(st.integers(1, 10), st.integers(1, 10), st.integers(1, 10)),
    min_interactions=st.integers(1, 8),
    seed=SEEDS,
)
def test_train_validation_test_invariants(X, weights, min_interactions, seed):
    sizes = tuple(w / sum(weights) for w in weights)
    parts = train_validation_test_split(
        X, sizes=sizes, min_interactions=min_interactions, random_state=seed
    )
    assert len(parts) == 3
    assert_partition(X, parts)
    expected = np.array(
        [expected_three_way(int(n), sizes, min_interactions) for n in row_counts(X)]
    ).reshape(-1, 3)
    got = np.column_stack([part.getnnz(axis=1) for part in parts])
    np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------
# Per-user counts on fixed cases


def rows_with_counts(counts, n_items=20):
    """CSR matrix whose row ``u`` holds ``counts[u]`` interactions (values 1..n)."""
    rows = np.repeat(np.arange(len(counts)), counts)
    cols = np.concatenate([np.arange(c) * 7 % n_items for c in counts]).astype(int)
    data = np.concatenate([np.arange(1, c + 1) for c in counts]).astype(np.float64)
    X = sp.csr_matrix((data, (rows, cols)), shape=(len(counts), n_items))
    np.testing.assert_array_equal(X.getnnz(axis=1), counts)
    return X


def test_fraction_rounds_and_keeps_items_on_both_sides():
    counts = [0, 1, 2, 3, 6, 10, 14]
    X = rows_with_counts(counts)
    # 0.25 * n: 0 and 1 stay in train, 0.5 -> 1 (at least one), 0.75 -> 1,
    # 1.5 -> 2 and 2.5 -> 2 (half to even), 3.5 -> 4
    _, X_test = train_test_split(X, test_size=0.25, random_state=0)
    np.testing.assert_array_equal(X_test.getnnz(axis=1), [0, 0, 1, 1, 2, 2, 4])
    # 0.9 * n leaves at least one in train: 2 -> 1, 3 -> 2, 6 -> 5, 10 -> 9
    _, X_test = train_test_split(X, test_size=0.9, random_state=0)
    np.testing.assert_array_equal(X_test.getnnz(axis=1), [0, 0, 1, 2, 5, 9, 13])


def test_count_holds_out_exactly_that_many():
    X = rows_with_counts([0, 1, 2, 3, 4, 10])
    _, X_test = train_test_split(X, test_size=3, random_state=0)
    np.testing.assert_array_equal(X_test.getnnz(axis=1), [0, 0, 0, 0, 3, 3])
    _, X_test = leave_k_out_split(X, k=1, random_state=0)
    np.testing.assert_array_equal(X_test.getnnz(axis=1), [0, 0, 1, 1, 1, 1])
    _, X_test = leave_k_out_split(X, k=2, random_state=0)
    np.testing.assert_array_equal(X_test.getnnz(axis=1), [0, 0, 0, 2, 2, 2])


def test_users_below_the_minimum_stay_in_train():
    counts = [1, 3, 4, 5, 9]
    X = rows_with_counts(counts)
    X_train, X_test = train_test_split(X, test_size=0.5, min_interactions=4, random_state=0)
    np.testing.assert_array_equal(X_test.getnnz(axis=1), [0, 0, 2, 2, 4])
    np.testing.assert_array_equal(X_train.getnnz(axis=1), [1, 3, 2, 3, 5])
    # the users below the minimum are their whole rows, values included
    np.testing.assert_array_equal(X_train[:2].toarray(), X[:2].toarray())


@pytest.mark.parametrize(
    "sizes, table",
    [
        # n: (train, validation, test), worked out by hand
        ((0.6, 0.2, 0.2), {0: (0, 0, 0), 4: (4, 0, 0), 5: (3, 1, 1), 6: (4, 1, 1),
                           7: (4, 1, 2), 8: (5, 2, 1), 9: (5, 2, 2), 10: (6, 2, 2),
                           12: (7, 2, 3), 15: (9, 3, 3), 20: (12, 4, 4)}),
        # halves round to even: 0.25 * 10 = 2.5 -> 2, 0.25 * 6 = 1.5 -> 2
        ((0.5, 0.25, 0.25), {5: (2, 1, 2), 6: (3, 2, 1), 10: (5, 2, 3), 14: (7, 4, 3)}),
    ],
)
def test_three_way_rounding_rule(sizes, table):
    counts = sorted(table)
    X = rows_with_counts(counts)
    parts = train_validation_test_split(X, sizes=sizes, min_interactions=5, random_state=0)
    got = np.column_stack([part.getnnz(axis=1) for part in parts])
    np.testing.assert_array_equal(got, [table[n] for n in counts])


def test_matrix_without_interactions():
    X = sp.csr_matrix(([0.0], ([1], [2])), shape=(4, 3))  # an explicit zero only
    assert X.nnz == 1
    for parts in (
        train_test_split(X, random_state=0),
        leave_k_out_split(X, random_state=0),
        train_validation_test_split(X, random_state=0),
    ):
        assert all(part.shape == (4, 3) and part.nnz == 0 for part in parts)


def test_values_and_dtypes_are_kept():
    rng = np.random.RandomState(0)
    ratings = rng.randint(0, 6, size=(30, 12))
    X_train, X_test = train_test_split(sp.csr_matrix(ratings), random_state=0)
    assert X_train.dtype == X_test.dtype == np.float32  # int input
    np.testing.assert_array_equal((X_train + X_test).toarray(), ratings)
    X = sp.csr_matrix(ratings * 0.1)
    X_train, X_test = train_test_split(X, random_state=0)
    assert X_train.dtype == X_test.dtype == np.float64
    np.testing.assert_array_equal((X_train + X_test).toarray(), X.toarray())
    parts = train_validation_test_split(X.astype(np.float32), random_state=0)
    assert all(part.dtype == np.float32 for part in parts)


def test_input_is_not_modified():
    # unsorted indices, a duplicate and an explicit zero: canonicalising in
    # place would change the caller's arrays
    data = np.array([1.0, 2.0, 0.0, 3.0, 1.0])
    indices = np.array([3, 0, 1, 2, 3], dtype=np.int32)
    indptr = np.array([0, 3, 5])
    X = sp.csr_matrix((data, indices, indptr), shape=(2, 4))
    snapshot = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    X_train, X_test = train_test_split(X, test_size=1, random_state=0)
    for before, after in zip(snapshot, (X.data, X.indices, X.indptr)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal((X_train + X_test).toarray(), [[2, 0, 0, 1], [0, 0, 3, 1]])


@pytest.mark.parametrize("fmt", ["coo", "csr"])
def test_duplicates_are_summed_into_one_interaction(fmt):
    data, rows, cols = [1.0, 4.0, 1.0], [0, 0, 0], [1, 2, 1]
    if fmt == "coo":
        X = sp.coo_matrix((data, (rows, cols)), shape=(1, 3))
    else:  # a non-canonical CSR keeps its duplicates until summed
        X = sp.csr_matrix((data, cols, [0, 3]), shape=(1, 3))
        assert X.nnz == 3
    for seed in range(5):
        X_train, X_test = leave_k_out_split(X, k=1, random_state=seed)
        assert X_train.nnz == X_test.nnz == 1
        np.testing.assert_array_equal((X_train + X_test).toarray(), [[0, 2, 4]])


# --------------------------------------------------------------------------
# Randomness: reproducible, seed-dependent, uniform, independent across users


SPLITTERS = {
    "train_test_split": lambda X, rs: train_test_split(X, random_state=rs),
    "train_test_split_count": lambda X, rs: train_test_split(X, test_size=3, random_state=rs),
    "leave_k_out_split": lambda X, rs: leave_k_out_split(X, k=2, random_state=rs),
    "train_validation_test_split": lambda X, rs: train_validation_test_split(X, random_state=rs),
}


@pytest.fixture(scope="module")
def synthetic():
    return make_interactions(n_users=200, n_items=80, random_state=0)


@pytest.mark.parametrize("name", sorted(SPLITTERS))
def test_reproducible_with_same_seed_different_with_another(synthetic, name):
    split = SPLITTERS[name]
    first, again = split(synthetic, 0), split(synthetic, 0)
    same_generator = split(synthetic, np.random.RandomState(0))
    other = split(synthetic, 1)
    for a, b, c in zip(first, again, same_generator):
        for part in (b, c):
            np.testing.assert_array_equal(a.indptr, part.indptr)
            np.testing.assert_array_equal(a.indices, part.indices)
            np.testing.assert_array_equal(a.data, part.data)
    assert to_sets(first[-1]) != to_sets(other[-1])
    # the counts do not depend on the seed, only which items
    for a, d in zip(first, other):
        np.testing.assert_array_equal(a.getnnz(axis=1), d.getnnz(axis=1))


def test_random_state_none_gives_valid_varying_splits(synthetic):
    held_out = [to_sets(train_test_split(synthetic)[1]) for _ in range(3)]
    assert len({frozenset(s) for s in held_out}) > 1


N_SEEDS = 400


def held_out_frequencies(split, X, part):
    """How often each (row, item) of ``X`` lands in ``part``, over N_SEEDS seeds."""
    counts = np.zeros(X.shape)
    for seed in range(N_SEEDS):
        counts += split(X, seed)[part].toarray() > 0
    return counts


@pytest.mark.parametrize(
    "split, part, probability",
    [
        (lambda X, rs: train_test_split(X, test_size=3, random_state=rs), 1, 0.3),
        (lambda X, rs: train_test_split(X, test_size=0.2, random_state=rs), 1, 0.2),
        (lambda X, rs: leave_k_out_split(X, k=1, random_state=rs), 1, 0.1),
        (lambda X, rs: train_validation_test_split(X, random_state=rs), 0, 0.6),
        (lambda X, rs: train_validation_test_split(X, random_state=rs), 1, 0.2),
        (lambda X, rs: train_validation_test_split(X, random_state=rs), 2, 0.2),
    ],
)
def test_each_item_of_a_row_is_equally_likely(split, part, probability):
    # 8 users with the same 10 items, scattered among 14: a bias by position
    # in the row, by item id or by row id would show
    X = np.zeros((8, 14))
    X[:, [0, 1, 2, 4, 5, 7, 8, 10, 12, 13]] = 1.0
    X = sp.csr_matrix(X)
    frequencies = held_out_frequencies(split, X, part)
    assert np.all(frequencies[X.toarray() == 0] == 0)
    per_item = frequencies[X.toarray() > 0].reshape(8, 10).sum(axis=0)
    n_draws = 8 * N_SEEDS
    spread = np.sqrt(n_draws * probability * (1 - probability))
    # within 4 standard deviations of the expected count, for every item
    assert np.all(np.abs(per_item - n_draws * probability) < 4 * spread), per_item
    per_cell = frequencies[X.toarray() > 0]
    assert np.all(np.abs(per_cell - N_SEEDS * probability)
                  < 5 * np.sqrt(N_SEEDS * probability * (1 - probability))), per_cell


def test_users_are_shuffled_independently():
    # 30 identical rows: one permutation shared by all users would hold out
    # the same items everywhere
    X = sp.csr_matrix(np.ones((30, 10)))
    _, X_test = train_test_split(X, test_size=3, random_state=0)
    held_out = {tuple(X_test[u].indices) for u in range(30)}
    assert len(held_out) >= 20  # about 26.6 distinct sets expected out of 120


# --------------------------------------------------------------------------
# Input formats


@pytest.mark.parametrize("name", sorted(SPLITTERS))
def test_input_formats_give_the_same_split(synthetic, name):
    split = SPLITTERS[name]
    X = synthetic.astype(np.float64)
    X.data[::7] = 3.0  # values other than 1 must be kept as well
    reference = split(X, 0)
    for fmt in (
        sp.csc_matrix(X),
        sp.coo_matrix(X),
        X.toarray(),
        sp.csr_array(X),
        sp.coo_array(X),
        sp.lil_matrix(X),
    ):
        for a, b in zip(reference, split(fmt, 0)):
            assert type(b) is sp.csr_matrix
            np.testing.assert_array_equal(a.indptr, b.indptr)
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_array_equal(a.data, b.data)


# --------------------------------------------------------------------------
# Bad input


def with_value(value):
    X = np.ones((4, 3))
    X[1, 2] = value
    return X


BAD_MATRICES = {
    "negative": (with_value(-1.0), "Negative values.*Binarizer"),
    "negative_sparse": (sp.csr_matrix(with_value(-2.0)), "Negative values"),
    "nan": (with_value(np.nan), "NaN"),
    "nan_sparse": (sp.csr_matrix(with_value(np.nan)), "NaN"),
    "inf": (with_value(np.inf), "infinity"),
    "no_users": (np.ones((0, 3)), "0 sample"),
    "no_items": (sp.csr_matrix((3, 0)), "0 feature"),
    "one_d": (np.ones(3), "2D array"),
    "three_d": (np.ones((2, 3, 4)), "dim 3"),
    "non_numeric": (np.full((2, 2), "a", dtype=object), "could not convert|numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD_MATRICES))
@pytest.mark.parametrize(
    "split", [train_test_split, leave_k_out_split, train_validation_test_split]
)
def test_bad_matrices_get_a_clear_error(split, case):
    X, message = BAD_MATRICES[case]
    with pytest.raises(ValueError, match=message):
        split(X, random_state=0)


@pytest.mark.parametrize("test_size", [0, 0.0, 1.0, 1.5, -0.2, -1, np.nan, "0.2", None, True])
def test_test_size_out_of_range(test_size):
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(np.ones((3, 3)), test_size=test_size)


@pytest.mark.parametrize("k", [0, -1, 1.0, 1.5, None, True])
def test_k_below_one(k):
    with pytest.raises(ValueError, match=r"\bk\b"):
        leave_k_out_split(np.ones((3, 3)), k=k)


@pytest.mark.parametrize("min_interactions", [0, -3, 2.5])
def test_min_interactions_must_be_a_positive_int(min_interactions):
    with pytest.raises(ValueError, match="min_interactions"):
        train_test_split(np.ones((3, 3)), min_interactions=min_interactions)
    with pytest.raises(ValueError, match="min_interactions"):
        train_validation_test_split(np.ones((3, 3)), min_interactions=min_interactions)


@pytest.mark.parametrize(
    "sizes",
    [(0.6, 0.2), (0.6, 0.2, 0.1, 0.1), (0.6, 0.3, 0.2), (0.5, 0.2, 0.2), (1.0, 0.0, 0.0),
     (0.7, -0.1, 0.4), (0.6, np.nan, 0.2), ("a", "b", "c"), [[0.6, 0.2, 0.2]]],
)
def test_sizes_must_be_three_positive_fractions_summing_to_one(sizes):
    with pytest.raises(ValueError, match="sizes must be three positive numbers summing to 1"):
        train_validation_test_split(np.ones((3, 3)), sizes=sizes)


def test_other_sizes_are_accepted():
    parts = train_validation_test_split(np.ones((2, 10)), sizes=[0.7, 0.1, 0.2], random_state=0)
    np.testing.assert_array_equal([p.getnnz(axis=1) for p in parts], [[7, 7], [1, 1], [2, 2]])


# --------------------------------------------------------------------------
# Real data and scikit-learn's splitters over users


def test_movielens_1m_paper_protocol(data_dir):
    X = load_movielens(data_dir / "ml-1m", min_rating=4).interactions
    X_train, X_validation, X_test = train_validation_test_split(
        X, sizes=(0.6, 0.2, 0.2), min_interactions=5, random_state=0
    )
    assert X_train.nnz + X_validation.nnz + X_test.nnz == X.nnz
    binary = [(part > 0).astype(np.int8) for part in (X_train, X_validation, X_test)]
    assert (binary[0] + binary[1] + binary[2]).max() == 1
    assert (binary[0] + binary[1] + binary[2] != (X > 0)).nnz == 0

    n_u = X.getnnz(axis=1)
    got = np.column_stack([part.getnnz(axis=1) for part in (X_train, X_validation, X_test)])
    expected = np.array([expected_three_way(int(n), (0.6, 0.2, 0.2), 5) for n in n_u])
    np.testing.assert_array_equal(got, expected)
    eligible = n_u >= 5
    assert eligible.sum() > 5000  # the rule was checked on most of the 6,040 users
    assert np.all(got[~eligible, 1:] == 0)


def test_cross_validation_over_users_with_the_estimators_score():
    X = make_interactions(n_users=300, n_items=100, random_state=0)
    cv = ShuffleSplit(3, test_size=0.25, random_state=0)

    def recalls(learning_rate):
        model = CMLRecommender(n_components=8, n_epochs=20, n_negatives=5, top_k=10,
                               learning_rate=learning_rate, random_state=0)
        return cross_val_score(model, X, cv=cv)

    trained, barely_moved = recalls(0.1), recalls(1e-4)
    assert trained.shape == (3,)
    assert np.all((trained > 0) & (trained <= 1))
    assert trained.min() > barely_moved.max() + 0.3, (trained, barely_moved)
