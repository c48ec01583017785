"""No input crashes the process: each gets a clear error and leaves a model unchanged.

The inputs that used to corrupt memory (malformed sparse structures,
parameters changed after fit) run in a child process (``_isolated``), so
that a regression fails its test instead of killing the test run.
"""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from _isolated import describe, run_isolated

from sklearn_cml import CMLRecommender
from sklearn_cml.metrics import ndcg_at_k, recall_at_k

PARAMS = dict(n_components=8, n_negatives=2, n_epochs=2, fold_in_epochs=2, top_k=3,
              random_state=0)

PRELUDE = f"""
import numpy as np
import scipy.sparse as sp
from sklearn_cml import CMLRecommender
from sklearn_cml.metrics import ranking_metrics, recall_at_k
from sklearn_cml.model_selection import (
    leave_k_out_split, train_test_split, train_validation_test_split)

PARAMS = {PARAMS!r}
rng = np.random.default_rng(0)
X = sp.csr_matrix((rng.random((30, 10)) < 0.3).astype(np.float64))
features = sp.csr_matrix((rng.random((10, 6)) < 0.4).astype(np.float64))
model = CMLRecommender(**PARAMS, hidden_size=8, cold_start='network').fit(
    X, item_features=features)

def raw_csr(indices, indptr, shape, n_data=None):
    '''A CSR matrix built from raw arrays, which scipy does not check.'''
    data = np.ones(len(indices) if n_data is None else n_data)
    return sp.csr_matrix((data, np.array(indices), np.array(indptr)), shape=shape)

# Column 30 of 10, then column -1: scipy accepts both.
past_end = raw_csr([1, 3, 2, 0, 30], [0, 2, 3, 5], (3, 10))
negative = raw_csr([1, 3, 2, 0, -1], [0, 2, 3, 5], (3, 10))
# Column 30 again, in a matrix of the model's 30 users.
past_end_30 = raw_csr([30] + [1] * 29, list(range(31)), (30, 10))
# Tag 9 of 6.
tag_past_end = raw_csr([0, 9] + [1] * 9, [0, 2] + list(range(3, 12)), (10, 6))
# Row 30 of 10, in a users x items CSC matrix.
csc_past_end = sp.csc_matrix((np.ones(5), np.array([1, 3, 2, 0, 30]), np.array([0, 2, 3, 5])),
                             shape=(10, 3))
"""

OUT_OF_RANGE = "(column|row) index (30|-1|9|10) .*outside \\[0, (10|6)\\)"

# Out-of-range column indices, through every entry point that takes a matrix.
OUT_OF_RANGE_CASES = {
    "fit": "CMLRecommender(**PARAMS).fit(past_end)",
    "fit negative index": "CMLRecommender(**PARAMS).fit(negative)",
    "partial_fit": "model.partial_fit(past_end_30, item_features=features)",
    "transform": "model.transform(past_end)",
    "predict": "model.predict(negative)",
    "score X": "model.score(past_end)",
    "score y": "model.score(X[:3], y=past_end)",
    "fit item_features": "CMLRecommender(**PARAMS).fit(X, item_features=tag_past_end)",
    "transform_items": "model.transform_items(tag_past_end)",
    "recommend item_features": "model.recommend([0], item_features=tag_past_end)",
    "recall_at_k y_true": "recall_at_k(past_end, np.zeros((3, 10)), k=2)",
    "ranking_metrics exclude": (
        "ranking_metrics(X[:3], np.zeros((3, 10)), k=2, exclude=negative)"),
    "train_test_split": "train_test_split(past_end)",
    "leave_k_out_split": "leave_k_out_split(negative)",
    "train_validation_test_split": "train_validation_test_split(past_end)",
    "csc": "CMLRecommender(**PARAMS).fit(csc_past_end)",
    "coo": "coo = X.tocoo(copy=True); coo.col[0] = 10; CMLRecommender(**PARAMS).fit(coo)",
    "fit sample_weight": "CMLRecommender(**PARAMS).fit(X[:3], sample_weight=past_end)",
    "partial_fit sample_weight": (
        "model.partial_fit(X, item_features=features, sample_weight=past_end_30)"),
    "sample_weight coo": ("coo = X.tocoo(copy=True); coo.col[0] = 10; "
                          "CMLRecommender(**PARAMS).fit(X, sample_weight=coo)"),
}

