"""Ranking metrics against a brute-force reference, scorers, bad input."""

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_cml import CMLRecommender, _topk
from sklearn_cml.datasets import make_interactions
from sklearn_cml.metrics import (
    METRICS,
    auc_score,
    hit_rate_at_k,
    make_ranking_scorer,
    map_at_k,
    ndcg_at_k,
    popularity_scores,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)


def orderings(items, scores):
    """Every ranking of ``items`` consistent with ``scores`` (ties permuted)."""
    groups = [
        [item for item in items if scores[item] == value]
        for value in sorted({scores[item] for item in items}, reverse=True)
    ]
    for parts in itertools.product(*(itertools.permutations(group) for group in groups)):
        yield [item for part in parts for item in part]


def metrics_of_ranking(ranking, test, k):
    """Plain-definition metrics of one ranking (best first)."""
    top = ranking[:k]
    hits = sum(item in test for item in top)
    dcg = sum(1 / math.log2(rank + 2) for rank, item in enumerate(top) if item in test)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(test))))
    precisions = [
        sum(i in test for i in top[: rank + 1]) / (rank + 1)
        for rank, item in enumerate(top) if item in test
    ]
    return {
        "recall": hits / len(test),
        "precision": hits / k,
        "hit_rate": float(hits > 0),
        "ndcg": dcg / ideal,
        "map": sum(precisions) / min(k, len(test)),
    }


def brute_force(y_true, y_score, exclude, k):
    """Each metric as a plain loop over users, averaging over tie orders."""
    per_user = {name: [] for name in METRICS}
    for user in range(y_true.shape[0]):
        test = set(np.flatnonzero(y_true[user]))
        candidates = [i for i in range(y_true.shape[1]) if not exclude[user, i]]
        if not test:
            continue
        rankings = list(orderings(candidates, y_score[user]))
        for name in ("recall", "precision", "hit_rate", "ndcg", "map"):
            per_user[name].append(
                np.mean([metrics_of_ranking(r, test, k)[name] for r in rankings])
            )
        negatives = [i for i in candidates if i not in test]
        if negatives:
            pairs = [
                np.sign(y_score[user, t] - y_score[user, n]) / 2 + 0.5
                for t in test for n in negatives
            ]
            per_user["auc"].append(np.mean(pairs))
    return {name: (np.mean(values) if values else None) for name, values in per_user.items()}


@st.composite
def ranking_problems(draw):
    n_users = draw(st.integers(1, 5))
    n_items = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Few distinct score values: many ties.
    y_score = rng.integers(0, draw(st.integers(1, 4)), size=(n_users, n_items)).astype(float)
    y_true = rng.random((n_users, n_items)) < draw(st.floats(0.0, 0.8))
    exclude = (rng.random((n_users, n_items)) < draw(st.floats(0.0, 0.6))) & ~y_true
    k = draw(st.integers(1, 8))
    return y_true, y_score, exclude, k


@settings(max_examples=150, deadline=None)
@given(ranking_problems())
def test_every_metric_equals_brute_force(problem):
    y_true, y_score, exclude, k = problem
    expected = brute_force(y_true, y_score, exclude, k)
    for name in METRICS:
        if expected[name] is None:
            with pytest.raises(ValueError, match="undefined"):
                ranking_metrics(y_true, y_score, k=k, exclude=exclude, metrics=(name,))
        else:
            got = ranking_metrics(y_true, y_score, k=k, exclude=sp.csr_matrix(exclude),
                                  metrics=(name,))[name]
            assert got == pytest.approx(expected[name], abs=1e-9), name


def test_single_metric_functions_agree_with_ranking_metrics():
    rng = np.random.default_rng(0)
    y_true = rng.random((20, 15)) < 0.2
    y_score = rng.random((20, 15))
    exclude = (rng.random((20, 15)) < 0.3) & ~y_true
    together = ranking_metrics(y_true, y_score, k=5, exclude=exclude)
    singles = {
        "recall": recall_at_k, "precision": precision_at_k, "ndcg": ndcg_at_k,
        "map": map_at_k, "hit_rate": hit_rate_at_k,
    }
    for name, function in singles.items():
        assert function(y_true, y_score, k=5, exclude=exclude) == together[name]
    assert auc_score(y_true, y_score, exclude=exclude) == together["auc"]


def test_excluded_items_are_not_ranked():
    # Item 0 is excluded and scores best: it must not take a top slot.
    y_true = np.array([[0, 1, 0]])
    y_score = np.array([[9.0, 5.0, 1.0]])
    assert recall_at_k(y_true, y_score, k=1) == 0.0
    assert recall_at_k(y_true, y_score, k=1, exclude=[[1, 0, 0]]) == 1.0


