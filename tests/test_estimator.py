"""Behaviour of CMLRecommender: learning, determinism, invariants, queries."""

import pickle

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import (
    SMALL,
    held_out_dense_blocks,
    hold_out,
    planted_blocks,
    recall_of_recommendations,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Binarizer

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions

LOSSES = ["hinge", "softmax"]

# Every test runs with each solver (the fixture sets the default solver).
pytestmark = pytest.mark.usefixtures("each_solver")


@pytest.fixture(scope="module")
def blocks():
    return planted_blocks()


@pytest.mark.parametrize("loss", LOSSES)
def test_same_seed_one_thread_is_bitwise_reproducible(blocks, loss):
    X, _, _ = blocks
    first = CMLRecommender(**SMALL, loss=loss, random_state=3, n_jobs=1).fit(X)
    second = CMLRecommender(**SMALL, loss=loss, random_state=3, n_jobs=1).fit(X)
    np.testing.assert_array_equal(first.user_embeddings_, second.user_embeddings_)
    np.testing.assert_array_equal(first.item_embeddings_, second.item_embeddings_)
    other = CMLRecommender(**SMALL, loss=loss, random_state=4, n_jobs=1).fit(X)
    assert not np.array_equal(first.item_embeddings_, other.item_embeddings_)


@pytest.mark.parametrize("loss", LOSSES)
def test_fit_equals_fit_then_partial_fit(blocks, loss):
    X, _, _ = blocks
    full = CMLRecommender(**{**SMALL, "loss": loss, "n_epochs": 3}, random_state=0).fit(X)
    stepwise = CMLRecommender(**{**SMALL, "loss": loss, "n_epochs": 1}, random_state=0).fit(X)
    stepwise.partial_fit(X).partial_fit(X)
    assert stepwise.n_iter_ == full.n_iter_ == 3
    assert len(stepwise.loss_curve_) == 3
    np.testing.assert_array_equal(stepwise.item_embeddings_, full.item_embeddings_)
    np.testing.assert_array_equal(stepwise.user_embeddings_, full.user_embeddings_)


def test_partial_fit_on_unfitted_model_runs_one_epoch(blocks):
    X, _, _ = blocks
    model = CMLRecommender(**SMALL, random_state=0).partial_fit(X)
    assert model.n_iter_ == 1 and model.user_embeddings_.shape == (X.shape[0], 8)


@pytest.mark.parametrize("loss", LOSSES)
def test_training_lowers_the_loss(blocks, loss):
    X, _, _ = blocks
    model = CMLRecommender(**{**SMALL, "loss": loss, "n_epochs": 15}, random_state=0).fit(X)
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]


@pytest.fixture(scope="module")
def dense_blocks():
    """Fully dense blocks (a checkerboard), 20% of entries held out."""
    return held_out_dense_blocks()


@pytest.mark.parametrize("loss", LOSSES)
def test_planted_blocks_are_recovered(dense_blocks, loss):
    train, test, _, item_block = dense_blocks
    params = {**SMALL, "loss": loss, "n_epochs": 20}
    model = CMLRecommender(**params, top_k=10, random_state=0).fit(train)

    # Each item's nearest items are items of its own block.
    _, neighbors = model.kneighbors_items(n_neighbors=5)
    assert np.mean(item_block[neighbors] == item_block[:, None]) > 0.98

    # A user's held-out items are the only unseen items of its block: a
    # correct model ranks them first.
    assert recall_of_recommendations(model, train, test, n_items=10) > 0.97

    # New users of the same blocks, folded in: their held-out items are found.
    new_users, _, _ = planted_blocks(density=0.7, seed=1)
    assert model.score(new_users) > 0.95


def test_untrained_model_fails_the_planted_test(dense_blocks):
    """The planted test can fail: a model that barely moved does not pass it."""
    train, test, _, item_block = dense_blocks
    model = CMLRecommender(**{**SMALL, "n_epochs": 1}, learning_rate=1e-4, random_state=0)
    model.fit(train)
    _, neighbors = model.kneighbors_items(n_neighbors=5)
    assert np.mean(item_block[neighbors] == item_block[:, None]) < 0.6
    assert recall_of_recommendations(model, train, test, n_items=10) < 0.6