MALFORMED_CASES = {
    "indptr decreases": (
        "CMLRecommender(**PARAMS).fit(raw_csr([1, 3, 2, 0, 3], [0, 4, 3, 5], (3, 10)))",
        "indptr decreases at position 2"),
    "indptr too short": (
        "x = past_end.copy(); x.indptr = x.indptr[:-1]; model.transform(x)",
        "indptr has 3 entries, but X has shape \\(3, 10\\), which needs 4"),
    "indptr past the entries": (
        "x = X.copy(); x.indptr[-1] += 5; model.predict(x)",
        "indptr\\[30\\] = 81 points past the 76 stored entries"),
    "indptr does not start at 0": (
        "x = X.copy(); x.indptr[0] = 1; model.score(x)",
        "indptr must start at 0, but starts at 1"),
    "indptr past the entries midway": (
        "x = X.copy(); x.indptr[1] = 500; model.transform(x)",
        "indptr\\[1\\] = 500 points past the 76 stored entries"),
    "data shorter than indices": (
        "x = X.copy(); x.data = x.data[:-2]; CMLRecommender(**PARAMS).fit(x)",
        "data has shape .* but X.indices has .* entries"),
    "float indices": (
        "x = X.copy(); x.indices = x.indices.astype(float); recall_at_k(x, np.zeros((30, 10)))",
        "y_true.indices must be a 1-d array of integers"),
    "bsr block index": (
        "b = X.tobsr(blocksize=(2, 2)); b.indices[0] = 9; model.transform(b)",
        "block column index 9 .*outside \\[0, 5\\)"),
    "lil lengths": (
        "m = X.tolil(); m.rows[0] = m.rows[0] + [3]; model.transform(m)",
        "LIL rows and data lists do not match"),
    "lil index past the shape": (
        "m = X.tolil(); m.rows[0] = [40]; m.data[0] = [1.0]; model.predict(m)",
        "column index 40 .*outside \\[0, 10\\)"),
    "coo lengths": (
        "coo = X.tocoo(copy=True); coo.row = coo.row[:-1]; train_test_split(coo)",
        "row, .col and .data have"),
}

# Parameters changed after fit: sizes of fitted arrays cannot follow.
REFUSED_AFTER_FIT = {
    f"{name}={value} then {call}": (
        f"model.set_params({name}={value}); model.{call}",
        f"{name}={value}, but the model was fitted with {name}={fitted}",
    )
    for name, value, fitted in [("n_components", 64, 8), ("n_components", 2, 8),
                                ("hidden_size", 32, 8),
                                ("cold_start", "'neighbors'", "'network'")]
    for call in ["partial_fit(X, item_features=features)", "transform(X)", "predict(X)",
                 "score(X)", "recommend([0])", "kneighbors_items([0])",
                 "transform_items(features)"]
}

BAD_PARAMETERS_AFTER_FIT = {
    f"{name}={value} then {call}": (f"model.set_params({name}={value}); model.{call}",
                                    f"The '{name}' parameter")
    for name, value in [("n_jobs", 0), ("n_jobs", True), ("top_k", True),
                        ("learning_rate", -1.0)]
    for call in ["transform(X)", "predict(X)", "score(X)", "recommend([0])"]
}


@pytest.fixture(scope="module")
def outcomes():
    cases = dict(OUT_OF_RANGE_CASES)
    for table in (MALFORMED_CASES, REFUSED_AFTER_FIT, BAD_PARAMETERS_AFTER_FIT):
        cases.update({name: code for name, (code, _) in table.items()})
    return run_isolated(cases, PRELUDE)