def test_constant_scores_do_not_favour_low_indices():
    # Ranking by index would put item 0 first; ties give each item 1/4.
    y_true = np.array([[1, 0, 0, 0], [0, 0, 0, 1]])
    assert recall_at_k(y_true, np.zeros((2, 4)), k=1) == pytest.approx(0.25)


def test_model_callable_and_array_give_the_same_metrics(monkeypatch):
    X = make_interactions(n_users=120, n_items=50, random_state=0)
    model = CMLRecommender(n_components=8, n_epochs=3, random_state=0).fit(X)
    test = make_interactions(n_users=120, n_items=50, random_state=1)
    test = test - test.multiply(X)  # no overlap with the training items
    test.eliminate_zeros()
    users, items = model.user_embeddings_.astype(np.float64), model.item_embeddings_
    dense = -((users[:, None, :] - items[None, :, :].astype(np.float64)) ** 2).sum(axis=2)
    from_array = ranking_metrics(test, dense, k=10, exclude=X)
    from_model = ranking_metrics(test, model, k=10, exclude=X)
    # Several small batches instead of one.
    monkeypatch.setattr(_topk, "BATCH_ENTRIES", 7 * 50)
    from_callable = ranking_metrics(test, lambda u: dense[u], k=10, exclude=X)
    for name in METRICS:
        assert from_model[name] == pytest.approx(from_array[name], abs=1e-5)
        assert from_callable[name] == pytest.approx(from_array[name], abs=1e-12)


def test_users_without_test_items_are_skipped():
    y_true = np.array([[1, 0, 0], [0, 0, 0]])
    y_score = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
    assert recall_at_k(y_true, y_score, k=1) == 1.0  # not (1 + 0) / 2


def test_k_larger_than_the_number_of_items():
    y_true = np.array([[1, 0, 1]])
    y_score = np.array([[0.3, 0.2, 0.1]])
    assert recall_at_k(y_true, y_score, k=10) == 1.0
    assert precision_at_k(y_true, y_score, k=10) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: recall_at_k([[1, 0]], [[0.1, 0.2, 0.3]]), "shape"),
        (lambda: recall_at_k([[1, 0]], [[0.1, 0.2]], exclude=[[0, 1, 0]]), "shape"),
        (lambda: recall_at_k([[1, 0]], [[0.1, 0.2]], k=0), "k must be a positive integer"),
        (lambda: recall_at_k([[1, 0]], [[0.1, 0.2]], k=1.5), "k must be a positive integer"),
        (lambda: recall_at_k([[-1, 1]], [[0.1, 0.2]]), "Negative values"),
        (lambda: recall_at_k([[1, 0]], [[0.1, 0.2]], exclude=[[1, 0]]), "share 1 interactions"),
        (lambda: recall_at_k([[1, 0]], [[np.nan, 0.2]]), "NaN"),
        (lambda: ranking_metrics([[1, 0]], [[0.1, 0.2]], metrics=("accuracy",)), "Unknown metric"),
        (lambda: recall_at_k([[0, 0]], [[0.1, 0.2]]), "undefined"),
    ],
)
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_model_of_other_users_is_rejected():
    X = make_interactions(n_users=50, n_items=30, random_state=0)
    model = CMLRecommender(n_components=4, n_epochs=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="fold new users in"):
        recall_at_k(X[:10], model)


def test_scorers_in_grid_search_with_refit():
    X = make_interactions(n_users=300, n_items=80, random_state=0)
    scoring = {name: make_ranking_scorer(name, k=10) for name in ("recall", "ndcg", "auc")}
    search = GridSearchCV(
        CMLRecommender(n_components=8, n_epochs=5, n_negatives=5, random_state=0),
        {"learning_rate": [1e-4, 0.1]}, scoring=scoring, refit="ndcg",
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X)
    for name in scoring:
        values = search.cv_results_[f"mean_test_{name}"]
        assert np.isfinite(values).all() and values[1] > values[0]
    assert search.best_params_ == {"learning_rate": 0.1}
    # The estimator's own score is the recall scorer at its top_k.
    model = search.best_estimator_
    assert model.score(X[:50]) == make_ranking_scorer("recall", k=model.top_k)(model, X[:50])
    assert repr(scoring["ndcg"]) == "make_ranking_scorer('ndcg', k=10)"


def test_make_ranking_scorer_validates():
    with pytest.raises(ValueError, match="Unknown metric"):
        make_ranking_scorer("f1")
    with pytest.raises(ValueError, match="k must be"):
        make_ranking_scorer("recall", k=0)


def test_popularity_scores_count_each_items_users():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, size=(30, 12)) * (rng.random((30, 12)) < 0.4)  # values 0, 1, 2
    scores = popularity_scores(sp.csr_matrix(X))(np.array([0, 5, 5]))
    expected = (X > 0).sum(axis=0)
    assert scores.shape == (3, 12)
    np.testing.assert_array_equal(scores, np.tile(expected, (3, 1)))
