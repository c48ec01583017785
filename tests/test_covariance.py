"""The covariance (decorrelation) loss against numpy and finite differences."""

import numpy as np
import pytest
from _numerics import central_difference

from sklearn_cml._covariance import (
    covariance_gradient,
    covariance_loss,
    covariance_step,
    off_diagonal_covariance,
)
from sklearn_cml._steps import Embeddings, Optimizer


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
    embeddings = Embeddings(users, np.full(200, 0.1, dtype=np.float32), items,
                            np.full(50, 0.1, dtype=np.float32))
    optimizer = Optimizer(np.float32(0.05), np.float32(1.0))
    losses = [covariance_step(embeddings, 1e4, optimizer) for _ in range(50)]
    assert losses[-1] < 0.2 * losses[0]


def test_auto_covariance_interval_grows_with_the_vectors():
    """"auto": 10 pairs per user and item vector, so the steps' cost per
    epoch grows linearly with the data; an int is taken as given."""
    from _helpers import config_of

    from sklearn_cml._interactions import Interactions

    data = Interactions(np.zeros(7, np.int64), np.zeros(0, np.int32), 40)  # 6 users
    assert config_of(data, covariance_interval="auto").covariance_interval == 460
    assert config_of(data, covariance_interval=123).covariance_interval == 123