@pytest.mark.parametrize("loss", LOSSES)
def test_several_threads_match_one_thread_quality(loss):
    X = make_interactions(n_users=1200, n_items=300, n_clusters=6, random_state=0)
    train, test = hold_out(X, 0.2)
    params = dict(SMALL, loss=loss, n_components=16, n_epochs=10, random_state=0)
    before = numba.get_num_threads()
    recalls = {}
    for n_jobs in (1, 2):
        model = CMLRecommender(**params, n_jobs=n_jobs).fit(train)
        recalls[n_jobs] = recall_of_recommendations(model, train, test, n_items=20)
    assert numba.get_num_threads() == before
    # Far above chance (20 of 300 items), and the same with two threads.
    assert recalls[1] > 0.3
    assert abs(recalls[1] - recalls[2]) < 0.03


@st.composite
def interaction_matrices(draw):
    """Random sparse matrices in several formats, with empty rows and columns."""
    n_users = draw(st.integers(1, 12))
    n_items = draw(st.integers(2, 10))
    density = draw(st.floats(0.05, 1.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dense = rng.random((n_users, n_items)) < density
    assume(dense.any())
    values = dense * rng.uniform(0.5, 5.0, size=dense.shape)
    return sp.csr_matrix(values).asformat(draw(st.sampled_from(["csr", "csc", "coo"])))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    X=interaction_matrices(),
    max_norm=st.floats(0.05, 3.0),
    learning_rate=st.floats(0.01, 2.0),
    margin=st.floats(0.05, 4.0),
    loss=st.sampled_from(LOSSES),
)
def test_every_vector_stays_in_the_ball(X, max_norm, learning_rate, margin, loss):
    model = CMLRecommender(
        n_components=3, n_negatives=2, n_epochs=3, fold_in_epochs=3, max_norm=max_norm,
        learning_rate=learning_rate, margin=margin, covariance_weight=10.0, random_state=0,
        loss=loss, temperature=margin,
    ).fit(X)
    bound = max_norm * (1 + 1e-6)  # float32 rounding of the projection
    for vectors in (model.user_embeddings_, model.item_embeddings_, model.transform(X)):
        assert np.linalg.norm(vectors.astype(np.float64), axis=1).max() <= bound


def test_fitted_model_does_not_share_memory_with_the_input(blocks):
    X = blocks[0].copy()
    model = CMLRecommender(**SMALL, random_state=0).fit(X)
    seen_before = model.user_items_.toarray()
    X.indices[:] = 0  # the caller reuses its buffers
    np.testing.assert_array_equal(model.user_items_.toarray(), seen_before)


def test_pickle_round_trip_keeps_predictions(blocks):
    X, _, _ = blocks
    model = CMLRecommender(**SMALL, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    np.testing.assert_array_equal(restored.recommend([0, 5]), model.recommend([0, 5]))


def test_recommend_filters_seen_items_and_sorts(blocks):
    X, _, _ = blocks
    model = CMLRecommender(**SMALL, random_state=0).fit(X)
    users = np.arange(0, X.shape[0], 7)
    distances, items = model.recommend(users, n_items=12, return_distance=True)
    for user, row in zip(users, items):
        assert not set(row) & set(X[user].indices)
    assert (np.diff(distances, axis=1) >= 0).all()
    # Brute force: the same distances, in float64.
    exact = np.linalg.norm(
        model.user_embeddings_[users, None, :].astype(np.float64)
        - model.item_embeddings_[items].astype(np.float64), axis=2,
    )
    np.testing.assert_allclose(distances, exact, rtol=1e-3, atol=1e-3)
    unfiltered = model.recommend(users, n_items=12, filter_seen=False)
    assert any(set(row) & set(X[user].indices) for user, row in zip(users, unfiltered))


def test_recommend_pads_when_too_few_items_remain():
    X = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 1, 0, 0]], dtype=float))
    model = CMLRecommender(n_components=2, n_negatives=1, n_epochs=2, random_state=0).fit(X)
    distances, items = model.recommend([0], n_items=3, return_distance=True)
    assert items[0, 0] == 3 and (items[0, 1:] == -1).all()
    assert np.isinf(distances[0, 1:]).all()


def test_kneighbors_items_matches_brute_force(blocks):
    X, _, _ = blocks
    model = CMLRecommender(**SMALL, random_state=0).fit(X)
    query = np.array([0, 17, 42])
    distances, neighbors = model.kneighbors_items(query, n_neighbors=6)
    vectors = model.item_embeddings_.astype(np.float64)
    exact = np.linalg.norm(vectors[query, None, :] - vectors[None, :, :], axis=2)
    exact[np.arange(3), query] = np.inf  # an item is not its own neighbour
    np.testing.assert_allclose(distances, np.sort(exact, axis=1)[:, :6], rtol=1e-3, atol=1e-3)
    assert not (neighbors == query[:, None]).any()
    assert model.kneighbors_items(query, n_neighbors=6, return_distance=False).shape == (3, 6)