def assert_clear_error(outcome, pattern):
    assert outcome["outcome"] == "raised", describe(outcome)
    assert "ValueError" in outcome["types"], describe(outcome)
    assert re.search(pattern, outcome["message"]), describe(outcome)
    assert outcome.get("model_unchanged", True), "the fitted model changed"


@pytest.mark.parametrize("case", sorted(OUT_OF_RANGE_CASES))
def test_out_of_range_indices_are_refused(outcomes, case):
    assert_clear_error(outcomes[case], OUT_OF_RANGE)


@pytest.mark.parametrize("case", sorted(MALFORMED_CASES))
def test_malformed_structures_are_refused(outcomes, case):
    assert_clear_error(outcomes[case], MALFORMED_CASES[case][1])


@pytest.mark.parametrize("case", sorted(REFUSED_AFTER_FIT))
def test_array_sizes_cannot_change_after_fit(outcomes, case):
    assert_clear_error(outcomes[case], REFUSED_AFTER_FIT[case][1])


@pytest.mark.parametrize("case", sorted(BAD_PARAMETERS_AFTER_FIT))
def test_parameters_are_validated_in_every_method(outcomes, case):
    assert_clear_error(outcomes[case], BAD_PARAMETERS_AFTER_FIT[case][1])


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((30, 10)) < 0.3).astype(np.float64))


@pytest.fixture
def fitted(X):
    return CMLRecommender(**PARAMS).fit(X)


# --------------------------------------------------- arguments sizing memory


def test_huge_k_is_capped_at_the_number_of_items(X):
    scores = np.random.default_rng(1).random(X.shape)
    for metric in (ndcg_at_k, recall_at_k):
        assert metric(X, scores, k=10**12) == metric(X, scores, k=X.shape[1])


def test_huge_counts_return_at_most_every_item(fitted, X):
    n_items = X.shape[1]
    distances, items = fitted.recommend([0, 1], n_items=10**12, filter_seen=False,
                                        return_distance=True)
    assert items.shape == distances.shape == (2, n_items)
    assert sorted(items[0]) == list(range(n_items))
    _, seen_filtered = fitted.recommend([0], n_items=10**12, return_distance=True)
    n_seen = X[0].nnz
    assert (seen_filtered[0, n_items - n_seen:] == -1).all()
    assert fitted.kneighbors_items([0], n_neighbors=10**12)[1].shape == (1, n_items)
    assert fitted.set_params(top_k=10**12).predict(X[:2]).shape == (2, n_items)


# --------------------------------------------------------------- divergence


@pytest.mark.parametrize(
    "params, features, cause",
    [(dict(learning_rate=1e30), None, "learning_rate=1e\\+30"),
     (dict(loss="softmax", temperature=1e-30), None, "temperature=1e-30"),
     (dict(loss="softmax", temperature=1e-37), None, "temperature=1e-37"),
     (dict(loss="softmax", temperature=1e-38), None, "temperature=1e-38"),
     (dict(covariance_weight=1e30), None, "covariance_weight=1e\\+30"),
     (dict(hidden_size=8, cold_start="network"), 1e30,
      "item_features, with values up to 1e\\+30")],
)
def test_breakdown_is_detected_and_its_cause_named(fitted, X, params, features, cause):
    before = fitted.user_embeddings_.copy()
    item_features = None if features is None else np.full((X.shape[1], 3), features)
    with pytest.raises(FloatingPointError, match=cause):
        fitted.set_params(**params).fit(X, item_features=item_features)
    np.testing.assert_array_equal(fitted.user_embeddings_, before)


def test_fold_in_breakdown_is_detected(fitted, X):
    fitted.set_params(learning_rate=1e30)
    with pytest.raises(FloatingPointError, match="Placing the new users broke down.*"
                                                 "learning_rate=1e\\+30"):
        fitted.transform(X)


