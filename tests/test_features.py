"""Item features: the MLP's gradients, the feature loss, cold start, bad input."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from _numerics import central_difference

from sklearn_cml import CMLRecommender
from sklearn_cml._features import (
    Encoder,
    EncoderGradSq,
    FeatureRows,
    FeatureStep,
    embed_items,
    feature_epoch,
    feature_loss_factors,
    mlp_forward,
)
from sklearn_cml._rng import seed_states
from sklearn_cml.datasets import make_interactions
from sklearn_cml.metrics import embedding_scores, ranking_metrics

# Every test runs with each solver (conftest.each_solver).
pytestmark = pytest.mark.usefixtures("each_solver")


def test_mlp_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    n_features, n_hidden, n_components, weight = 7, 5, 4, 0.8
    params = {
        "w1": rng.normal(size=(n_features, n_hidden)), "b1": rng.normal(size=n_hidden) * 0.1,
        "w2": rng.normal(size=(n_hidden, n_components)), "b2": rng.normal(size=n_components),
        "v": rng.normal(size=n_components),
    }
    indices = np.array([1, 4, 6], dtype=np.int32)
    values = np.array([0.5, 1.0, -2.0])
    keep_mask = np.array([2.0, 0.0, 2.0, 2.0, 0.0])  # dropout 0.5, two units dropped
    buffers = [np.empty(n_hidden), np.empty(n_hidden), np.empty(n_components),
               np.empty(n_components), np.empty(n_hidden)]

    def loss_and_factors(p):
        hidden_pre, hidden, output, grad_output, grad_hidden = (b.copy() for b in buffers)
        mlp_forward(indices, values, p["w1"], p["b1"], p["w2"], p["b2"], keep_mask,
                    hidden_pre, hidden, output)
        loss = feature_loss_factors(p["v"], weight, p["w2"], hidden_pre, keep_mask, output,
                                    grad_output, grad_hidden)
        return loss, hidden, grad_output, grad_hidden

    _, hidden, g, d = loss_and_factors(params)
    analytic = {
        "v": -g, "b2": g, "w2": np.outer(hidden, g), "b1": d,
        "w1": np.zeros((n_features, n_hidden)),
    }
    analytic["w1"][indices] = values[:, None] * d
    for name, value in params.items():
        numeric = central_difference(
            lambda x, name=name: loss_and_factors({**params, name: x})[0], value
        )
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-5, atol=1e-7, err_msg=name)


def test_feature_loss_pulls_item_vectors_toward_the_mlp_output():
    rng = np.random.default_rng(1)
    n_items, n_features, n_hidden, n_components = 40, 6, 8, 4
    features = sp.random(n_items, n_features, density=0.5, random_state=1, format="csr",
                         dtype=np.float32)
    items = (rng.normal(size=(n_items, n_components)) * 0.3).astype(np.float32)
    w1 = rng.normal(size=(n_features, n_hidden)).astype(np.float32)
    w2 = (rng.normal(size=(n_hidden, n_components)) * 0.3).astype(np.float32)
    b1, b2 = np.zeros(n_hidden, np.float32), np.zeros(n_components, np.float32)
    rows = FeatureRows(features.indptr.astype(np.int64), features.indices.astype(np.int32),
                       features.data.astype(np.float32), n_features)
    encoder = Encoder(w1, b1, w2, b2)
    grad_sq = EncoderGradSq(np.full(n_features, 0.1, np.float32),
                            np.full(n_hidden, 0.1, np.float32), np.full(2, 0.1, np.float32))

    def gap():
        out = np.empty_like(items)
        embed_items(rows, encoder, np.float32(10.0), out)
        return np.linalg.norm(out - items, axis=1).mean()

    before = gap()
    states = seed_states(0, 4)
    step = FeatureStep(np.float32(1.0), np.float32(0.05), np.float32(0.05), np.float32(10.0),
                       np.float32(1.0))
    for _ in range(30):
        feature_epoch(np.arange(n_items, dtype=np.int32), rows, items,
                      np.full(n_items, 0.1, np.float32), encoder, grad_sq, step, states,
                      np.zeros(4))
    # Every weight and its AdaGrad sum moved (writes reach the arrays).
    assert all((array != 0.1).any() for array in grad_sq)
    assert gap() < 0.3 * before


@pytest.fixture(scope="module")
def cold_start_problem():
    """Items' tastes are their cluster; 20% of items never seen in training."""
    X, _, item_clusters = make_interactions(
        n_users=800, n_items=300, n_clusters=6, cluster_affinity=0.95, random_state=0,
        return_labels=True,
    )
    features = np.eye(6, dtype=np.float32)[item_clusters]
    cold = np.random.default_rng(0).random(X.shape[1]) < 0.2
    keep = sp.diags((~cold).astype(np.float32))
    train = (X @ keep).tocsr()
    train.eliminate_zeros()
    return train, X[:, np.flatnonzero(cold)], features, cold