@pytest.mark.parametrize("loss", LOSSES)
def test_transform_is_row_wise_and_order_free(blocks, loss):
    X, _, _ = blocks
    model = CMLRecommender(**SMALL, loss=loss, random_state=0).fit(X)
    order = np.random.default_rng(0).permutation(X.shape[0])
    np.testing.assert_array_equal(model.transform(X)[order], model.transform(X[order]))
    np.testing.assert_array_equal(model.transform(X[:3]), model.transform(X)[:3])


def test_transform_of_empty_row_is_the_mean_user(blocks):
    X, _, _ = blocks
    model = CMLRecommender(**SMALL, random_state=0).fit(X)
    empty = sp.csr_matrix((1, X.shape[1]))
    np.testing.assert_allclose(model.transform(empty)[0], model.user_embeddings_.mean(axis=0),
                               rtol=1e-5, atol=1e-6)


def test_score_with_explicit_held_out_items(blocks):
    X, user_block, item_block = blocks
    model = CMLRecommender(**SMALL, top_k=5, random_state=0).fit(X)
    new_users, _, _ = planted_blocks(seed=2)
    rows = new_users.tocoo()
    held = rows.col % 3 == 0
    known = sp.csr_matrix((rows.data[~held], (rows.row[~held], rows.col[~held])), new_users.shape)
    test = sp.csr_matrix((rows.data[held], (rows.row[held], rows.col[held])), new_users.shape)
    recommended = model.predict(known)
    # Reference recall, as a plain loop over users.
    recalls = []
    for user in range(known.shape[0]):
        truth = set(test[user].indices)
        if truth:
            recalls.append(len(truth & set(recommended[user])) / len(truth))
    assert model.score(known, test) == pytest.approx(np.mean(recalls))


@pytest.mark.parametrize("loss", LOSSES)
def test_divergence_is_reported_not_returned(blocks, loss):
    X, _, _ = blocks
    model = CMLRecommender(**SMALL, loss=loss, random_state=0).fit(X)
    before = model.item_embeddings_.copy()
    model.set_params(learning_rate=1e30, max_norm=1e30, covariance_weight=0.0)
    with pytest.raises(FloatingPointError, match="[Ll]ower the learning rate"):
        model.partial_fit(X)
    np.testing.assert_array_equal(model.item_embeddings_, before)
    with pytest.raises(FloatingPointError, match="[Ll]ower the learning rate"):
        CMLRecommender(**SMALL, loss=loss, learning_rate=1e30, max_norm=1e30,
                       random_state=0).fit(X)


def test_verbose_reports_each_epoch(blocks, capsys):
    X, _, _ = blocks
    CMLRecommender(**{**SMALL, "n_epochs": 3}, verbose=1, random_state=0).fit(X)
    lines = [line for line in capsys.readouterr().out.splitlines() if "epoch" in line]
    assert len(lines) == 3 and "loss" in lines[0]


def test_grid_search_cross_validation_and_pipeline(blocks):
    X, _, _ = blocks
    search = GridSearchCV(
        CMLRecommender(**SMALL, top_k=5, random_state=0),
        {"learning_rate": [1e-4, 0.1], "loss": LOSSES},
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X)
    # A learning rate of 1e-4 barely moves the random start: clearly worse,
    # with either loss.
    assert search.best_params_["learning_rate"] == 0.1
    scores = dict(zip(map(str, search.cv_results_["params"]),
                      search.cv_results_["mean_test_score"]))
    for loss in LOSSES:
        slow = scores[str({"learning_rate": 1e-4, "loss": loss})]
        assert scores[str({"learning_rate": 0.1, "loss": loss})] > slow + 0.2
    assert cross_val_score(CMLRecommender(**SMALL, top_k=5, random_state=0), X, cv=3).shape == (3,)

    ratings = X.multiply(np.random.default_rng(0).integers(1, 6, size=X.shape)).tocsr()
    pipeline = make_pipeline(Binarizer(threshold=3.5), CMLRecommender(**SMALL, top_k=5,
                                                                      random_state=0))
    pipeline.fit(ratings)
    assert pipeline.predict(ratings[:4]).shape == (4, 5)
    assert 0.0 <= pipeline.score(ratings) <= 1.0
