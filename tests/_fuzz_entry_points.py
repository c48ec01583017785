"""Raw sparse structures, well formed or not, through every public entry point;
tables of every kind of id and strength through ``InteractionEncoder``.

Run by ``test_fuzz.py`` in a child process: a crash then fails that test
instead of killing the test run.  Each call must return, or raise one of
``EXPECTED``; anything else (an IndexError from an unchecked index, say) is
a failure that hypothesis shrinks and prints.
"""

import contextlib
import copy
import sys

import numpy as np
import pandas as pd
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_cml import CMLRecommender
from sklearn_cml import metrics as cml_metrics
from sklearn_cml.model_selection import (
    leave_k_out_split,
    train_test_split,
    train_validation_test_split,
)
from sklearn_cml.preprocessing import InteractionEncoder, InteractionMatrix

# What a bad input may raise: ValueError (which InvalidParameterError and
# NotFittedError derive from), TypeError for the wrong kind of object, and
# FloatingPointError when training breaks down.
EXPECTED = (ValueError, TypeError, FloatingPointError)

N_USERS, N_ITEMS, N_TAGS = 6, 5, 4
TINY = dict(n_components=4, n_negatives=2, n_epochs=1, fold_in_epochs=1, top_k=3,
            hidden_size=4, random_state=0)

_rng = np.random.default_rng(0)
_dense = (_rng.random((N_USERS, N_ITEMS)) < 0.5).astype(np.float64)
_dense[np.arange(N_USERS), np.arange(N_USERS) % N_ITEMS] = 1.0  # every user has items
X_VALID = sp.csr_matrix(_dense)
TAGS_VALID = sp.csr_matrix((_rng.random((N_ITEMS, N_TAGS)) < 0.5).astype(np.float64))
MODEL = CMLRecommender(**TINY).fit(X_VALID, item_features=TAGS_VALID)

VALUES = st.sampled_from([1.0, 2.0, 0.5, 0.0, -1.0, np.nan, np.inf, 1e30])


@st.composite
def raw_matrices(draw, n_rows=None, n_columns=None):
    """A CSR or CSC matrix whose raw arrays were set without scipy's checks."""
    rows = draw(st.sampled_from([n_rows, n_rows, 0, 1, 7]) if n_rows else st.integers(0, 7))
    columns = draw(st.sampled_from([n_columns, n_columns, 0, 1, 7]) if n_columns
                   else st.integers(0, 7))
    layout = draw(st.sampled_from(["csr", "csc"]))
    n_major, n_minor = (rows, columns) if layout == "csr" else (columns, rows)
    nnz = draw(st.integers(0, 10))
    if draw(st.booleans()):  # a consistent structure, possibly unsorted with duplicates
        counts = draw(st.lists(st.integers(0, 4), min_size=n_major, max_size=n_major))
        indptr = [0, *np.cumsum(counts, dtype=int).tolist()]
        nnz = indptr[-1]
        indices = draw(st.lists(st.integers(0, max(n_minor - 1, 0)), min_size=nnz,
                                max_size=nnz)) if n_minor else [0] * nnz
    else:  # anything
        indptr = draw(st.lists(st.integers(-2, nnz + 2), max_size=n_major + 3))
        indices = draw(st.lists(st.integers(-3, n_minor + 3), max_size=nnz + 2))
    data = draw(st.lists(VALUES, min_size=len(indices), max_size=len(indices))
                | st.lists(VALUES, max_size=nnz + 2))
    index_dtype = draw(st.sampled_from([np.int32, np.int64]))
    matrix = (sp.csr_matrix if layout == "csr" else sp.csc_matrix)((rows, columns))
    matrix.indptr = np.array(indptr, dtype=index_dtype)
    matrix.indices = np.array(indices, dtype=index_dtype)
    matrix.data = np.array(data, dtype=np.float64)
    return matrix


def ids():
    """Id arrays of several dtypes, in and out of range."""
    values = st.lists(st.sampled_from([0, 1, 4, 5, 6, -1, 2**31, 2**63 - 1]), max_size=4)
    dtypes = st.sampled_from([np.int64, np.int32, np.uint64, np.float64])
    return st.builds(_ids, values, dtypes)


def _ids(values, dtype):
    try:
        return np.array(values, dtype=dtype)
    except OverflowError:
        return np.array(values, dtype=object)


COUNTS = st.sampled_from([1, 3, 10**12, 0, -1, True, 2.5])


def attempt(call, *args, **kwargs):
    """Call; an expected exception is a clean refusal, anything else a failure."""
    with contextlib.suppress(EXPECTED):
        call(*args, **kwargs)


def copy_model():
    """A fresh copy of the fitted model, for the calls that may change it."""
    return copy.deepcopy(MODEL)


@given(X=raw_matrices(N_USERS, N_ITEMS), y=raw_matrices(N_USERS, N_ITEMS),
       tags=raw_matrices(N_ITEMS, N_TAGS), user_ids=ids(), count=COUNTS,
       filter_seen=st.booleans())