# ------------------------------------------------ scipy's cached sort flag


def test_cached_sort_flag_is_not_trusted(X):
    relabelled = X.copy()
    assert relabelled.has_canonical_format  # cached now
    for row in range(relabelled.shape[0]):  # reverse each row in place
        start, stop = relabelled.indptr[row], relabelled.indptr[row + 1]
        relabelled.indices[start:stop] = relabelled.indices[start:stop][::-1].copy()
    assert relabelled.has_canonical_format  # stale: scipy still says sorted
    fresh = sp.csr_matrix(relabelled.toarray())
    a = CMLRecommender(**PARAMS).fit(relabelled)
    b = CMLRecommender(**PARAMS).fit(fresh)
    np.testing.assert_array_equal(a.user_embeddings_, b.user_embeddings_)
    np.testing.assert_array_equal(a.predict(relabelled), b.predict(fresh))
    assert (a.user_items_ != fresh).nnz == 0


def test_duplicate_entries_are_merged(X):
    coo = X.tocoo()
    doubled = sp.csr_matrix((np.r_[coo.data, coo.data], (np.r_[coo.row, coo.row],
                                                         np.r_[coo.col, coo.col])),
                            shape=X.shape)
    a = CMLRecommender(**PARAMS).fit(doubled)
    b = CMLRecommender(**PARAMS).fit(X)
    np.testing.assert_array_equal(a.item_embeddings_, b.item_embeddings_)


# --------------------------------------------------------- clear messages


@pytest.mark.parametrize("param", ["n_components", "n_jobs", "top_k", "n_epochs",
                                   "n_negatives", "covariance_interval", "fold_in_epochs"])
def test_booleans_are_not_integers(X, param):
    with pytest.raises(ValueError, match=f"The '{param}' parameter .* Got True instead"):
        CMLRecommender(**{**PARAMS, param: True}).fit(X)


def test_dense_float16_is_accepted(X):
    a = CMLRecommender(**PARAMS).fit(X.toarray().astype(np.float16))
    b = CMLRecommender(**PARAMS).fit(X)
    np.testing.assert_array_equal(a.user_embeddings_, b.user_embeddings_)
    assert a.predict(X.toarray().astype(np.float16)).shape == (30, 3)


@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_missing_values_get_advice_for_interactions(X, value, word):
    dense = X.toarray()
    dense[0, 0] = value
    with pytest.raises(ValueError, match=f"X contains {word}") as error:
        CMLRecommender(**PARAMS).fit(dense)
    assert "nan_to_num" in str(error.value)
    assert "HistGradientBoosting" not in str(error.value)


def test_missing_values_in_a_dataframe(X):
    pandas = pytest.importorskip("pandas", reason="pandas is not installed")
    frame = pandas.DataFrame(np.where(X.toarray() > 0, 1.0, np.nan))
    with pytest.raises(ValueError, match="X contains NaN.*fillna"):
        CMLRecommender(**PARAMS).fit(frame)


def test_unsigned_ids_are_reported_as_given(fitted):
    with pytest.raises(ValueError, match=f"contains {2**63}, outside the 30 ids"):
        fitted.recommend(np.array([2**63], dtype=np.uint64))
    with pytest.raises(ValueError, match=f"contains {2**64 - 1}, outside the 10 ids"):
        fitted.kneighbors_items(np.array([2**64 - 1], dtype=np.uint64))
    assert fitted.recommend(np.array([3], dtype=np.uint64)).shape == (1, 10)


def test_more_negatives_than_items_are_drawn_with_replacement(X):
    for loss in ("hinge", "softmax"):
        model = CMLRecommender(**{**PARAMS, "n_negatives": 25}, loss=loss).fit(X)
        assert np.isfinite(model.loss_curve_).all()
        assert model.score(X) >= 0.0
