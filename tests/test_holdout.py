"""The internal holdout of early_stopping="auto": what it takes, what it leaves."""

import numpy as np
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sklearn_cml import _holdout
from sklearn_cml._interactions import to_interactions


def interactions(counts, n_items=50, seed=0):
    """Interactions whose user u has ``counts[u]`` distinct items."""
    rng = np.random.default_rng(seed)
    rows = [np.sort(rng.choice(n_items, count, replace=False)) for count in counts]
    indptr = np.concatenate(([0], np.cumsum(counts)))
    indices = np.concatenate(rows) if rows else np.zeros(0, int)
    X = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(counts), n_items))
    return to_interactions(X)


@settings(max_examples=40, deadline=None)
@given(pattern=st.lists(st.integers(0, 30), min_size=1, max_size=40),
       repeats=st.integers(1, 80), seed=st.integers(0, 2**31 - 1))
@example(pattern=[1, 2, 3, 30], repeats=300, seed=0)  # many users too small to lose one
def test_holds_out_one_pair_of_eligible_users_and_keeps_the_rest(pattern, repeats, seed):
    counts = pattern * repeats  # up to 96,000 pairs: both sides of MIN_PAIRS
    data = interactions(counts)
    weights = np.arange(data.n_interactions, dtype=np.float32)
    split = _holdout.split_holdout(data, weights, seed)
    size = _holdout.holdout_size(data)
    if split is None:
        assert size == 0
        return
    train, holdout, train_weights = split
    n_eligible = sum(count >= _holdout.MIN_USER_ITEMS for count in counts)
    assert holdout.n_interactions == size == min(
        n_eligible, _holdout.MAX_USERS, int(_holdout.MAX_SHARE * data.n_interactions))
    assert size >= _holdout.MIN_PAIRS
    held = np.diff(holdout.indptr)
    assert set(held) <= {0, 1}
    # Only users with enough items lose one, and keep two or more.
    assert np.all(np.asarray(counts)[held == 1] >= _holdout.MIN_USER_ITEMS)
    # Together the two parts are the data, without overlap; rows stay sorted.
    full, parts = data.to_csr(), train.to_csr() + holdout.to_csr()
    assert (full != parts).nnz == 0 and parts.max() == 1
    assert all(np.all(np.diff(train.indices[a:b]) > 0)
               for a, b in zip(train.indptr[:-1], train.indptr[1:]))
    # Each training pair keeps its own weight (here, its position in data).
    kept = train_weights.astype(np.int64)
    assert np.all(np.diff(kept) > 0)
    np.testing.assert_array_equal(data.indices[kept], train.indices)
    users_of = np.repeat(np.arange(data.n_users), np.diff(data.indptr))
    np.testing.assert_array_equal(users_of[kept],
                                  np.repeat(np.arange(train.n_users), np.diff(train.indptr)))


def test_the_same_seed_holds_out_the_same_pairs_and_another_seed_others():
    data = interactions([12] * 1500)
    first, again, other = (_holdout.split_holdout(data, None, seed)[1] for seed in (3, 3, 4))
    assert np.array_equal(first.indices, again.indices)
    assert np.array_equal(first.indptr, again.indptr)
    assert not (np.array_equal(first.indices, other.indices)
                and np.array_equal(first.indptr, other.indptr))


def test_small_data_holds_out_nothing():
    # 300 users of 5 items: 2% of 1,500 pairs is 30, below MIN_PAIRS.
    assert _holdout.holdout_size(interactions([5] * 300)) == 0
    assert _holdout.split_holdout(interactions([5] * 300), None, 0) is None
