"""Growing a fitted model with new users and new items (``partial_fit``)."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import config_of
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from sklearn_cml import CMLRecommender, _engine, _growth, make_recommender
from sklearn_cml._interactions import Interactions, to_interactions
from sklearn_cml.datasets import make_interactions
from sklearn_cml.preprocessing import InteractionEncoder, InteractionMatrix

PARAMS = dict(n_components=8, n_epochs=3, fold_in_epochs=5, random_state=0)


@pytest.fixture(scope="module")
def X():
    return make_interactions(n_users=120, n_items=60, n_clusters=4, random_state=0)


@pytest.fixture
def fitted(X):
    return CMLRecommender(**PARAMS).fit(X[:100, :50])


def table_of(matrix, user_names, item_names):
    """The (user, item) rows of a matrix, with the given names."""
    coo = sp.coo_matrix(matrix)
    return [(user_names[u], item_names[i]) for u, i in zip(coo.row, coo.col)]


def no_training(monkeypatch):
    """Make partial_fit grow the model without training it afterwards."""
    monkeypatch.setattr(_engine, "train", lambda *args, **kwargs: None)


def snapshot(model):
    """Pickled bytes of everything that defines the model, to compare bitwise."""
    return pickle.dumps((model.user_embeddings_, model.item_embeddings_, model.user_ids_,
                         model.item_ids_, model.n_iter_, model.user_items_.toarray(),
                         model._training.user_grad_sq, model._training.item_grad_sq,
                         sorted(vars(model))))


# ------------------------------------------------------------ plain matrices


def test_plain_matrix_adds_rows_and_columns(fitted, X):
    fitted.partial_fit(X, n_epochs=2)
    assert fitted.user_embeddings_.shape == (120, 8)
    assert fitted.item_embeddings_.shape == (60, 8)
    assert fitted._training.user_grad_sq.shape == (120,)
    assert fitted._training.item_grad_sq.shape == (60,)
    assert fitted.n_iter_ == 5 and len(fitted.loss_curve_) == 5
    assert fitted.n_features_in_ == 60
    assert (fitted.user_items_ != X).nnz == 0
    # The grown model answers for new users and items like any other.
    assert fitted.recommend([110], n_items=3).shape == (1, 3)
    assert fitted.kneighbors_items([55], n_neighbors=3)[1].shape == (1, 3)
    assert np.isfinite(fitted.transform(X[:5])).all()


def test_growth_keeps_known_vectors_and_places_new_ones(X, monkeypatch):
    """Before training, growing only appends: known rows are bitwise unchanged,
    new items sit at the mean of their known takers, new users are folded in."""
    model = CMLRecommender(**PARAMS, average=1).fit(X[:100, :50])
    before = model._training
    assert before.n_averaged > 0
    no_training(monkeypatch)
    model.partial_fit(X)
    after = model._training
    for name, n_known in [("user_embeddings", 100), ("item_embeddings", 50),
                          ("user_grad_sq", 100), ("item_grad_sq", 50),
                          ("user_average", 100), ("item_average", 50)]:
        np.testing.assert_array_equal(getattr(after, name)[:n_known], getattr(before, name))
    initial = np.float32(_engine.INITIAL_GRAD_SQ)
    assert (after.user_grad_sq[100:] == initial).all()
    assert (after.item_grad_sq[50:] == initial).all()
    # The averaged vectors the model answers with take the new vectors as rows.
    np.testing.assert_array_equal(model.item_embeddings_[50:], after.item_embeddings[50:])
    np.testing.assert_array_equal(model.user_embeddings_[100:], after.user_embeddings[100:])
    takers = X[:100, 50:].T.toarray()
    taken = takers.sum(axis=1) > 0
    assert taken.any()
    expected = takers[taken] @ before.user_embeddings / takers[taken].sum(axis=1)[:, None]
    np.testing.assert_allclose(after.item_embeddings[50:][taken], expected, rtol=1e-5,
                               atol=1e-6)
    # New users are where fold-in against every item puts them: near their items.
    new_users = after.user_embeddings[100:]
    norms = np.linalg.norm(new_users, axis=1)
    assert (norms <= model.max_norm * (1 + 1e-5)).all()
    assert not np.allclose(new_users, new_users.mean(axis=0))


def test_grow_appends_to_a_copy():
    """``_growth.grow`` leaves the state it is given as it was."""
    rng = np.random.default_rng(0)
    users = rng.standard_normal((6, 4)).astype(np.float32) / 4
    items = rng.standard_normal((5, 4)).astype(np.float32) / 4
    state = _engine.TrainingState(
        user_embeddings=users, item_embeddings=items,
        user_grad_sq=np.full(6, 2.0, np.float32), item_grad_sq=np.full(5, 3.0, np.float32),
        rng_states=np.ones(64, np.uint64), feature_rng_states=np.ones(64, np.uint64),
        seed=7, median_user_count=2.0, user_average=users.copy(), item_average=items.copy(),
        n_averaged=2,
    )  # fmt: skip
    before = pickle.dumps(state)
    # 6 known users and 2 new; items 5 (taken by users 0 and 1) and 6 (by nobody known).
    dense = np.zeros((8, 7), np.float32)
    dense[0, [0, 5]] = dense[1, [1, 5]] = dense[2:6, 2] = 1
    dense[6, [3, 6]] = dense[7, [4, 6]] = 1
    data = to_interactions(dense)
    grown = _growth.grow(state, data, config_of(data, n_components=4, fold_in_epochs=3))
    assert pickle.dumps(state) == before
    np.testing.assert_array_equal(grown.user_embeddings[:6], users)
    np.testing.assert_array_equal(grown.item_embeddings[:5], items)
    np.testing.assert_allclose(grown.item_embeddings[5], users[:2].mean(axis=0), rtol=1e-6)
    assert grown.user_embeddings.shape == (8, 4) and grown.item_embeddings.shape == (7, 4)
    np.testing.assert_array_equal(grown.user_grad_sq,
                                  np.float32([2.0] * 6 + [_engine.INITIAL_GRAD_SQ] * 2))
    np.testing.assert_array_equal(grown.item_average[5:], grown.item_embeddings[5:])
    np.testing.assert_array_equal(grown.user_average[6:], grown.user_embeddings[6:])
    assert (np.linalg.norm(grown.item_embeddings, axis=1) <= 1.0 + 1e-6).all()
    # The item nobody known took gets a seeded random vector: the same each time.
    again = _growth.grow(state, data, config_of(data, n_components=4, fold_in_epochs=3))
    np.testing.assert_array_equal(again.item_embeddings, grown.item_embeddings)
    np.testing.assert_array_equal(again.user_embeddings, grown.user_embeddings)
    assert np.linalg.norm(grown.item_embeddings[6]) > 0


@pytest.mark.parametrize("cold_start", ["neighbors", "network"])
def test_new_items_are_placed_from_their_features(X, monkeypatch, cold_start):
    rng = np.random.default_rng(0)
    features = (rng.random((60, 12)) < 0.3).astype(np.float64)
    model = CMLRecommender(**PARAMS, cold_start=cold_start, hidden_size=8)
    model.fit(X[:100, :50], item_features=features[:50])
    expected = model.transform_items(features[50:])
    no_training(monkeypatch)
    model.partial_fit(X, item_features=features)
    np.testing.assert_array_equal(model._training.item_embeddings[50:], expected)
    assert model.n_item_features_in_ == 12


def test_move_rows_moves_pairs_with_their_weights():
    data = to_interactions(sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1]])))
    weights = np.array([1, 2, 3, 4, 5, 6], np.float32)
    moved, moved_weights = _growth.move_rows(data, weights, np.array([3, 0, 1]), 5)
    expected = sp.csr_matrix(np.array([[0, 1, 0], [1, 1, 1], [0, 0, 0], [1, 0, 1],
                                       [0, 0, 0]]))
    assert (moved.to_csr() != expected).nnz == 0
    np.testing.assert_array_equal(moved_weights, [3, 4, 5, 6, 1, 2])
    assert isinstance(moved, Interactions)


# ------------------------------------------------------------ encoded tables


def test_pipeline_grows_with_new_ids(X):
    users = np.array([f"u{i:03d}" for i in range(120)])
    items = np.array([f"i{j:02d}" for j in range(60)])
    first = table_of(X[:100, :50], users[:100], items[:50])
    pipeline = make_recommender(InteractionEncoder(), CMLRecommender(**PARAMS)).fit(first)
    model = pipeline[-1]
    old_users, old_items = model.user_ids_.copy(), model.item_ids_.copy()
    before = model.user_embeddings_.copy()
    pipeline.partial_fit(table_of(X, users, items), n_epochs=2)
    np.testing.assert_array_equal(model.user_ids_[:old_users.size], old_users)
    np.testing.assert_array_equal(model.item_ids_[:old_items.size], old_items)
    assert sorted(model.user_ids_.tolist()) == users.tolist()
    assert sorted(model.item_ids_.tolist()) == items.tolist()
    assert model.user_embeddings_.shape == (120, 8)
    np.testing.assert_array_equal(pipeline[0].user_ids_, model.user_ids_)
    np.testing.assert_array_equal(pipeline[0].item_ids_, model.item_ids_)
    assert model.n_iter_ == 5
    # The training matrix follows the ids: row of user "u003" holds u003's items.
    row = model.user_items_[np.flatnonzero(model.user_ids_ == "u003")[0]].indices
    assert sorted(model.item_ids_[row].tolist()) == items[X[3].indices].tolist()
    assert not np.array_equal(model.user_embeddings_[:old_users.size], before)  # it trained
    assert pipeline.recommend(["u110"], n_items=3).shape == (1, 3)


def test_users_absent_from_the_table_keep_their_rows():
    encoder = InteractionEncoder()
    X = encoder.fit_transform([("a", 1), ("b", 2), ("c", 1), ("c", 3)])
    model = CMLRecommender(**PARAMS).fit(X)
    table = [("c", 1), ("e", 2), ("d", 4), ("d", 1)]
    update = encoder.partial_fit(table).transform(table)
    model.partial_fit(update)
    assert model.user_ids_.tolist() == ["a", "b", "c", "d", "e"]
    assert model.item_ids_.tolist() == [1, 2, 3, 4]
    assert model.user_items_.getnnz(axis=1).tolist() == [0, 0, 1, 2, 1]
    assert model.user_items_[3].indices.tolist() == [0, 3]


def test_plain_matrix_on_a_model_with_ids_cannot_grow():
    X = InteractionEncoder().fit_transform([("a", 1), ("b", 2), ("c", 1)])
    model = CMLRecommender(**PARAMS).fit(X)
    before = snapshot(model)
    with pytest.raises(ValueError, match="new users and items need ids"):
        model.partial_fit(sp.csr_matrix(np.ones((4, 2))))
    assert snapshot(model) == before


def test_a_new_item_cluster_is_recovered():
    """Fit without one taste cluster's items, then add them: after a few
    epochs their nearest items are mostly of their own cluster."""
    X, user_labels, item_labels = make_interactions(
        n_users=400, n_items=120, n_clusters=4, mean_interactions=15, random_state=1,
        return_labels=True)
    order = np.argsort(item_labels == 3, kind="stable")  # cluster 3's items last
    X, item_labels = X[:, order].tocsr(), item_labels[order]
    n_known = int((item_labels != 3).sum())
    model = CMLRecommender(n_components=16, n_epochs=15, random_state=0)
    model.fit(X[:, :n_known])
    model.partial_fit(X, n_epochs=5)
    new = np.arange(n_known, X.shape[1])
    neighbors = model.kneighbors_items(new, n_neighbors=5, return_distance=False)
    same_cluster = (item_labels[neighbors] == 3).mean()
    chance = (new.size - 1) / (X.shape[1] - 1)
    print(f"new items' neighbours in their cluster: {same_cluster:.2f} (chance {chance:.2f})")
    assert same_cluster > 2.5 * chance
    # Their nearest users too: cluster 3's users hold under a third of the users.
    users = model.user_embeddings_
    distances = ((users[:, None, :] - model.item_embeddings_[new][None]) ** 2).sum(axis=2)
    nearest_users = np.argsort(distances, axis=0)[:10].ravel()
    share = (user_labels[nearest_users] == 3).mean()
    print(f"their nearest users in the cluster: {share:.2f} "
          f"(chance {(user_labels == 3).mean():.2f})")
    assert share > 2 * (user_labels == 3).mean()


# --------------------------------------------------------- hostile updates


def encoded_model():
    encoder = InteractionEncoder()
    table = [("a", "x"), ("a", "y"), ("b", "y"), ("c", "x"), ("c", "z")]
    X = encoder.fit_transform(table)
    return CMLRecommender(**PARAMS).fit(X), X


def matrix(dense, user_ids, item_ids):
    return InteractionMatrix(np.asarray(dense, dtype=np.float32),
                             user_ids=np.array(user_ids), item_ids=np.array(item_ids))


@pytest.mark.parametrize("update, message", [
    (lambda X: matrix(np.ones((2, 3)), ["a", "a"], ["x", "y", "z"]), "repeats an id"),
    (lambda X: matrix(np.ones((2, 4)), ["a", "d"], ["x", "y", "z", "x"]), "repeats an id"),
    (lambda X: matrix(np.ones((2, 3)), ["a", "d"], ["y", "x", "z"]), "another order"),
    (lambda X: matrix(np.ones((2, 4)), ["a", "d"], ["x", "w", "y", "z"]), "another order"),
    (lambda X: matrix(np.ones((2, 2)), ["a", "d"], ["x", "y"]), "lacks 1 of the model's"),
    (lambda X: matrix(np.ones((2, 3)), ["a", "d"], ["x", "y", "w"]), "lacks 1 of the model's"),
])
def test_hostile_encoded_updates_are_refused(update, message):
    model, X = encoded_model()
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        model.partial_fit(update(X))
    assert snapshot(model) == before


@pytest.mark.parametrize("call, message", [
    ("model.partial_fit(X[:90, :50])", r"X has shape \(90, 50\) but the model was fitted"),
    ("model.partial_fit(X[:100, :40])", r"X has shape \(100, 40\)"),
    ("model.partial_fit(X[:110, :45])", r"at least the model's 100 rows and 50 columns"),
    ("model.partial_fit(X, n_epochs=0)", "n_epochs must be a positive integer"),
    ("model.partial_fit(X, n_epochs=-2)", "n_epochs must be a positive integer"),
    ("model.partial_fit(X, n_epochs=1.5)", "n_epochs must be a positive integer"),
    ("model.partial_fit(X, n_epochs=True)", "n_epochs must be a positive integer"),
    ("model.partial_fit(X, n_epochs='2')", "n_epochs must be a positive integer"),
])
def test_hostile_plain_updates_are_refused(fitted, X, call, message):
    model = fitted
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        eval(call)
    assert snapshot(model) == before


def test_item_features_must_cover_the_grown_items(X):
    features = (np.random.default_rng(0).random((60, 6)) < 0.4).astype(np.float64)
    model = CMLRecommender(**PARAMS).fit(X[:100, :50], item_features=features[:50])
    before = snapshot(model)
    with pytest.raises(ValueError, match="item_features has 50 rows but X has 60 items"):
        model.partial_fit(X, item_features=features[:50])
    with pytest.raises(ValueError, match="exactly when the model was fitted"):
        model.partial_fit(X)
    assert snapshot(model) == before


def test_a_failed_pipeline_update_leaves_the_encoder_as_it_was():
    table = [("a", "x"), ("a", "y"), ("b", "y"), ("c", "x")]
    pipeline = make_recommender(InteractionEncoder(), CMLRecommender(**PARAMS)).fit(table)
    ids = pipeline[0].user_ids_.copy(), pipeline[0].item_ids_.copy()
    before = snapshot(pipeline[-1])
    with pytest.raises(ValueError, match="n_epochs"):
        pipeline.partial_fit(table + [("d", "w")], n_epochs=0)
    np.testing.assert_array_equal(pipeline[0].user_ids_, ids[0])
    np.testing.assert_array_equal(pipeline[0].item_ids_, ids[1])
    assert snapshot(pipeline[-1]) == before


# ------------------------------------------- reproducibility, pickle, clone


def test_growth_is_reproducible(X):
    def grown():
        return CMLRecommender(**PARAMS).fit(X[:100, :50]).partial_fit(X, n_epochs=2)

    first, second = grown(), grown()
    np.testing.assert_array_equal(first.user_embeddings_, second.user_embeddings_)
    np.testing.assert_array_equal(first.item_embeddings_, second.item_embeddings_)
    assert pickle.dumps(first._training) == pickle.dumps(second._training)


def test_a_grown_model_pickles_and_clones(fitted, X):
    fitted.partial_fit(X, n_epochs=2)
    unpickled = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(unpickled.recommend([105, 1]), fitted.recommend([105, 1]))
    np.testing.assert_array_equal(unpickled.transform(X[:5]), fitted.transform(X[:5]))
    # Both continue the same way.
    np.testing.assert_array_equal(unpickled.partial_fit(X).user_embeddings_,
                                  fitted.partial_fit(X).user_embeddings_)
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params()
    assert not hasattr(fresh, "user_embeddings_")


def test_a_model_file_with_its_state_grows_as_the_model_did(fitted, X, tmp_path):
    from sklearn_cml import load_model

    path = tmp_path / "model.npz"
    fitted.save(path, include_optimizer_state=True)
    loaded = load_model(path)
    fitted.partial_fit(X, n_epochs=2)
    loaded.partial_fit(X, n_epochs=2)
    assert snapshot(loaded) == snapshot(fitted)
    # The grown model saves and loads too, answering as before saving.
    fitted.save(path, include_optimizer_state=True)
    again = load_model(path)
    np.testing.assert_array_equal(again.recommend([105, 1]), fitted.recommend([105, 1]))
    assert snapshot(again.partial_fit(X)) == snapshot(fitted.partial_fit(X))


def test_a_model_file_without_its_state_refuses_to_grow(fitted, X, tmp_path):
    from sklearn_cml import load_model

    path = tmp_path / "model.npz"
    fitted.save(path)
    loaded = load_model(path)
    before = loaded.user_embeddings_.copy(), loaded.item_embeddings_.copy()
    with pytest.raises(ValueError, match="include_optimizer_state=True"):
        loaded.partial_fit(X)
    np.testing.assert_array_equal(loaded.user_embeddings_, before[0])
    np.testing.assert_array_equal(loaded.item_embeddings_, before[1])


def test_a_saved_grown_pipeline_answers_with_the_new_ids(X, tmp_path):
    from sklearn_cml import load_model

    users = np.array([f"u{i:03d}" for i in range(120)])
    items = np.array([f"i{j:02d}" for j in range(60)])
    pipeline = make_recommender(InteractionEncoder(), CMLRecommender(**PARAMS))
    pipeline.fit(table_of(X[:100, :50], users[:100], items[:50]))
    pipeline.save(tmp_path / "pipeline.npz", include_optimizer_state=True)
    loaded = load_model(tmp_path / "pipeline.npz")
    for model in (pipeline, loaded):
        model.partial_fit(table_of(X, users, items), n_epochs=2)
    np.testing.assert_array_equal(loaded.recommend(["u110", "u003"], n_items=4),
                                  pipeline.recommend(["u110", "u003"], n_items=4))
    np.testing.assert_array_equal(loaded[0].item_ids_, pipeline[0].item_ids_)


def test_n_epochs_runs_that_many_epochs(X):
    model = CMLRecommender(**PARAMS).partial_fit(X, n_epochs=3)
    assert model.n_iter_ == 3
    stepwise = CMLRecommender(**PARAMS).partial_fit(X).partial_fit(X).partial_fit(X)
    np.testing.assert_array_equal(model.user_embeddings_, stepwise.user_embeddings_)


# --------------------------------------------------------- the encoder


def test_encoder_partial_fit_appends_new_ids_in_order():
    encoder = InteractionEncoder().partial_fit([("b", 2), ("a", 1)])  # unfitted: fit
    assert encoder.user_ids_.tolist() == ["a", "b"]
    encoder.partial_fit([("d", 3), ("c", 1), ("b", 0)])
    assert encoder.user_ids_.tolist() == ["a", "b", "c", "d"]
    assert encoder.item_ids_.tolist() == [1, 2, 0, 3]
    # Ids of another kind are kept as they are, not turned into strings.
    encoder.partial_fit([("e", "x")])
    assert encoder.item_ids_.tolist() == [1, 2, 0, 3, "x"]
    matrix = encoder.transform([("e", "x"), ("a", 2)])
    assert matrix.item_ids.tolist() == [1, 2, 0, 3, "x"]
    assert matrix.toarray().tolist() == [[0, 1, 0, 0, 0], [0, 0, 0, 0, 1]]


_IDS = st.one_of(st.integers(0, 6), st.sampled_from(["p", "q", "r"]))
_TABLES = st.lists(st.tuples(_IDS, _IDS), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(first=_TABLES, second=_TABLES)
def test_encoder_partial_fit_keeps_known_ids_where_they_were(first, second):
    alone = InteractionEncoder().fit(first)
    grown = InteractionEncoder().fit(first).partial_fit(second)
    for column, kind in ((0, "user_ids_"), (1, "item_ids_")):
        known, ids = getattr(alone, kind), getattr(grown, kind)
        assert ids[:known.size].tolist() == known.tolist()
        expected = {row[column] for row in first + second}
        assert set(ids.tolist()) == expected and len(ids) == len(expected)


def test_a_dataframe_grows_with_new_named_columns(X):
    pd = pytest.importorskip("pandas", reason="pandas is needed for DataFrame input")
    names = [f"item{j}" for j in range(60)]
    frame = pd.DataFrame(X.toarray(), columns=names)
    model = CMLRecommender(**PARAMS).fit(frame.iloc[:100, :50])
    before = snapshot(model)
    moved = frame[names[1:50] + names[:1] + names[50:]]
    with pytest.raises(ValueError, match="must start with those names"):
        model.partial_fit(moved)
    assert snapshot(model) == before
    assert model.feature_names_in_.tolist() == names[:50]
    model.partial_fit(frame)
    assert model.feature_names_in_.tolist() == names
    assert model.item_embeddings_.shape == (60, 8)
