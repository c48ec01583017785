"""Content-based cold start: TF-IDF rows, neighbour placement and the score,
against numpy references; and a planted structure it must recover."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfTransformer

from sklearn_cml import CMLRecommender
from sklearn_cml._content import (
    fit_content,
    place_by_neighbors,
    tfidf_rows,
    top_k_by_score,
)
from sklearn_cml._features import validate_item_features
from sklearn_cml.metrics import ranking_metrics


def random_features(rng, n_items, n_features, density):
    """Small integer counts, so that similarities tie now and then."""
    mask = rng.random((n_items, n_features)) < density
    return sp.csr_matrix(mask * rng.integers(1, 3, size=mask.shape), dtype=np.float32)


def reference_placement(features, counts, new_features, vectors, k):
    """Brute force: TF-IDF with sklearn, dense cosines, a stable sort."""
    trained = counts > 0
    transformer = TfidfTransformer().fit(features[trained])
    known = transformer.transform(features).toarray() * trained[:, None]
    new = transformer.transform(new_features).toarray()
    similarity = new @ known.T
    out = np.empty((new.shape[0], vectors.shape[1]))
    for row, scores in enumerate(similarity):
        order = np.argsort(-scores, kind="stable")[:k]
        order = order[scores[order] > 1e-6]
        if order.size == 0:
            out[row] = vectors[trained].mean(axis=0)
            continue
        weights = scores[order] ** 2
        out[row] = weights @ vectors[order] / weights.sum()
    return out


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.floats(0.05, 0.5))
def test_placement_matches_brute_force(seed, k, density):
    rng = np.random.default_rng(seed)
    n_items, n_features = 30, 8
    features = random_features(rng, n_items, n_features, density)
    counts = rng.integers(0, 3, size=n_items)  # about a third never trained
    new_features = random_features(rng, 7, n_features, density)
    vectors = rng.normal(size=(n_items, 4)).astype(np.float32)
    content = fit_content(validate_item_features(features, n_items), counts)
    placed = place_by_neighbors(content, tfidf_rows(content, new_features), vectors, k)
    expected = reference_placement(features, counts, new_features, vectors, k)
    np.testing.assert_allclose(placed, expected, rtol=1e-4, atol=1e-5)


def test_untrained_items_are_never_neighbours():
    features = sp.csr_matrix(np.eye(3, dtype=np.float32))
    vectors = np.array([[1, 0], [0, 1], [5, 5]], np.float32)
    content = fit_content(validate_item_features(features, 3), np.array([1, 1, 0]))
    # The new item shares only item 2's feature, and item 2 was never
    # trained: it goes to the mean of the trained items.
    new = tfidf_rows(content, sp.csr_matrix(np.array([[0, 0, 1]], np.float32)))
    np.testing.assert_allclose(place_by_neighbors(content, new, vectors, 2), [[0.5, 0.5]])


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 8.0), st.integers(1, 12))
def test_score_ranking_matches_brute_force(seed, content_weight, k):
    rng = np.random.default_rng(seed)
    n_users, n_items, n_new, n_features = 9, 20, 10, 6
    features = random_features(rng, n_items, n_features, 0.4)
    user_items = sp.csr_matrix(rng.random((n_users, n_items)) < 0.2, dtype=np.float32)
    content = fit_content(validate_item_features(features, n_items),
                          np.asarray(user_items.sum(axis=0)).ravel())
    new_rows = tfidf_rows(content, random_features(rng, n_new, n_features, 0.4))
    users = rng.uniform(-0.5, 0.5, size=(n_users, 3)).astype(np.float32)
    candidates = rng.uniform(-0.5, 0.5, size=(n_new, 3)).astype(np.float32)
    distances, items = top_k_by_score(users, user_items, candidates, new_rows, content,
                                      content_weight, 2.0, k)
    sq = ((users[:, None, :] - candidates[None]) ** 2).sum(axis=2)
    profiles = (user_items @ content.rows).toarray()
    norms = np.linalg.norm(profiles, axis=1, keepdims=True)
    cosine = np.divide(profiles, norms, out=np.zeros_like(profiles), where=norms > 0)
    scores = -sq / 4.0 + content_weight * (cosine @ new_rows.toarray().T)
    assert items.shape == (n_users, min(k, n_new))
    for user in range(n_users):
        # The returned items are best first: their scores never increase,
        # and no item left out scores above the last one returned.
        chosen = scores[user, items[user]]
        assert np.all(np.diff(chosen) <= 1e-5)
        left_out = np.setdiff1d(np.arange(n_new), items[user])
        assert left_out.size == 0 or scores[user, left_out].max() <= chosen[-1] + 1e-5
        np.testing.assert_allclose(distances[user], np.sqrt(sq[user, items[user]]), rtol=1e-4,
                                   atol=1e-5)


def planted_tag_problem(seed=0):
    """Six clusters of items with 30 tags each; an item carries 2 of its
    cluster's tags; a user likes 8 items of one cluster.  A cold item
    often shares no tag with a user's few training items, but always with
    other items of its cluster."""
    rng = np.random.default_rng(seed)
    n_users, n_items, n_clusters, tags_per_cluster = 600, 420, 6, 30
    item_cluster = np.arange(n_items) % n_clusters
    tags = np.zeros((n_items, n_clusters * tags_per_cluster), np.float32)
    for item, cluster in enumerate(item_cluster):
        chosen = rng.choice(tags_per_cluster, size=2, replace=False)
        tags[item, cluster * tags_per_cluster + chosen] = 1.0
    X = np.zeros((n_users, n_items), np.float32)
    for user in range(n_users):
        members = np.flatnonzero(item_cluster == user % n_clusters)
        X[user, rng.choice(members, size=8, replace=False)] = 1.0
    cold = rng.random(n_items) < 0.2
    train = sp.csr_matrix(X * ~cold)
    return train, sp.csr_matrix(X[:, cold]), tags, cold


def test_planted_clusters_rank_above_content_similarity():
    """Cold items ranked for each user among the cold ones: the default
    cold start (neighbour placement plus the content term) finds the
    user's cluster where content similarity sees no shared tag."""
    train, test, tags, cold = planted_tag_problem()
    model = CMLRecommender(n_components=16, n_epochs=30, random_state=0)
    model.fit(train, item_features=tags)
    users = np.arange(train.shape[0])
    ranked = model.recommend(users, n_items=int(cold.sum()), item_features=tags[cold])
    ours = np.zeros(test.shape, np.float32)
    np.put_along_axis(ours, ranked, -np.arange(ranked.shape[1], dtype=np.float32), axis=1)
    # The content baseline a user would write: TF-IDF rows (idf over the
    # trained items), each user's profile the sum of their items' rows.
    transformer = TfidfTransformer().fit(tags[~cold])
    profiles = train @ transformer.transform(tags).toarray()
    content = profiles @ transformer.transform(tags[cold]).toarray().T
    recall = {name: ranking_metrics(test, scores, k=10, metrics=("recall",))["recall"]
              for name, scores in (("ours", ours), ("content", content))}
    random_recall = 10 / cold.sum()
    assert recall["content"] > 2 * random_recall  # content is a real baseline here
    assert recall["ours"] > 1.2 * recall["content"], recall


@pytest.mark.parametrize("content_weight", [0.0, 4.0])
def test_recommend_with_features_is_a_ranking_of_new_items(content_weight):
    train, _, tags, cold = planted_tag_problem()
    model = CMLRecommender(n_components=8, n_epochs=2, random_state=0,
                           content_weight=content_weight).fit(train, item_features=tags)
    distances, items = model.recommend([0, 1], n_items=5, item_features=tags[cold],
                                       return_distance=True)
    placed = model.transform_items(tags[cold])
    assert items.shape == (2, 5) and len(set(items[0])) == 5
    expected = np.linalg.norm(model.user_embeddings_[[0, 1], None] - placed[items], axis=2)
    np.testing.assert_allclose(distances, expected, rtol=1e-4, atol=1e-5)
