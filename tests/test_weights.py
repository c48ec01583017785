"""Interaction strength: ``sample_weight`` and ``interaction_weight``.

The kernels' weighted gradients are checked against finite differences in
test_block.py, test_hinge.py and test_softmax.py; here, what the estimator
does with the weights.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import config_of
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from sklearn_cml import CMLRecommender
from sklearn_cml._engine import initial_state
from sklearn_cml._interactions import to_interactions
from sklearn_cml._rng import (
    shuffle_row,
    shuffle_row_weighted,
    shuffle_within_rows,
    shuffle_within_rows_weighted,
)
from sklearn_cml.datasets import make_interactions

SMALL = dict(n_components=8, n_negatives=3, n_epochs=3, fold_in_epochs=3, pool_size=64,
             block_size=256, random_state=0)
SOLVERS_AND_LOSSES = [(solver, loss) for solver in ("block", "hogwild")
                      for loss in ("softmax", "hinge")]


@pytest.fixture(scope="module")
def X():
    return make_interactions(n_users=80, n_items=40, n_clusters=3, random_state=0)


def with_values(X, values):
    """A copy of ``X`` holding ``values`` at its entries."""
    copy = sp.csr_matrix(X, dtype=np.float64, copy=True)
    copy.data = np.asarray(values, dtype=np.float64)
    return copy


def _drop_first_entry(X):
    """Weights for every interaction of X but the first."""
    weights = with_values(X, np.ones(X.nnz)).tocoo()
    return sp.csr_matrix((weights.data[1:], (weights.row[1:], weights.col[1:])), shape=X.shape)


def _first_missing_column(X):
    """An item that user 0 has no interaction with."""
    return int(np.setdiff1d(np.arange(X.shape[1]), X.indices[X.indptr[0]:X.indptr[1]])[0])


def assert_same_model(first, second):
    np.testing.assert_array_equal(first.user_embeddings_, second.user_embeddings_)
    np.testing.assert_array_equal(first.item_embeddings_, second.item_embeddings_)


def test_weighted_shuffles_move_each_weight_with_its_item():
    """The same draws and the same permutation as the unweighted shuffles,
    which the kernels used before weights: each weight stays with its item."""
    indptr = np.array([0, 5, 5, 12], dtype=np.int64)
    indices = np.arange(12, dtype=np.int32)
    weights = indices.astype(np.float32) * 10
    shuffled, moved = np.empty_like(indices), np.empty_like(weights)
    state = shuffle_row_weighted(np.uint64(99), indices, weights, shuffled, moved, 5, 12)
    expected = np.empty_like(indices)
    assert state == shuffle_row(np.uint64(99), indices, expected, 5, 12)
    np.testing.assert_array_equal(shuffled[5:], expected[5:])
    np.testing.assert_array_equal(moved[5:], 10 * expected[5:])
    shuffle_within_rows_weighted(indptr, indices, weights, shuffled, moved, 7)
    shuffle_within_rows(indptr, indices, expected, 7)
    np.testing.assert_array_equal(shuffled, expected)
    np.testing.assert_array_equal(moved, 10 * expected)


@pytest.mark.parametrize("solver, loss", SOLVERS_AND_LOSSES)
def test_equal_weights_train_bitwise_the_unweighted_model(X, solver, loss):
    """Weights are normalised to mean 1: equal ones are exactly no weights,
    and so are equal values of X with interaction_weight="values"."""
    params = dict(SMALL, solver=solver, loss=loss, n_jobs=1)
    plain = CMLRecommender(**params).fit(X)
    weighted = CMLRecommender(**params).fit(X, sample_weight=with_values(X, np.full(X.nnz, 2.5)))
    by_user = CMLRecommender(**params).fit(X, sample_weight=np.full(X.shape[0], 0.1))
    by_values = CMLRecommender(**params, interaction_weight="values").fit(3.0 * X)
    for other in (weighted, by_user, by_values):
        assert_same_model(plain, other)
        assert other.loss_curve_ == plain.loss_curve_
    np.testing.assert_array_equal(by_values.transform(3.0 * X[:5]), plain.transform(X[:5]))


@pytest.mark.parametrize("solver", ["block", "hogwild"])
def test_only_the_ratios_of_the_weights_matter(X, solver):
    rng = np.random.default_rng(0)
    weights = with_values(X, rng.uniform(0.5, 4.0, X.nnz))
    scaled = with_values(X, 4.0 * weights.data)  # a power of two: the ratios are exact
    first = CMLRecommender(**SMALL, solver=solver).fit(X, sample_weight=weights)
    second = CMLRecommender(**SMALL, solver=solver).fit(X, sample_weight=scaled)
    assert_same_model(first, second)
    unweighted = CMLRecommender(**SMALL, solver=solver).fit(X)
    assert not np.array_equal(first.item_embeddings_, unweighted.item_embeddings_)


def test_the_forms_of_sample_weight_agree(X):
    """Per user, dense matrix, sparse matrix with X's pattern or with extra
    stored zeros, and values of X with interaction_weight="values"."""
    rng = np.random.default_rng(1)
    per_user = rng.uniform(0.5, 3.0, X.shape[0])
    as_matrix = with_values(X, np.repeat(per_user, np.diff(X.indptr)))
    # An explicit zero stored where X has no interaction is no weight.
    padded = as_matrix.tocoo()
    padded = sp.csr_matrix((np.r_[padded.data, 0.0], (np.r_[padded.row, 0],
                                                      np.r_[padded.col, _first_missing_column(X)])),
                           shape=X.shape)
    assert padded.nnz == X.nnz + 1
    reference = CMLRecommender(**SMALL).fit(X, sample_weight=as_matrix)
    for weights in (per_user, list(per_user), as_matrix.toarray(), sp.csr_array(as_matrix),
                    as_matrix.tocoo(), padded):
        assert_same_model(reference, CMLRecommender(**SMALL).fit(X, sample_weight=weights))
    by_values = CMLRecommender(**SMALL, interaction_weight="values").fit(as_matrix)
    assert_same_model(reference, by_values)


@pytest.mark.parametrize("solver, loss", SOLVERS_AND_LOSSES)
def test_heavy_pairs_end_closer_than_light_ones(solver, loss):
    """Half of each user's items, at random, weigh 8 times the others: after
    training they are nearer their users than the light half, which an
    unweighted model does not do."""
    X = make_interactions(n_users=150, n_items=60, n_clusters=3, random_state=1)
    heavy = np.random.default_rng(0).random(X.nnz) < 0.5
    weights = with_values(X, np.where(heavy, 8.0, 1.0))
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    params = dict(SMALL, solver=solver, loss=loss, n_epochs=15)

    def distance_ratio(model):
        distances = model.pair_distances(rows, X.indices)
        return distances[heavy].mean() / distances[~heavy].mean()

    weighted = distance_ratio(CMLRecommender(**params).fit(X, sample_weight=weights))
    unweighted = distance_ratio(CMLRecommender(**params).fit(X))
    assert weighted < 0.95  # about 0.9 with each solver and loss
    assert abs(unweighted - 1.0) < 0.03


@pytest.mark.parametrize("solver, loss", SOLVERS_AND_LOSSES)
def test_a_user_whose_pairs_weigh_nothing_is_not_trained(X, solver, loss):
    """Weight 0 leaves a pair out of the loss: a user with only such pairs
    keeps its initial vector (no covariance step, no averaging)."""
    params = dict(SMALL, solver=solver, loss=loss, covariance_weight=0.0, average=False)
    per_user = np.ones(X.shape[0])
    per_user[[0, 5]] = 0.0
    model = CMLRecommender(**params).fit(X, sample_weight=per_user)
    data = to_interactions(X)
    start = initial_state(data, config_of(data, **model.get_params())).user_embeddings
    np.testing.assert_array_equal(model.user_embeddings_[[0, 5]], start[[0, 5]])
    assert not np.allclose(model.user_embeddings_[1:5], start[1:5])


@pytest.mark.parametrize("interaction_weight", ["values", "log"])
def test_new_users_are_placed_with_their_values(X, interaction_weight):
    rng = np.random.default_rng(2)
    rated = with_values(X, rng.integers(1, 6, X.nnz))
    model = CMLRecommender(**SMALL, interaction_weight=interaction_weight).fit(rated)
    binary = clone(model).set_params(interaction_weight="binary").fit(rated)
    reshuffled = with_values(X, rng.integers(1, 6, X.nnz))
    assert not np.array_equal(model.transform(rated), model.transform(reshuffled))
    # "binary" ignores the values, in training and in fold-in.
    np.testing.assert_array_equal(binary.transform(rated), binary.transform(reshuffled))
    assert_same_model(binary, CMLRecommender(**SMALL).fit(X))
    # predict and score place the rows as transform does, values included.
    assert not np.array_equal(model.predict(rated), model.predict(reshuffled))
    model.set_params(top_k=3)
    assert model.score(rated) != model.score(reshuffled)
    # The fitted model's scale follows interaction_weight changed after fit.
    model.set_params(interaction_weight="binary")
    np.testing.assert_array_equal(model.transform(rated), model.transform(X))


def test_partial_fit_and_early_stopping_take_weights(X):
    weights = with_values(X, np.random.default_rng(3).uniform(0.0, 2.0, X.nnz))
    equal = with_values(X, np.full(X.nnz, 7.0))
    model = CMLRecommender(**SMALL).partial_fit(X, sample_weight=weights)
    model.partial_fit(X, sample_weight=weights)
    assert model.n_iter_ == 2
    plain = CMLRecommender(**SMALL).partial_fit(X).partial_fit(X)
    assert_same_model(plain, CMLRecommender(**SMALL).partial_fit(X, sample_weight=equal)
                      .partial_fit(X, sample_weight=equal))
    stopping = dict(SMALL, early_stopping=True, n_epochs=6, n_iter_no_change=2)
    assert_same_model(CMLRecommender(**stopping).fit(X),
                      CMLRecommender(**stopping).fit(X, sample_weight=equal))
    weighted = CMLRecommender(**stopping).fit(X, sample_weight=weights)
    assert not np.array_equal(weighted.item_embeddings_,
                              CMLRecommender(**stopping).fit(X).item_embeddings_)


# GridSearchCV warns that score takes no sample_weight: the folds are scored unweighted.
@pytest.mark.filterwarnings("ignore:The scoring CMLRecommender.score does not support")
def test_weights_survive_clone_and_reach_every_fold(X):
    """GridSearchCV and cross_validate slice a matrix of weights by rows, as X."""
    weights = with_values(X, np.random.default_rng(4).uniform(0.5, 3.0, X.nnz))
    estimator = CMLRecommender(**SMALL, interaction_weight="log")
    assert clone(estimator).get_params()["interaction_weight"] == "log"
    folds = KFold(2, shuffle=True, random_state=0)
    results = cross_validate(estimator, X, cv=folds, return_estimator=True,
                             params={"sample_weight": weights})
    for (train, _), fitted in zip(folds.split(X), results["estimator"]):
        direct = clone(estimator).fit(X[train], sample_weight=weights[train])
        assert_same_model(fitted, direct)
    search = GridSearchCV(estimator, {"interaction_weight": ["binary", "log"]}, cv=folds)
    search.fit(X, sample_weight=weights)
    assert_same_model(search.best_estimator_, clone(search.best_estimator_).fit(
        X, sample_weight=weights))


BAD_WEIGHTS = {
    "nan": (lambda X: with_values(X, np.r_[np.nan, np.ones(X.nnz - 1)]), "contains NaN"),
    "inf": (lambda X: np.r_[np.inf, np.ones(X.shape[0] - 1)], "contains infinity"),
    "negative": (lambda X: with_values(X, np.r_[-1.0, np.ones(X.nnz - 1)]), "negative weights"),
    "all zero": (lambda X: 0.0 * X, "Every interaction of X has a zero weight"),
    "too few users": (lambda X: np.ones(X.shape[0] - 1), "give one weight per user"),
    "wrong shape": (lambda X: np.ones((X.shape[0], X.shape[1] + 1)), "has shape"),
    "3-d": (lambda X: np.ones((X.shape[0], X.shape[1], 1)), "sample_weight has 3 dim"),
    "strings": (lambda X: np.array(["a"] * X.shape[0]), "sample_weight must be an array of"),
    "scalar": (lambda X: 2.0, "sample_weight must be an array of numbers"),
    "missing entry": (_drop_first_entry, "no entry for 1 interactions"),
    "outside X": (lambda X: with_values(X, np.ones(X.nnz)) + sp.csr_matrix(
        ([1.0], ([0], [_first_missing_column(X)])), shape=X.shape), "where X has no"),
    "dense outside X": (lambda X: np.ones(X.shape), "where X has no interaction"),
    "malformed": (lambda X: sp.csr_matrix(
        (np.ones(2), np.array([0, X.shape[1] + 5]), np.r_[0, 2, np.full(X.shape[0] - 1, 2)]),
        shape=X.shape), "outside"),
}


@pytest.mark.parametrize("case", BAD_WEIGHTS)
def test_bad_weights_are_refused_and_change_nothing(X, case):
    make, message = BAD_WEIGHTS[case]
    model = CMLRecommender(**SMALL).fit(X)
    before = model.item_embeddings_.copy()
    for method in (model.fit, model.partial_fit):
        with pytest.raises((ValueError, TypeError), match=message):
            method(X, sample_weight=make(X))
    np.testing.assert_array_equal(model.item_embeddings_, before)


def test_new_users_far_off_the_training_scale_are_refused(X):
    model = CMLRecommender(**SMALL, interaction_weight="values").fit(X)
    with pytest.raises(ValueError, match="scale of the matrix given to fit"):
        model.transform(1e9 * X[:3])
