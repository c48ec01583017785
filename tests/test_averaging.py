"""Averaging (``average``): the fitted vectors are the mean of the epochs' vectors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_cml import CMLRecommender
from sklearn_cml._steps import update_running_mean
from sklearn_cml.datasets import make_interactions
from sklearn_cml.metrics import ranking_metrics
from sklearn_cml.model_selection import train_test_split

# Every test runs with each solver (conftest.each_solver).
pytestmark = pytest.mark.usefixtures("each_solver")

PARAMS = dict(n_components=6, n_negatives=4, random_state=0, n_jobs=1)
N_EPOCHS = 5
LOSSES = ["hinge", "softmax"]


@pytest.fixture(scope="module")
def X():
    return make_interactions(n_users=60, n_items=40, n_clusters=3, random_state=0)


def epoch_vectors(X, loss):
    """Each epoch's (users, items) of a model trained without averaging, and the model."""
    model = CMLRecommender(**PARAMS, loss=loss, average=False, n_epochs=1).fit(X)
    vectors = [(model.user_embeddings_.copy(), model.item_embeddings_.copy())]
    for _ in range(N_EPOCHS - 1):
        model.partial_fit(X)
        vectors.append((model.user_embeddings_.copy(), model.item_embeddings_.copy()))
    return vectors, model


@pytest.fixture(params=LOSSES)
def trajectory(request, X, each_solver):
    """Per test: the solver is part of what it compares."""
    return request.param, *epoch_vectors(X, request.param)


@pytest.mark.parametrize("average", [True, 3])
def test_fitted_vectors_are_the_mean_of_the_epochs(X, trajectory, average):
    loss, vectors, plain = trajectory
    # Two epochs in fit, the rest by partial_fit: SGD must go on from the
    # last epoch's vectors, not from their mean.
    model = CMLRecommender(**PARAMS, loss=loss, average=average, n_epochs=2).fit(X)
    for _ in range(N_EPOCHS - 2):
        model.partial_fit(X)
    averaged = vectors[int(average) - 1:]
    expected_users = np.mean([users for users, _ in averaged], axis=0)
    expected_items = np.mean([items for _, items in averaged], axis=0)
    np.testing.assert_allclose(model.user_embeddings_, expected_users, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.item_embeddings_, expected_items, rtol=1e-5, atol=1e-6)
    assert model.user_embeddings_.dtype == np.float32
    # Averaging only reads the vectors: training itself is unchanged.
    assert model.loss_curve_ == plain.loss_curve_
    assert not np.allclose(model.item_embeddings_, vectors[-1][1])


def test_averaging_from_the_last_epoch_or_off_keeps_its_vectors(X, trajectory):
    loss, vectors, _ = trajectory
    for average in (False, 0, N_EPOCHS, N_EPOCHS + 1):
        model = CMLRecommender(**PARAMS, loss=loss, average=average, n_epochs=N_EPOCHS).fit(X)
        np.testing.assert_array_equal(model.user_embeddings_, vectors[-1][0])
        np.testing.assert_array_equal(model.item_embeddings_, vectors[-1][1])


def test_turning_averaging_off_publishes_the_sgd_vectors(X, trajectory):
    loss, vectors, _ = trajectory
    model = CMLRecommender(**PARAMS, loss=loss, n_epochs=N_EPOCHS - 1).fit(X)
    model.set_params(average=False).partial_fit(X)
    np.testing.assert_array_equal(model.user_embeddings_, vectors[-1][0])
    np.testing.assert_array_equal(model.item_embeddings_, vectors[-1][1])


@pytest.mark.parametrize("loss", LOSSES)
def test_averaged_model_ranks_held_out_items_better(loss):
    # Noisy SGD (a high learning rate): the mean of the epochs ranks the
    # held-out items of the training users better than the last epoch.
    X = make_interactions(n_users=300, n_items=120, n_clusters=6, random_state=1)
    train, test = train_test_split(X, test_size=0.3, random_state=0)
    common = dict(n_components=8, n_epochs=20, learning_rate=0.5, loss=loss, random_state=0)
    recalls = [
        ranking_metrics(test, CMLRecommender(**common, average=average).fit(train), k=10,
                        exclude=train, metrics=("recall",))["recall"]
        for average in (False, 5)
    ]
    print(f"recall@10, last epoch {recalls[0]:.4f}, mean of epochs 5-20 {recalls[1]:.4f}")
    assert recalls[1] > recalls[0]


@settings(max_examples=30, deadline=None)
@given(
    n_rows=st.integers(1, 7),
    n_columns=st.integers(1, 5),
    n_samples=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_running_mean_matches_numpy(n_rows, n_columns, n_samples, seed):
    samples = np.random.default_rng(seed).uniform(-1, 1, (n_samples, n_rows, n_columns))
    samples = samples.astype(np.float32)
    mean = samples[0].copy()
    for count in range(2, n_samples + 1):
        update_running_mean(mean, samples[count - 1], count)
    np.testing.assert_allclose(mean, samples.astype(np.float64).mean(axis=0), atol=1e-6)
