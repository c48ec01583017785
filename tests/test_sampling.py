"""Negatives drawn in proportion to item popularity: alias tables and their use."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sklearn_cml import CMLRecommender
from sklearn_cml._rng import random_below, seed_states
from sklearn_cml._sampling import draw_item, sampling_tables
from sklearn_cml.datasets import make_interactions


def target_probability(counts, exponent):
    weights = (counts.astype(np.float64) + 1.0) ** exponent
    return weights / weights.sum()


def implied_probability(tables):
    """The exact distribution of a draw: column j with probability 1/n, kept
    with probability keep_j, else its alias."""
    keep_threshold, alias, _ = tables
    n_items = len(alias)
    keep = keep_threshold.astype(np.float64) / 2.0**32
    probability = keep.copy()
    np.add.at(probability, alias, 1.0 - keep)
    return probability / n_items


@settings(max_examples=150, deadline=None)
@given(
    counts=arrays(np.int64, st.integers(1, 60), elements=st.integers(0, 10_000)),
    exponent=st.floats(-1.0, 1.0),
)
def test_tables_give_the_target_distribution(counts, exponent):
    tables = sampling_tables(counts, exponent)
    expected = target_probability(counts, exponent)
    np.testing.assert_allclose(implied_probability(tables), expected, rtol=1e-6, atol=1e-12)
    # The rank estimate's weights undo the sampling: n * q_k * inverse_k = 1.
    np.testing.assert_allclose(tables[2] * expected * counts.size, 1.0, rtol=1e-5)
    assert tables[0].max() <= 2**32 and tables[1].min() >= 0 and tables[1].max() < counts.size


def test_uniform_tables_draw_exactly_like_random_below():
    counts = np.array([0, 5, 100, 3, 3, 8, 0])
    tables = sampling_tables(counts, 0.0)
    assert (tables[0] == 2**32).all() and (tables[2] == 1.0).all()
    uniform_state = alias_state = seed_states(3, 1)[0]
    for _ in range(2000):
        uniform_state, expected = random_below(np.uint64(uniform_state), counts.size)
        alias_state, drawn = draw_item(np.uint64(alias_state), tables[0], tables[1])
        assert drawn == expected and alias_state == uniform_state


def test_draws_follow_the_tables():
    counts = np.array([0, 1, 4, 20, 100, 500, 2, 0, 50])
    tables = sampling_tables(counts, 0.7)
    state = seed_states(11, 1)[0]
    n_draws = 60_000
    drawn = np.empty(n_draws, dtype=np.int64)
    for i in range(n_draws):
        state, drawn[i] = draw_item(np.uint64(state), tables[0], tables[1])
    frequency = np.bincount(drawn, minlength=counts.size) / n_draws
    expected = target_probability(counts, 0.7)
    tolerance = 5 * np.sqrt(expected * (1 - expected) / n_draws)  # five standard errors
    assert (np.abs(frequency - expected) <= tolerance).all()


def top_popularity(model, X, k=10):
    """Mean training popularity of the items recommended to every user."""
    popularity = np.asarray(X.sum(axis=0)).ravel()
    recommended = model.recommend(np.arange(X.shape[0]), n_items=k)
    return popularity[recommended].mean()


def test_popularity_weighted_negatives_push_popular_items_away():
    """With the hinge, a positive exponent draws popular items as negatives
    more often, so they are recommended less; a negative one does the
    opposite.  (The softmax corrects for the sampler: logQ.)"""
    X = make_interactions(n_users=300, n_items=200, mean_interactions=12.0, random_state=0)
    means = {}
    for exponent in (-0.5, 0.0, 0.5):
        model = CMLRecommender(n_components=16, n_epochs=15, negative_sampling_exponent=exponent,
                               loss="hinge", random_state=0, n_jobs=1).fit(X)
        means[exponent] = top_popularity(model, X)
    assert means[-0.5] > means[0.0] > means[0.5]


def test_fold_in_uses_the_exponent():
    X = make_interactions(n_users=120, n_items=80, mean_interactions=8.0, random_state=1)
    model = CMLRecommender(n_components=8, n_epochs=5, negative_sampling_exponent=0.0,
                           random_state=0, n_jobs=1).fit(X)
    uniform = model.transform(X[:20])
    model.set_params(negative_sampling_exponent=0.8)
    weighted = model.transform(X[:20])
    assert np.isfinite(weighted).all()
    assert not np.allclose(uniform, weighted)


@pytest.mark.parametrize("exponent", [0.0, 0.3])
def test_single_thread_fits_are_reproducible(exponent):
    X = make_interactions(n_users=100, n_items=60, mean_interactions=6.0, random_state=2)
    params = dict(n_components=8, n_epochs=3, negative_sampling_exponent=exponent,
                  random_state=5, n_jobs=1)
    first = CMLRecommender(**params).fit(X)
    second = CMLRecommender(**params).fit(X)
    np.testing.assert_array_equal(first.item_embeddings_, second.item_embeddings_)
