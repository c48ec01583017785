"""CMLRecommender fitted on an encoded table takes and returns original ids."""

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions
from sklearn_cml.metrics import make_ranking_scorer
from sklearn_cml.preprocessing import InteractionEncoder, InteractionMatrix

pd = pytest.importorskip("pandas", reason="pandas is needed for DataFrame tables")

PARAMS = dict(n_components=8, n_epochs=4, random_state=0, top_k=10)


@pytest.fixture(scope="module")
def table():
    """A long table with string ids, in shuffled row order, and the matrix it encodes."""
    X = make_interactions(n_users=150, n_items=60, random_state=0).tocoo()
    order = np.random.default_rng(0).permutation(X.nnz)
    rows, columns = X.row[order], X.col[order]
    frame = pd.DataFrame({
        "user_id": np.char.add("user-", rows.astype(str)),
        "item_id": np.char.add("item-", columns.astype(str)),
        "rating": np.random.default_rng(1).integers(1, 6, X.nnz),
    })
    return frame


@pytest.fixture(scope="module")
def fitted(table):
    """A pipeline fitted on the table, and the same model fitted on its plain matrix."""
    pipeline = make_pipeline(InteractionEncoder("user_id", "item_id"),
                             CMLRecommender(**PARAMS)).fit(table)
    encoder, by_ids = pipeline[0], pipeline[-1]
    X = encoder.transform(table)
    plain = CMLRecommender(**PARAMS).fit(X.tocsr().copy())
    assert getattr(plain, "user_ids_", None) is None
    return encoder, by_ids, plain


def _labels(ids, positions):
    """Ids at positions, None where a position is -1 (fewer items than asked)."""
    return np.where(positions >= 0, ids[np.maximum(positions, 0)], None)


def test_the_encoded_fit_is_the_plain_fit(fitted):
    encoder, by_ids, plain = fitted
    np.testing.assert_array_equal(by_ids.user_embeddings_, plain.user_embeddings_)
    np.testing.assert_array_equal(by_ids.user_ids_, encoder.user_ids_)
    np.testing.assert_array_equal(by_ids.item_ids_, encoder.item_ids_)


def test_every_query_takes_and_returns_ids(fitted):
    encoder, by_ids, plain = fitted
    users, items = encoder.user_ids_, encoder.item_ids_
    rows, columns = [4, 0, 17], [2, 9]
    np.testing.assert_array_equal(
        by_ids.recommend(users[rows], n_items=5), items[plain.recommend(rows, n_items=5)])
    np.testing.assert_array_equal(
        by_ids.recommend(users[rows], n_items=3, items=items[:20], filter_items=items[[1]]),
        _labels(items, plain.recommend(rows, n_items=3, items=np.arange(20), filter_items=[1])))
    distances, neighbors = by_ids.kneighbors_items(items[columns], n_neighbors=4)
    expected_distances, expected = plain.kneighbors_items(columns, n_neighbors=4)
    np.testing.assert_array_equal(neighbors, items[expected])
    np.testing.assert_array_equal(distances, expected_distances)
    np.testing.assert_array_equal(by_ids.similar_users(users[rows], n_users=3)[1],
                                  users[plain.similar_users(rows, n_users=3)[1]])
    np.testing.assert_array_equal(by_ids.pair_distances(users[rows], items[[0, 1, 2]]),
                                  plain.pair_distances(rows, [0, 1, 2]))


def test_a_single_id_is_one_query(fitted):
    encoder, by_ids, _ = fitted
    assert by_ids.recommend(encoder.user_ids_[3], n_items=2).shape == (1, 2)


def test_grid_search_on_a_long_table_and_back_to_ids(table):
    """The whole path: string ids, cross-validation by user, ids out."""
    pipeline = make_pipeline(InteractionEncoder("user_id", "item_id", handle_unknown="ignore"),
                             CMLRecommender(**PARAMS))
    search = GridSearchCV(pipeline, {"cmlrecommender__temperature": [0.2, 0.5]},
                          scoring=make_ranking_scorer("recall", k=10), cv=GroupKFold(3))
    search.fit(table, groups=table["user_id"])
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_
    # Refitted on the whole table: every user is known, by id.
    user = table["user_id"].iloc[0]
    recommended = best[-1].recommend([user], n_items=5)[0]
    seen = set(table.loc[table["user_id"] == user, "item_id"])
    assert set(recommended) <= set(table["item_id"]) and not set(recommended) & seen
    # New users, as a table of their items: recommendations are item ids.
    new_user = pd.DataFrame({"user_id": ["newcomer"] * 3,
                             "item_id": table["item_id"].iloc[:3]})
    predicted = best.predict(new_user)
    assert predicted.shape == (1, 10) and set(predicted[0]) <= set(table["item_id"])
    assert not set(predicted[0]) & set(new_user["item_id"])


