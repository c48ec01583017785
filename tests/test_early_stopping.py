"""Early stopping: validation recall per epoch, stop on a plateau, keep the best."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions
from sklearn_cml.model_selection import train_test_split

# Every test runs with each solver (conftest.each_solver).
pytestmark = pytest.mark.usefixtures("each_solver")

PARAMS = dict(n_components=8, n_negatives=5, top_k=10, random_state=0)


@pytest.fixture(scope="module")
def X():
    return make_interactions(n_users=400, n_items=120, n_clusters=4, random_state=0)


@pytest.fixture(scope="module")
def stopped_by_solver():
    return {}


@pytest.fixture
def stopped(X, each_solver, stopped_by_solver):
    """A model fitted with early stopping, once per solver."""
    if each_solver not in stopped_by_solver:
        stopped_by_solver[each_solver] = CMLRecommender(
            **PARAMS, n_epochs=200, early_stopping=True, validation_fraction=0.2,
            n_iter_no_change=3,
        ).fit(X)
    return stopped_by_solver[each_solver]


def test_stops_on_a_plateau_before_the_epoch_limit(stopped):
    assert stopped.n_iter_ < 200
    assert len(stopped.validation_scores_) == len(stopped.loss_curve_) == stopped.n_iter_
    # It stopped because the last n_iter_no_change epochs did not improve.
    assert stopped.n_iter_ - stopped.best_epoch_ == 3
    scores = np.array(stopped.validation_scores_)
    assert stopped.best_validation_score_ == scores.max() == scores[stopped.best_epoch_ - 1]
    assert scores.max() > scores[0] + 0.05  # training did improve validation recall


def test_keeps_the_best_epoch(X, stopped):
    train, _ = train_test_split(X, test_size=0.2, random_state=0)
    reference = CMLRecommender(**PARAMS, n_epochs=stopped.best_epoch_).fit(train)
    np.testing.assert_array_equal(stopped.user_embeddings_, reference.user_embeddings_)
    np.testing.assert_array_equal(stopped.item_embeddings_, reference.item_embeddings_)


def test_seen_items_include_the_validation_items(X, stopped):
    assert (stopped.user_items_ != (X > 0)).nnz == 0
    recommended = stopped.recommend(np.arange(20), n_items=5)
    for user, row in enumerate(recommended):
        assert not set(row) & set(X[user].indices)


def test_tol_counts_only_real_gains(X):
    model = CMLRecommender(
        **PARAMS, n_epochs=50, early_stopping=True, n_iter_no_change=2, tol=1.0
    ).fit(X)
    # No gain can exceed 1.0: the first epoch is the best, two more are run.
    assert model.best_epoch_ == 1 and model.n_iter_ == 3


def test_without_early_stopping_the_attributes_are_none(X):
    model = CMLRecommender(**PARAMS, n_epochs=2).fit(X)
    assert model.validation_scores_ is None and model.best_epoch_ is None


def test_verbose_prints_validation_recall(X, capsys):
    CMLRecommender(**PARAMS, n_epochs=2, early_stopping=True, verbose=1).fit(X)
    assert "validation recall@10" in capsys.readouterr().out


def test_no_user_to_validate_on():
    X = sp.identity(30, format="csr")  # one interaction per user
    with pytest.raises(ValueError, match="no user has two or more"):
        CMLRecommender(**PARAMS, early_stopping=True).fit(X)


@pytest.mark.parametrize(
    "param, value",
    [("validation_fraction", 0.0), ("validation_fraction", 1.0), ("n_iter_no_change", 0),
     ("tol", -1.0), ("early_stopping", "yes")],
)
def test_bad_parameters(X, param, value):
    with pytest.raises(ValueError, match=f"The '{param}' parameter"):
        CMLRecommender(**PARAMS, **{param: value}).fit(X)