def cold_start_metrics(users, cold_vectors, test):
    return ranking_metrics(test, embedding_scores(users, cold_vectors), k=10,
                           metrics=("recall", "auc"))


@pytest.mark.parametrize("cold_start", ["neighbors", "network"])
def test_cold_start_items_are_recommended_from_features(cold_start_problem, cold_start):
    train, test, features, cold = cold_start_problem
    params = dict(n_components=16, n_epochs=20, hidden_size=32, random_state=0,
                  cold_start=cold_start)
    with_features = CMLRecommender(**params).fit(train, item_features=features)
    found = cold_start_metrics(
        with_features.user_embeddings_, with_features.transform_items(features[cold]), test
    )
    # Popularity cannot tell unseen items apart: all tie at zero, i.e. random.
    popularity = ranking_metrics(test, np.zeros(test.shape), k=10, metrics=("recall",))
    random_recall = 10 / cold.sum()
    assert popularity["recall"] == pytest.approx(random_recall)
    assert found["recall"] > 3 * random_recall and found["auc"] > 0.85

    without = CMLRecommender(**params).fit(train)
    blind = cold_start_metrics(without.user_embeddings_, without.item_embeddings_[cold], test)
    assert blind["recall"] < 1.5 * random_recall and blind["auc"] < 0.6


@pytest.mark.parametrize("cold_start", ["neighbors", "network"])
def test_cold_items_are_recommended_and_matched(cold_start_problem, cold_start):
    train, _, features, cold = cold_start_problem
    model = CMLRecommender(n_components=16, n_epochs=10, hidden_size=32, random_state=0,
                           cold_start=cold_start)
    model.fit(train, item_features=features)
    cold_features = features[cold]
    items = model.recommend([0, 1, 2], n_items=5, item_features=cold_features)
    assert items.shape == (3, 5) and items.max() < cold.sum()
    _, neighbors = model.kneighbors_items(item_features=cold_features[:4], n_neighbors=3)
    # A cold item's nearest known items share its features (its cluster).
    same = (features[neighbors] == cold_features[:4, None, :]).all(axis=2)
    assert same.mean() > 0.9


def test_features_training_is_reproducible_and_pickles(cold_start_problem):
    train, _, features, _ = cold_start_problem
    params = dict(n_components=8, n_epochs=3, hidden_size=16, random_state=0,
                  cold_start="network")
    first = CMLRecommender(**params).fit(train, item_features=sp.csr_matrix(features))
    second = CMLRecommender(**params).fit(train, item_features=features)
    np.testing.assert_array_equal(first.feature_encoder_["w1"], second.feature_encoder_["w1"])
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(restored.transform_items(features),
                                  first.transform_items(features))
    assert len(first.feature_loss_curve_) == 3
    first.partial_fit(train, item_features=features)
    assert first.n_iter_ == 4 and len(first.feature_loss_curve_) == 4


def test_neighbor_placement_leaves_training_alone_and_pickles(cold_start_problem):
    """cold_start="neighbors" trains exactly as without features (the same
    vectors, so warm items cannot get worse), and its placements survive
    pickling and partial_fit."""
    train, _, features, cold = cold_start_problem
    params = dict(n_components=8, n_epochs=3, random_state=0)
    with_features = CMLRecommender(**params).fit(train, item_features=features)
    without = CMLRecommender(**params).fit(train)
    np.testing.assert_array_equal(with_features.item_embeddings_, without.item_embeddings_)
    assert with_features.feature_encoder_ is None and with_features.feature_idf_.shape == (6,)
    restored = pickle.loads(pickle.dumps(with_features))
    np.testing.assert_array_equal(restored.transform_items(features[cold]),
                                  with_features.transform_items(features[cold]))
    with_features.partial_fit(train, item_features=features)
    assert with_features.n_iter_ == 4
    with pytest.raises(ValueError, match="cold_start='neighbors'"):
        with_features.set_params(cold_start="network").transform_items(features)