def test_unknown_ids_at_query_and_predict_time(fitted, table):
    encoder, by_ids, plain = fitted
    with pytest.raises(ValueError, match=r"user_ids has 1 id\(s\) not seen in fit: 'stranger'"):
        by_ids.recommend(["stranger"])
    with pytest.raises(ValueError, match="item_ids has 1 id"):
        by_ids.kneighbors_items(["no-such-item"])
    with pytest.raises(ValueError, match="filter_items has 1 id"):
        by_ids.recommend(encoder.user_ids_[:1], filter_items=[3])  # a row number, not an id
    pipeline = make_pipeline(encoder, by_ids)
    unknown_item = pd.DataFrame({"user_id": ["new", "new"],
                                 "item_id": [table["item_id"].iloc[0], "item-unknown"]})
    with pytest.raises(ValueError, match="handle_unknown='ignore'"):
        pipeline.predict(unknown_item)
    # Ignored, the unknown item is as if absent: the new user is placed from the known one.
    encoder.set_params(handle_unknown="ignore")
    try:
        known_only = unknown_item.iloc[:1]
        np.testing.assert_array_equal(pipeline.predict(unknown_item),
                                      pipeline.predict(known_only))
        row = encoder.transform(known_only)
        np.testing.assert_array_equal(pipeline.predict(unknown_item),
                                      encoder.item_ids_[plain.predict(row.tocsr().copy())])
    finally:
        encoder.set_params(handle_unknown="error")


def test_missing_places_are_none():
    table = [("a", "x"), ("a", "y"), ("b", "x")]
    model = make_pipeline(InteractionEncoder(), CMLRecommender(n_components=2, n_epochs=1,
                                                               random_state=0)).fit(table)
    found = model[-1].recommend(["a"], n_items=2)
    assert found.dtype == object and found[0, 1] is None and found[0, 0] is None
    assert model[-1].recommend(["b"], n_items=1).tolist() == [["y"]]


def test_long_tables_passed_to_fit_point_to_the_encoder(table):
    numeric = table.assign(user_id=np.arange(len(table)) % 7, item_id=np.arange(len(table)) % 5)
    for bad in (table, numeric, table.to_numpy()):
        with pytest.raises(ValueError, match="InteractionEncoder"):
            CMLRecommender(n_epochs=1).fit(bad)


def test_columns_of_another_encoding_are_refused(fitted, table):
    encoder, by_ids, _ = fitted
    other = InteractionEncoder("user_id", "item_id").fit_transform(
        table[table["item_id"] != encoder.item_ids_[0]])
    X = InteractionMatrix(
        (other.data, other.indices, other.indptr), shape=(other.shape[0], other.shape[1] + 1),
        user_ids=other.user_ids, item_ids=np.append(other.item_ids, "item-x"))
    with pytest.raises(ValueError, match="not the items the model was fitted on"):
        by_ids.predict(X)


def test_bad_ids_leave_the_fitted_model_unchanged(fitted):
    _, by_ids, _ = fitted
    X = InteractionMatrix(np.eye(3, dtype=np.float32), user_ids=np.array(["a", "a", "b"]),
                          item_ids=np.array(["x", "y", "z"]))
    model = CMLRecommender(n_components=2, n_epochs=1, random_state=0).fit(np.eye(3))
    before = model.user_embeddings_.copy()
    with pytest.raises(ValueError, match="repeats an id"):
        model.fit(X)
    assert model.user_ids_ is None
    np.testing.assert_array_equal(model.user_embeddings_, before)


def test_partial_fit_keeps_the_ids_and_adds_new_users():
    encoder = InteractionEncoder()
    X = encoder.fit_transform([("a", "x"), ("b", "y"), ("c", "x"), ("c", "y")])
    model = CMLRecommender(n_components=2, random_state=0).partial_fit(X).partial_fit(X)
    np.testing.assert_array_equal(model.user_ids_, ["a", "b", "c"])
    assert model.n_iter_ == 2
    # "d" is new: appended after the known users; "c", absent, keeps its row.
    renamed = InteractionMatrix(X.toarray(), user_ids=np.array(["a", "b", "d"]),
                                item_ids=X.item_ids)
    model.partial_fit(renamed)
    np.testing.assert_array_equal(model.user_ids_, ["a", "b", "c", "d"])
    renamed_items = InteractionMatrix(X.toarray(), user_ids=X.user_ids,
                                      item_ids=np.array(["y", "x"]))
    with pytest.raises(ValueError, match="must start with the items the model was fitted on"):
        model.partial_fit(renamed_items)


_ANY_ID = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=3),
                    st.none(), st.binary(max_size=2), st.booleans())


@pytest.fixture(scope="module", params=["str", "int", "mixed"])
def small_model(request):
    users = {"str": ["a", "b", "c"], "int": [5, -1, 2**40], "mixed": [1, "1", 2.5]}[
        request.param]
    table = [(user, item) for user in users for item in ("x", "y") if (user, item) != (1, "y")]
    return CMLRecommender(n_components=2, n_epochs=1, random_state=0).fit(
        InteractionEncoder().fit_transform(np.array(table, dtype=object)))


@given(query=st.lists(_ANY_ID, max_size=4))
@example(query=[2**70, 1])
@example(query=[None])
@example(query=[1, "1", True])
@example(query=[float("nan")])
@example(query=[pd.NA, "a"])
@example(query=[np.datetime64("NaT")])
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_query_ids_are_found_exactly_or_refused(small_model, query):
    """Whatever the ids, a query finds the very users it names, or says which it cannot."""
    try:
        rows = small_model._user_rows(query, "")
    except ValueError as error:
        assert "not seen in fit" in str(error) or "missing id" in str(error)
        return
    found = small_model.user_ids_[rows].tolist()
    assert all(type(f) is type(q) or q == f for f, q in zip(found, query))
    assert found == [q for q in query]
