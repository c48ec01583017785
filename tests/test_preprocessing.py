"""InteractionEncoder: a long table of (user, item, strength) rows to a matrix."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from sklearn_cml import CMLRecommender
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
    ({"strength_col": 2}, [(1, 2, float("nan"))], "1 missing value"),
    ({"strength_col": 2}, [(1, 2, float("inf"))], "not finite"),
    ({"strength_col": 2}, [(1, 2, 1e300)], "beyond float32's range.*rescale"),
    ({}, [(None, 2)], "1 missing id"),
    ({}, pd.DataFrame({"u": [1.0, np.nan], "i": [1, 2]}), "1 missing id"),
    ({"user_col": "u", "item_col": "i"}, {"u": [1, 2], "i": [1]}, "2 user ids but 1 item"),
    ({}, np.empty((0, 2)), "no rows"),
])
def test_bad_tables_get_clear_errors(params, table, message):
    with pytest.raises(ValueError, match=message):
        InteractionEncoder(**params).fit(table)


def test_strengths_adding_up_past_float32_are_refused():
    # Each strength fits float32, their sum does not: refused, not infinity.
    table = [(1, 2, 3e38), (1, 2, 3e38), (2, 2, 1.0)]
    encoder = InteractionEncoder(strength_col=2)
    with pytest.raises(ValueError, match=r"1 \(user, item\) pair.*add up beyond float32"):
        encoder.fit_transform(table)
    with pytest.raises(ValueError, match="add up beyond float32"):
        encoder.fit(table).transform(table)


def test_clone_and_params():
    encoder = InteractionEncoder("u", "i", strength_col="s", handle_unknown="ignore")
    assert clone(encoder).get_params() == encoder.get_params()
    with pytest.raises(ValueError, match="handle_unknown"):
        InteractionEncoder(handle_unknown="drop").fit([(1, 2)])


# Every kind of missing value a table can hold, as a list of rows gives it
# or as a typed pandas column stores it.
MISSING = [None, float("nan"), pd.NaT, np.datetime64("NaT"), pd.NA]
TYPED_COLUMNS_WITH_TWO_MISSING = {
    "datetime": pd.to_datetime(["2024-01-01", None, "2024-01-02", None]),
    "timedelta": pd.to_timedelta(["1s", None, "2s", None]),
    "Int64": pd.array([1, None, 2, None], dtype="Int64"),
    "string": pd.array(["a", None, "b", pd.NA], dtype="string"),
    "float": [1.0, np.nan, 2.0, np.nan],
    "object": pd.Series(["a", pd.NA, "b", np.datetime64("NaT")], dtype=object),
}


@pytest.mark.parametrize("missing", MISSING, ids=repr)
@pytest.mark.parametrize("column", ["user_col", "item_col"])
def test_missing_ids_of_any_kind_are_refused_with_their_count(missing, column):
    rows = [["ann", "x"], ["ann", "x"], ["bob", "y"], ["bob", "y"]]
    position = 0 if column == "user_col" else 1
    rows[1][position] = rows[3][position] = missing
    with pytest.raises(ValueError, match=rf"The {column[:4]} column \({column}=\d\) has 2 "
                                         r"missing id.*first at position 1.*dropna"):
        InteractionEncoder().fit(rows)


@pytest.mark.parametrize("kind", TYPED_COLUMNS_WITH_TWO_MISSING)
def test_missing_ids_in_typed_columns_are_refused(kind):
    frame = pd.DataFrame({"user": TYPED_COLUMNS_WITH_TWO_MISSING[kind],
                          "item": ["x", "y", "y", "x"]})
    encoder = InteractionEncoder("user", "item")
    with pytest.raises(ValueError, match=r"\(user_col='user'\) has 2 missing id"):
        encoder.fit_transform(frame)
    # The same column without its missing rows is a table of two users.
    assert encoder.fit_transform(frame.dropna()).shape == (2, 2)


@pytest.mark.parametrize("strengths", [
    [5, pd.NA, 3, None], pd.array([5, None, 3, None], dtype="Int64"),
    pd.array([5.0, None, 3.0, np.nan], dtype="Float64"), [5, pd.NaT, 3, np.nan],
], ids=["object", "Int64", "Float64", "NaT"])
def test_missing_strengths_are_refused_with_their_count(strengths):
    frame = pd.DataFrame({"u": ["a", "b", "c", "d"], "i": ["x", "y", "x", "y"],
                          "s": strengths})
    with pytest.raises(ValueError, match=r"\(strength_col='s'\) has 2 missing value.*"
                                         r"first at row 1.*dropna"):
        InteractionEncoder("u", "i", strength_col="s").fit(frame)


def test_a_refused_table_leaves_the_fitted_encoder_unchanged():
    encoder = InteractionEncoder(strength_col=2).fit([("ann", "x", 1.0), ("bob", "y", 2.0)])
    users, items = encoder.user_ids_.copy(), encoder.item_ids_.copy()
    for bad in ([("cid", "z", 3e38), ("cid", "z", 3e38)], [(pd.NA, "z", 1.0)]):
        with pytest.raises(ValueError):
            encoder.fit_transform(bad)
    np.testing.assert_array_equal(encoder.user_ids_, users)
    np.testing.assert_array_equal(encoder.item_ids_, items)


@pytest.mark.parametrize("as_frame", [False, True], ids=["rows", "dataframe"])
def test_ids_ending_in_nul_stay_distinct_and_come_back_unchanged(as_frame):
    """numpy's fixed-width strings drop trailing NULs: "a" and "a\\x00" must
    not become one user, nor "x" and "x\\x00" one item."""
    rows = [("a", "x"), ("a", "y"), ("a\x00", "x\x00"), ("a\x00", "y"),
            ("b", "x"), ("b", "x\x00")]
    table = pd.DataFrame(rows, columns=["user", "item"]) if as_frame else rows
    encoder = InteractionEncoder(*(["user", "item"] if as_frame else []))
    X = encoder.fit_transform(table)
    assert X.user_ids.tolist() == ["a", "a\x00", "b"]
    assert X.item_ids.tolist() == ["x", "x\x00", "y"]
    np.testing.assert_array_equal(X.toarray(), [[1, 0, 1], [0, 1, 1], [1, 1, 0]])
    again = encoder.transform(table[::-1] if as_frame else rows[::-1])
    assert again.user_ids.tolist() == X.user_ids.tolist()
    np.testing.assert_array_equal(again.toarray(), X.toarray())

    model = CMLRecommender(n_components=2, n_epochs=1, random_state=0).fit(X)
    # Each user's one unseen item, named by its original id.
    recommended = model.recommend(["a\x00", "a", "b"], n_items=1)[:, 0].tolist()
    assert recommended == ["x", "x\x00", "y"]
