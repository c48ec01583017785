"""InteractionEncoder: a long table of (user, item, strength) rows to a matrix."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from sklearn_cml.preprocessing import InteractionEncoder, InteractionMatrix

pd = pytest.importorskip("pandas", reason="pandas is needed for DataFrame tables")


def _dense_from_rows(users, items, strengths, user_ids, item_ids):
    """The matrix a table describes, built one row at a time."""
    expected = np.zeros((len(user_ids), len(item_ids)), np.float32)
    row_of = {u: r for r, u in enumerate(user_ids)}
    column_of = {i: c for c, i in enumerate(item_ids)}
    for user, item, strength in zip(users, items, strengths):
        expected[row_of[user], column_of[item]] += strength
    return expected


ids = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "c", "zz", ""]))
tables = st.lists(st.tuples(ids, ids, st.integers(1, 9)), min_size=1, max_size=40)


@given(tables)
@settings(max_examples=60, deadline=None)
def test_matrix_sums_each_pair_strengths(rows):
    users, items, strengths = (list(column) for column in zip(*rows))
    frame = pd.DataFrame({"u": pd.Series(users, dtype=object),
                          "i": pd.Series(items, dtype=object), "s": strengths})
    X = InteractionEncoder("u", "i", strength_col="s").fit_transform(frame)
    assert isinstance(X, InteractionMatrix) and X.dtype == np.float32
    # Every distinct id once, and no id of one kind turned into another.
    assert sorted(map(repr, X.user_ids.tolist())) == sorted(map(repr, set(users)))
    assert sorted(map(repr, X.item_ids.tolist())) == sorted(map(repr, set(items)))
    expected = _dense_from_rows(users, items, strengths, X.user_ids.tolist(),
                                X.item_ids.tolist())
    np.testing.assert_array_equal(X.toarray(), expected)


def test_without_strengths_a_value_counts_the_rows():
    table = [("ann", "x"), ("ann", "x"), ("bob", "y")]
    X = InteractionEncoder().fit_transform(table)
    np.testing.assert_array_equal(X.toarray(), [[2, 0], [0, 1]])


def test_ids_of_different_kinds_stay_apart():
    table = np.array([[1, "1"], ["1", 1]], dtype=object)
    encoder = InteractionEncoder().fit(table)
    assert len(encoder.user_ids_) == 2 and set(map(type, encoder.user_ids_)) == {int, str}


@pytest.mark.parametrize("make_table", [
    lambda rows: pd.DataFrame(rows, columns=["user", "item", "stars"]),
    lambda rows: {"user": [r[0] for r in rows], "item": [r[1] for r in rows],
                  "stars": [r[2] for r in rows]},
], ids=["dataframe", "dict"])
def test_columns_by_name(make_table):
    rows = [("ann", 10, 4.0), ("bob", 20, 5.0), ("ann", 20, 1.0)]
    X = InteractionEncoder("user", "item", strength_col="stars").fit_transform(make_table(rows))
    np.testing.assert_array_equal(X.user_ids, ["ann", "bob"])
    np.testing.assert_array_equal(X.item_ids, [10, 20])
    np.testing.assert_array_equal(X.toarray(), [[4, 1], [0, 5]])


def test_columns_by_position_of_an_array_and_a_frame():
    rows = [(7, "x", 2.0), (3, "y", 1.0)]
    by_array = InteractionEncoder(0, 1, strength_col=2).fit_transform(rows)
    by_frame = InteractionEncoder(0, 1, strength_col=-1).fit_transform(pd.DataFrame(rows))
    for X in (by_array, by_frame):
        np.testing.assert_array_equal(X.user_ids, [3, 7])
        np.testing.assert_array_equal(X.toarray(), [[0, 1], [2, 0]])


def test_transform_rows_are_the_tables_users_and_columns_the_fitted_items():
    encoder = InteractionEncoder().fit([("ann", "x"), ("bob", "y"), ("bob", "z")])
    X = encoder.transform([("zed", "z"), ("ann", "y"), ("zed", "x")])
    np.testing.assert_array_equal(X.user_ids, ["ann", "zed"])
    np.testing.assert_array_equal(X.item_ids, ["x", "y", "z"])
    np.testing.assert_array_equal(X.toarray(), [[0, 1, 0], [1, 0, 1]])


def test_unknown_items_raise_or_are_left_out():
    fitted = [("ann", "x"), ("bob", "y")]
    table = [("zed", "x"), ("zed", "new"), ("amy", "new")]
    with pytest.raises(ValueError, match=r"2 row\(s\) with item ids not seen in fit: 'new'"):
        InteractionEncoder().fit(fitted).transform(table)
    X = InteractionEncoder(handle_unknown="ignore").fit(fitted).transform(table)
    # amy had only the unknown item: her row stays, empty.
    np.testing.assert_array_equal(X.user_ids, ["amy", "zed"])
    np.testing.assert_array_equal(X.toarray(), [[0, 0], [1, 0]])


def test_slices_are_matrices_without_ids():
    X = InteractionEncoder().fit_transform([("a", "x"), ("b", "y")])
    part = X[:1]
    assert sp.issparse(part) and getattr(part, "user_ids", None) is None


@pytest.mark.parametrize("params, table, message", [
    ({"user_col": "user"}, pd.DataFrame({"u": [1], "i": [2]}), "no such column"),
    ({"user_col": "user"}, [(1, 2)], "has no column names"),
    ({"item_col": 5}, [(1, 2)], "X has 2 columns"),
    ({"user_col": 0}, {"u": [1], "i": [2]}, "takes column names"),
    ({}, [1, 2, 3], "2-d array"),
    ({"strength_col": 2}, [(1, 2, "high")], "not numbers"),
    ({"strength_col": 2}, [(1, 2, float("nan"))], "finite"),
    ({}, [(None, 2)], "missing value"),
    ({}, pd.DataFrame({"u": [1.0, np.nan], "i": [1, 2]}), "missing value"),
    ({}, np.empty((0, 2)), "no rows"),
])
def test_bad_tables_get_clear_errors(params, table, message):
    with pytest.raises(ValueError, match=message):
        InteractionEncoder(**params).fit(table)


def test_clone_and_params():
    encoder = InteractionEncoder("u", "i", strength_col="s", handle_unknown="ignore")
    assert clone(encoder).get_params() == encoder.get_params()
    with pytest.raises(ValueError, match="handle_unknown"):
        InteractionEncoder(handle_unknown="drop").fit([(1, 2)])
