"""Early stopping: validation recall per epoch, stop on a plateau, keep the best."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_cml import CMLRecommender, _holdout
from sklearn_cml.datasets import make_interactions
from sklearn_cml.model_selection import train_test_split

# Every test runs with each solver (conftest.each_solver).
pytestmark = pytest.mark.usefixtures("each_solver")

# An explicit temperature: these tests are about stopping, not about
# temperature="auto" (tests/test_temperature.py).
PARAMS = dict(n_components=8, n_negatives=5, top_k=10, temperature=0.3, random_state=0)


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
    # (The pool is sized on the matrix given to fit, not on its training part.)
    pool_size = stopped.resolved_params_.get("pool_size", "auto")
    reference = CMLRecommender(**PARAMS, n_epochs=stopped.best_epoch_,
                               pool_size=pool_size).fit(train)
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


# ------------------------------------------------------ early_stopping="auto"


@pytest.fixture(scope="module")
def planted():
    """Users and items in 6 taste clusters; large enough for "auto"'s holdout."""
    X, user_labels, item_labels = make_interactions(
        n_users=2500, n_items=300, n_clusters=6, mean_interactions=12, random_state=1,
        return_labels=True)
    return X, user_labels, item_labels


def own_cluster_share(model, user_labels, item_labels, n_items=10):
    """Share of each user's top recommendations that lie in the user's own cluster."""
    recommended = model.recommend(np.arange(len(user_labels)), n_items=n_items)
    return float(np.mean(item_labels[recommended] == user_labels[:, None]))


def test_auto_stops_at_the_plateau_after_recovering_the_planted_clusters(planted):
    X, user_labels, item_labels = planted
    model = CMLRecommender(n_components=8, n_epochs=200, early_stopping="auto",
                           random_state=0).fit(X)
    assert model.resolved_params_["early_stopping"] is True
    # It stopped by itself: the last 5 validations gained less than 0.25% on
    # the 5 before...
    assert model.n_iter_ < 200
    scores = np.array(model.validation_scores_)
    assert len(scores) == model.n_iter_
    assert scores[-5:].mean() <= scores[-10:-5].mean() * (1 + _holdout.PLATEAU_GAIN)
    assert scores.max() == scores[model.best_epoch_ - 1]
    # ...not before the clusters were found: 90% of the picks are in-cluster,
    # so a fit that knows them recommends in-cluster (chance: 1 in 6).
    assert own_cluster_share(model, user_labels, item_labels) > 0.9
    # ...and no worse than running all 200 epochs on every interaction.
    everything = CMLRecommender(n_components=8, n_epochs=200, early_stopping=False,
                                random_state=0).fit(X)
    assert (own_cluster_share(model, user_labels, item_labels)
            >= own_cluster_share(everything, user_labels, item_labels) - 0.02)


def test_auto_holds_out_a_few_pairs_and_keeps_them_as_seen(planted):
    X = planted[0]
    model = CMLRecommender(n_components=8, n_epochs=3, early_stopping="auto",
                           random_state=0).fit(X)
    assert model.best_epoch_ is not None
    # One pair of each of 2% of the interactions' worth of users (< 2,000 here).
    train_sizes = model.user_items_.getnnz(axis=1)
    assert (model.user_items_ != (X > 0)).nnz == 0 and train_sizes.sum() == X.nnz
    recommended = model.recommend(np.arange(50), n_items=5)
    for user, row in enumerate(recommended):
        assert not set(row) & set(X[user].indices)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_an_explicit_early_stopping_wins_over_auto(planted, early_stopping):
    X = planted[0]
    model = CMLRecommender(n_components=8, n_epochs=4, early_stopping=early_stopping,
                           covariance_interval=500, temperature=0.3, pool_size=256,
                           random_state=0).fit(X)
    # Explicit values are not "resolved": only what was left at "auto" is.
    assert model.resolved_params_ == {}
    assert (model.best_epoch_ is not None) == early_stopping
    if not early_stopping:
        assert model.n_iter_ == 4 and model.validation_scores_ is None


def test_the_default_runs_every_epoch(planted):
    model = CMLRecommender(n_components=8, n_epochs=4, random_state=0).fit(planted[0])
    assert "early_stopping" not in model.resolved_params_
    assert model.n_iter_ == 4 and model.best_epoch_ is None


def test_auto_on_small_data_runs_every_epoch(X):
    model = CMLRecommender(**PARAMS, n_epochs=4, early_stopping="auto").fit(X)
    assert model.resolved_params_["early_stopping"] is False
    assert model.n_iter_ == 4 and model.best_epoch_ is None


def test_verbose_says_what_auto_resolved_and_why_it_stopped(planted, capsys):
    CMLRecommender(n_components=8, n_epochs=100, early_stopping="auto", random_state=0,
                   verbose=1).fit(planted[0])
    out = capsys.readouterr().out
    assert "Resolved from the data: " in out and "covariance_interval=" in out
    assert "early_stopping=True" in out
    assert "held-out interactions of" in out
    assert "Early stopping at epoch" in out and "keeping the vectors of epoch" in out
    assert "less than 0.25% above that of the 5 before" in out