def check_entry_points(X, y, tags, user_ids, count, filter_seen):
    attempt(CMLRecommender(**TINY).fit, X)
    attempt(CMLRecommender(**TINY).fit, X_VALID, item_features=tags)
    attempt(copy_model().partial_fit, X, item_features=TAGS_VALID)
    for method in ("transform", "predict", "score", "fit_transform"):
        attempt(getattr(copy_model(), method), X)
    attempt(copy_model().score, X_VALID, y)
    attempt(copy_model().score, X, y)
    attempt(MODEL.recommend, user_ids, n_items=count, filter_seen=filter_seen)
    attempt(MODEL.recommend, user_ids[:1], item_features=tags)
    attempt(MODEL.kneighbors_items, user_ids, n_neighbors=count)
    attempt(MODEL.kneighbors_items, None, item_features=tags)
    attempt(MODEL.transform_items, tags)
    attempt(MODEL.explain, user_ids, user_ids, n=count)
    attempt(MODEL.explain, None, 0, n=count, user_items=X)
    attempt(MODEL.explain, user_ids[:1], 1, user_items=X)
    scores = np.random.default_rng(1).random(X.shape) if X.ndim == 2 else None
    for metric in ("recall_at_k", "precision_at_k", "ndcg_at_k", "map_at_k",
                   "hit_rate_at_k"):
        attempt(getattr(cml_metrics, metric), X, scores, k=count)
        attempt(getattr(cml_metrics, metric), X_VALID, MODEL, k=count, exclude=y)
    attempt(cml_metrics.auc_score, X, scores, exclude=y)
    attempt(cml_metrics.ranking_metrics, y, MODEL, k=count, exclude=X)
    for split in (train_test_split, leave_k_out_split, train_validation_test_split):
        attempt(split, X, random_state=0)


# Ids of every kind a table holds: numbers of each type and size, strings
# that numpy's fixed-width strings would shorten (trailing NULs), bytes,
# booleans; strengths huge, negative, or strings; and, in one cell of some
# tables (more would leave few tables to accept), a missing or bad value.
TABLE_IDS = st.one_of(
    st.integers(-3, 3), st.sampled_from([2**63, -(2**70)]),
    st.sampled_from([0.5, -0.0, np.inf, np.float32(2.5), np.int8(1)]),
    st.sampled_from(["a", "a\x00", "a\x00\x00", "\x00", "", "é", b"a", b"a\x00", True]),
)
STRENGTHS = st.sampled_from([1, 0, -1, 2.5, True, "5", 1e30, 3e38, -3e38])
MISSING = st.sampled_from([None, np.nan, pd.NaT, np.datetime64("NaT"), pd.NA])
BAD_STRENGTHS = MISSING | st.sampled_from(["x", 1e300, np.inf, -np.inf])


@st.composite
def tables(draw):
    """A table of (user, item[, strength]) rows as rows, a DataFrame or a dict."""
    with_strength = draw(st.booleans())
    rows = draw(st.lists(st.tuples(TABLE_IDS, TABLE_IDS, STRENGTHS), max_size=8))
    rows = [list(row if with_strength else row[:2]) for row in rows]
    if rows and draw(st.booleans()):
        row, column = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, 2))
        if column < len(rows[row]):
            rows[row][column] = draw(MISSING if column < 2 else BAD_STRENGTHS)
    form = draw(st.sampled_from(["rows", "object frame", "inferred frame", "dict"]))
    if form == "rows":
        table = [tuple(row) for row in rows]
    elif form == "dict":
        columns = list(zip(*rows)) or [[], [], []]
        table = {name: list(column) for name, column in zip("uis", columns)}
    else:  # column names 0, 1, 2: found by position and by name alike
        table = pd.DataFrame(rows, dtype=object if form == "object frame" else None)
    keys = ("u", "i", "s") if form == "dict" else (0, 1, 2)
    return table, keys if with_strength else keys[:2]


def _columns(table, keys):
    """The table's columns as lists of the values the encoder is given."""
    if isinstance(table, list):
        return [[row[k] for row in table] for k in range(len(keys))]
    if isinstance(table, dict):
        return [list(table[k]) for k in keys]
    return [np.asarray(table[k]).tolist() for k in keys]


@given(table=tables())
def check_encoder(table):
    """The encoder returns the matrix of the table with every id back, or refuses."""
    table, keys = table
    encoder = InteractionEncoder(keys[0], keys[1],
                                 strength_col=keys[2] if len(keys) == 3 else None)
    try:
        X = encoder.fit_transform(table)
    except (ValueError, TypeError) as error:
        assert str(error), f"{type(error).__name__} without a message"
        return
    assert isinstance(X, InteractionMatrix) and X.dtype == np.float32
    assert np.isfinite(X.data).all(), "a matrix with non-finite values"
    columns = _columns(table, keys)
    users, items = columns[0], columns[1]
    strengths = [float(v) for v in columns[2]] if len(keys) == 3 else [1.0] * len(users)
    # Every id comes back as an id equal to the one given, each once.
    row_of = {user: row for row, user in enumerate(X.user_ids.tolist())}
    column_of = {item: column for column, item in enumerate(X.item_ids.tolist())}
    assert len(row_of) == X.shape[0] == len(set(users)), (X.user_ids, users)
    assert len(column_of) == X.shape[1] == len(set(items)), (X.item_ids, items)
    expected = np.zeros(X.shape)
    scale = np.zeros(X.shape)
    for user, item, strength in zip(users, items, strengths):
        expected[row_of[user], column_of[item]] += strength
        scale[row_of[user], column_of[item]] += abs(strength)
    assert (np.abs(X.toarray() - expected) <= 1e-6 * scale).all(), (X.toarray(), expected)
    again = encoder.transform(table)
    assert again.user_ids.tolist() == X.user_ids.tolist() and (again != X).nnz == 0


def main(max_examples, derandomize):
    for check in (check_entry_points, check_encoder):
        settings(max_examples=max_examples, derandomize=derandomize, deadline=None,
                 database=None, suppress_health_check=list(HealthCheck))(check)()
    print(f"fuzzed {max_examples} examples: every entry point returned or refused cleanly")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2] == "derandomize")
