"""recommend's candidate options, similar_users, pair_distances and
predict's n_items, against brute-force rankings of the fitted vectors."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions


@pytest.fixture(scope="module")
def fitted():
    X = make_interactions(n_users=80, n_items=40, random_state=0)
    return CMLRecommender(n_components=6, n_epochs=3, random_state=0).fit(X), X


def brute_force(model, users, allowed):
    """For each user, the allowed items (boolean matrix) sorted by distance,
    equal distances in item order."""
    diff = model.user_embeddings_[users, None, :] - model.item_embeddings_[None, :, :]
    distances = np.sqrt((diff.astype(np.float64) ** 2).sum(axis=2))
    return [np.flatnonzero(row)[np.argsort(dist[row], kind="stable")]
            for dist, row in zip(distances, allowed)]


def check_ranking(found, expected, n_items):
    for row, ranked in zip(found, expected):
        kept = row[row >= 0]
        assert kept.shape[0] == min(n_items, ranked.shape[0])
        # Near-equal distances may swap in float32: compare as sets, then
        # check the order up to ties with the reference's distances.
        assert set(kept) == set(ranked[: kept.shape[0]])


def test_items_restricts_the_candidates(fitted):
    model, X = fitted
    users, items = np.array([0, 5, 9]), np.array([3, 7, 8, 11, 20, 21, 30])
    found = model.recommend(users, n_items=4, items=items)
    allowed = np.zeros((3, X.shape[1]), bool)
    allowed[:, items] = True
    allowed &= X[users].toarray() == 0
    check_ranking(found, brute_force(model, users, allowed), 4)
    assert np.isin(found[found >= 0], items).all()
    # Together, the candidates are the items of ``items`` not filtered out,
    # the same for every user: a filter of everything leaves none.
    allowed[:, [7, 8]] = False
    narrowed = model.recommend(users, n_items=4, items=items, filter_items=[7, 8])
    check_ranking(narrowed, brute_force(model, users, allowed), 4)
    assert model.recommend(users, n_items=4, filter_items=np.arange(X.shape[1])).shape == (3, 0)


def test_filter_items_and_current_interactions(fitted):
    model, X = fitted
    users = np.array([1, 2])
    current = sp.csr_matrix(np.eye(2, X.shape[1], k=10, dtype=np.float32))  # items 10 and 11
    banned = [0, 1, 2, 3]
    found = model.recommend(users, n_items=50, filter_items=banned, user_items=current)
    allowed = np.ones((2, X.shape[1]), bool)
    allowed[:, banned] = False
    allowed[[0, 1], [10, 11]] = False  # the current interactions, not fit's
    check_ranking(found, brute_force(model, users, allowed), 50)
    padded = found.shape[1] - allowed.sum(axis=1)
    assert ((found == -1).sum(axis=1) == padded).all()


def test_distances_agree_with_pair_distances(fitted):
    model, _ = fitted
    distances, items = model.recommend([4], n_items=5, return_distance=True, items=[1, 2, 3, 9])
    np.testing.assert_allclose(distances[0, :4], model.pair_distances([4] * 4, items[0, :4]),
                               rtol=1e-5)
    expected = np.linalg.norm(model.user_embeddings_[[0, 3]] - model.item_embeddings_[[2, 7]],
                              axis=1)
    np.testing.assert_allclose(model.pair_distances([0, 3], [2, 7]), expected, rtol=1e-5)


def test_similar_users_are_the_nearest_others(fitted):
    model, _ = fitted
    distances, neighbors = model.similar_users([0, 7], n_users=5)
    vectors = model.user_embeddings_.astype(np.float64)
    for user, row, dist in zip([0, 7], neighbors, distances):
        assert user not in row
        reference = np.linalg.norm(vectors - vectors[user], axis=1)
        reference[user] = np.inf
        np.testing.assert_allclose(dist, np.sort(reference)[:5], rtol=1e-4, atol=1e-6)
    assert model.similar_users(n_users=3, return_distance=False).shape == (80, 3)


def test_predict_takes_a_number_of_items(fitted):
    model, X = fitted
    assert model.predict(X[:4], n_items=3).shape == (4, 3)
    assert model.predict(X[:4]).shape == (4, model.top_k if model.top_k < 40 else 40)


@pytest.mark.parametrize(
    "call, message",
    [(lambda m, X: m.recommend([0], items=[40]), "items contains 40"),
     (lambda m, X: m.recommend([0], filter_items=[-1]), "filter_items contains -1"),
     (lambda m, X: m.recommend([0, 1], user_items=X[:3]), "user_items has 3 rows"),
     (lambda m, X: m.recommend([0], user_items=X[:1, :5]), "5 features"),
     (lambda m, X: m.recommend([0], items=[1], item_features=np.eye(2)), "one or the other"),
     (lambda m, X: m.pair_distances([0, 1], [2]), "one user and one item per pair"),
     (lambda m, X: m.pair_distances([80], [0]), "user_ids contains 80"),
     (lambda m, X: m.similar_users([0], n_users=0), "n_users must be a positive integer"),
     (lambda m, X: m.predict(X[:2], n_items=0), "n_items must be a positive integer")],
)
def test_bad_arguments_are_named(fitted, call, message):
    model, X = fitted
    with pytest.raises(ValueError, match=message):
        call(model, X)
