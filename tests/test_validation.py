"""Bad input gets a clear error, and a fitted model is left unchanged."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from sklearn_cml import CMLRecommender

PARAMS = dict(n_components=4, n_negatives=3, n_epochs=2, fold_in_epochs=2, top_k=3,
              random_state=0)


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((30, 12)) < 0.3).astype(np.float64))


@pytest.fixture
def fitted(X):
    return CMLRecommender(**PARAMS).fit(X)


def assert_unchanged(model, snapshot):
    """The model's fitted state equals the pickled snapshot taken before."""
    before = pickle.loads(snapshot)
    assert model.get_params() == before.get_params()
    assert sorted(vars(model)) == sorted(vars(before))
    np.testing.assert_array_equal(model.user_embeddings_, before.user_embeddings_)
    np.testing.assert_array_equal(model.item_embeddings_, before.item_embeddings_)
    assert model.n_iter_ == before.n_iter_


def with_value(X, value):
    dense = X.toarray()
    dense[0, 0] = value
    return dense


BAD_MATRICES = {
    "negative": (lambda X: with_value(X, -1.0), "Negative values"),
    "nan": (lambda X: with_value(X, np.nan), "NaN"),
    "inf": (lambda X: with_value(X, np.inf), "infinity"),
    "wrong_items": (lambda X: X[:, :-1], "features"),
    "empty": (lambda X: X[:0], "0 sample"),
    "non_numeric": (lambda X: np.full(X.shape, "a", dtype=object), "could not convert|numeric"),
    "one_d": (lambda X: X.toarray()[0], "2D array"),
}


# fit accepts any number of items (it starts a new model); every other
# method needs the items of fit.
BAD_CALLS = [
    (method, case)
    for method in ["fit", "partial_fit", "transform", "predict", "score"]
    for case in sorted(BAD_MATRICES)
    if (method, case) != ("fit", "wrong_items")
]


@pytest.mark.parametrize("method, case", BAD_CALLS)
def test_bad_matrix_is_rejected_and_model_unchanged(fitted, X, method, case):
    make_bad, message = BAD_MATRICES[case]
    snapshot = pickle.dumps(fitted)
    with pytest.raises(ValueError, match=message):
        getattr(fitted, method)(make_bad(X))
    assert_unchanged(fitted, snapshot)


def test_negative_values_message_says_how_to_fix(X):
    with pytest.raises(ValueError, match="Binarizer"):
        CMLRecommender(**PARAMS).fit(with_value(X, -2.0))


def test_matrix_without_interactions_is_rejected(fitted, X):
    snapshot = pickle.dumps(fitted)
    with pytest.raises(ValueError, match="no positive entry"):
        fitted.fit(sp.csr_matrix(X.shape))
    assert_unchanged(fitted, snapshot)


def test_partial_fit_with_other_users_is_rejected(fitted, X):
    snapshot = pickle.dumps(fitted)
    with pytest.raises(ValueError, match="same users"):
        fitted.partial_fit(X[:10])
    assert_unchanged(fitted, snapshot)


@pytest.mark.parametrize(
    "user_ids, message",
    [([0, 30], "outside the 30 ids"), ([-1], "outside the 30 ids"), ([0.5], "integer ids"),
     ([[0, 1]], "1-d array")],
)
def test_unknown_user_ids(fitted, user_ids, message):
    with pytest.raises(ValueError, match=message):
        fitted.recommend(user_ids)


@pytest.mark.parametrize("item_ids", [[12], [-3]])
def test_unknown_item_ids(fitted, item_ids):
    with pytest.raises(ValueError, match="outside the 12 ids"):
        fitted.kneighbors_items(item_ids)


@pytest.mark.parametrize("count", [0, -1, 2.5, True])
def test_bad_counts(fitted, count):
    with pytest.raises(ValueError, match="n_items must be a positive integer"):
        fitted.recommend([0], n_items=count)
    with pytest.raises(ValueError, match="n_neighbors must be a positive integer"):
        fitted.kneighbors_items([0], n_neighbors=count)


@pytest.mark.parametrize(
    "param, value",
    [("n_components", 0), ("margin", 0.0), ("margin", -1.0), ("n_negatives", 0),
     ("rank_weight", "yes"), ("covariance_weight", -0.1), ("max_norm", 0.0),
     ("learning_rate", 0.0), ("n_epochs", 0), ("covariance_interval", 0), ("fold_in_epochs", 0),
     ("top_k", 0), ("score_holdout", 1.0), ("n_jobs", "all"),
     ("negative_sampling_exponent", 1.5), ("negative_sampling_exponent", float("nan")),
     ("loss", "warp"), ("temperature", 0.0), ("temperature", -0.3), ("average", -1),
     ("average", 1.5), ("average", "yes"), ("temperature_exponent", 1.5)],
)
def test_bad_parameters(X, param, value):
    with pytest.raises(ValueError, match=f"The '{param}' parameter"):
        CMLRecommender(**{**PARAMS, param: value}).fit(X)


def test_n_jobs_zero(X):
    with pytest.raises(ValueError, match="The 'n_jobs' parameter .* Got 0 instead"):
        CMLRecommender(**PARAMS, n_jobs=0).fit(X)


@pytest.mark.parametrize(
    "call",
    [lambda m, X: m.recommend([0]), lambda m, X: m.kneighbors_items(), lambda m, X: m.transform(X),
     lambda m, X: m.predict(X), lambda m, X: m.score(X)],
)
def test_methods_before_fit(X, call):
    with pytest.raises(NotFittedError):
        call(CMLRecommender(**PARAMS), X)


def test_score_y_must_match_and_not_overlap(fitted, X):
    with pytest.raises(ValueError, match="shape"):
        fitted.score(X, X[:, :-1])
    with pytest.raises(ValueError, match="shares"):
        fitted.score(X, X)
    with pytest.raises(ValueError, match="Negative values in data passed to y"):
        fitted.score(X, -X.toarray())


def test_score_without_any_row_to_hold_out(fitted):
    single = sp.csr_matrix(([1.0], ([0], [3])), shape=(1, 12))
    with pytest.raises(ValueError, match="No row has held-out items"):
        fitted.score(single)


def test_explicit_zeros_are_not_interactions(X):
    with_zeros = X.copy()
    with_zeros.data[::2] = 0.0  # stored, but not interactions
    cleaned = with_zeros.copy()
    cleaned.eliminate_zeros()
    a = CMLRecommender(**PARAMS).fit(with_zeros)
    b = CMLRecommender(**PARAMS).fit(cleaned)
    np.testing.assert_array_equal(a.item_embeddings_, b.item_embeddings_)
    assert a.user_items_.nnz == cleaned.nnz


def test_input_formats_give_the_same_model(X):
    reference = CMLRecommender(**PARAMS).fit(X).item_embeddings_
    for converted in (X.tocsc(), X.tocoo(), sp.csr_array(X), X.toarray(), X.toarray() > 0,
                      X.astype(np.int32), X.astype(np.float32)):
        np.testing.assert_array_equal(CMLRecommender(**PARAMS).fit(converted).item_embeddings_,
                                      reference)