def test_fit_leaves_the_callers_feature_matrix_alone(cold_start_problem):
    train, _, features, _ = cold_start_problem
    ones = np.ones((features.shape[0], 1), dtype=np.float32)
    with_constant = sp.csr_matrix(np.hstack([features, ones]))  # float32: no conversion copy
    # Two entries per row, swapped: valid CSR, but not in canonical order.
    indices = with_constant.indices.reshape(-1, 2)[:, ::-1].ravel().copy()
    data = with_constant.data.reshape(-1, 2)[:, ::-1].ravel().copy()
    unsorted = sp.csr_matrix((data, indices, with_constant.indptr), shape=with_constant.shape)
    assert not unsorted.has_canonical_format
    indices_before = unsorted.indices.copy()
    CMLRecommender(n_components=4, n_epochs=1, hidden_size=4, random_state=0).fit(
        train, item_features=unsorted
    )
    np.testing.assert_array_equal(unsorted.indices, indices_before)


@pytest.fixture(params=["neighbors", "network"])
def fitted(cold_start_problem, request):
    train, _, features, _ = cold_start_problem
    return CMLRecommender(n_components=8, n_epochs=2, hidden_size=8, random_state=0,
                          cold_start=request.param).fit(train, item_features=features)


def with_value(features, value):
    bad = features.copy()
    bad[0, 0] = value
    return bad


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, X, F: m.fit(X, item_features=F[:-1]), "rows but X has 300 items"),
        (lambda m, X, F: m.fit(X, item_features=with_value(F, np.nan)), "NaN"),
        (lambda m, X, F: m.fit(X, item_features=with_value(F, np.inf)), "infinity"),
        (lambda m, X, F: m.transform_items(F[:, :-1]), "fitted with 6"),
        (lambda m, X, F: m.recommend([0], item_features=F[:, :-1]), "fitted with 6"),
        (lambda m, X, F: m.kneighbors_items([0], item_features=F), "not both"),
        (lambda m, X, F: m.partial_fit(X), "exactly when the model was fitted"),
        (lambda m, X, F: m.partial_fit(X, item_features=F[:, :-1]), "fitted with 6"),
        # Features are counts or weights: negative ones are refused, wherever given.
        (lambda m, X, F: m.fit(X, item_features=with_value(F, -1.0)),
         "1 negative value.*row 0, column 0.*MinMaxScaler"),
        (lambda m, X, F: m.partial_fit(X, item_features=with_value(F, -1.0)), "1 negative"),
        (lambda m, X, F: m.transform_items(-F[:3]), "3 negative value.*row 0"),
        (lambda m, X, F: m.recommend([0], item_features=with_value(F, -0.5)), "1 negative"),
        (lambda m, X, F: m.kneighbors_items(item_features=sp.csr_matrix(-F[:2])),
         "2 negative"),
    ],
)
def test_bad_features_are_rejected_and_model_unchanged(fitted, cold_start_problem, call, message):
    train, _, features, _ = cold_start_problem
    snapshot = pickle.dumps(fitted)
    with pytest.raises(ValueError, match=message):
        call(fitted, train, features)
    before = pickle.loads(snapshot)
    np.testing.assert_array_equal(fitted.item_embeddings_, before.item_embeddings_)
    if fitted.feature_encoder_ is not None:
        np.testing.assert_array_equal(fitted.feature_encoder_["w2"],
                                      before.feature_encoder_["w2"])
    np.testing.assert_array_equal(fitted.feature_idf_, before.feature_idf_)
    assert fitted.n_iter_ == before.n_iter_


def test_items_from_features_need_a_model_fitted_with_them(cold_start_problem):
    train, _, features, _ = cold_start_problem
    model = CMLRecommender(n_components=4, n_epochs=1, random_state=0).fit(train)
    with pytest.raises(ValueError, match="fitted without item_features"):
        model.transform_items(features)
    with pytest.raises(ValueError, match="exactly when the model was fitted"):
        model.partial_fit(train, item_features=features)


@pytest.mark.parametrize("param, value", [("feature_weight", -1.0), ("hidden_size", 0),
                                          ("dropout", 1.0), ("dropout", -0.1),
                                          ("feature_learning_rate", 0.0),
                                          ("cold_start", "mlp"), ("cold_start_neighbors", 0),
                                          ("content_weight", -1.0)])
def test_bad_feature_parameters(cold_start_problem, param, value):
    train, _, features, _ = cold_start_problem
    with pytest.raises(ValueError, match=f"The '{param}' parameter"):
        CMLRecommender(**{param: value}).fit(train, item_features=features)
