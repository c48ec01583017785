"""Saving and loading fitted models: exact round trips and safe loading.

A loaded model must answer every query bitwise as the saved one did; a
damaged or hostile file must raise ValueError before any kernel reads it,
and never run code (no pickle).
"""

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_cml import CMLRecommender, load_model
from sklearn_cml._engine import N_BLOCKS
from sklearn_cml._persistence import FORMAT_VERSION
from sklearn_cml.datasets import make_interactions
from sklearn_cml.preprocessing import InteractionEncoder

N_TRAIN = 60
SMALL = dict(n_components=8, n_epochs=2, fold_in_epochs=2, top_k=5, random_state=0)
CONFIGS = {
    "block softmax": dict(SMALL),
    "hogwild hinge, uniform negatives, no averaging": dict(
        SMALL, solver="hogwild", loss="hinge", negative_sampling_exponent=0.0, average=False),
    "early stopping": dict(SMALL, n_epochs=4, early_stopping=True, n_iter_no_change=1),
    "features, neighbors": dict(SMALL, cold_start="neighbors"),
    "features, network": dict(SMALL, cold_start="network", hidden_size=8),
}


def _data():
    X, _, clusters = make_interactions(n_users=80, n_items=40, n_clusters=4, random_state=0,
                                       return_labels=True)
    extra = np.random.default_rng(0).random((40, 3)) < 0.3
    features = sp.csr_matrix(np.hstack([np.eye(4)[clusters], extra]))
    return sp.csr_matrix(X), features


X, FEATURES = _data()
TRAIN, NEW_USERS = X[:N_TRAIN], X[N_TRAIN:]
NEW_ITEMS = FEATURES[:7]


@pytest.fixture(scope="module", params=list(CONFIGS))
def fitted(request):
    params = CONFIGS[request.param]
    features = FEATURES if "features" in request.param else None
    return CMLRecommender(**params).fit(TRAIN, item_features=features)


def saved(model, **options):
    file = io.BytesIO()
    model.save(file, **options)
    return file.getvalue()


def answers(model, with_matrix=True):
    """What each query method returns, by name."""
    users = np.arange(0, N_TRAIN, 7)
    results = {
        "recommend, filter_seen=False, items, filter_items": model.recommend(
            users, n_items=5, filter_seen=False, return_distance=True,
            items=np.arange(3, 30), filter_items=[4, 9]),
        "recommend, user_items": model.recommend(
            users, n_items=5, return_distance=True, user_items=NEW_USERS[: users.size]),
        "transform": model.transform(NEW_USERS),
        "predict": model.predict(NEW_USERS, n_items=4),
        "score": model.score(NEW_USERS),
        "kneighbors_items": model.kneighbors_items([0, 3, 17], n_neighbors=4),
        "similar_users": model.similar_users([1, 2], n_users=3),
        "pair_distances": model.pair_distances([0, 1, 2], [3, 4, 5]),
    }
    if with_matrix:
        results["recommend"] = model.recommend(users, n_items=5, return_distance=True)
    if model.n_item_features_in_ is not None:
        results["transform_items"] = model.transform_items(NEW_ITEMS)
        results["kneighbors_items, item_features"] = model.kneighbors_items(
            item_features=NEW_ITEMS, n_neighbors=3)
        if with_matrix:
            results["recommend, item_features"] = model.recommend(
                users, n_items=3, item_features=NEW_ITEMS, return_distance=True)
        weight = model.content_weight
        model.set_params(content_weight=0.0)
        results["recommend, item_features, by distance"] = model.recommend(
            users, n_items=3, item_features=NEW_ITEMS, return_distance=True)
        model.set_params(content_weight=weight)
    return results


def assert_identical(a, b, where="value"):
    """Equal bit for bit, arrays of the same dtype, containers of the same kind."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where, strict=True)
    elif sp.issparse(a):
        assert sp.issparse(b) and a.shape == b.shape and a.dtype == b.dtype, where
        assert (a != b).nnz == 0, where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{index}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


def public_attributes(model):
    """The fitted attributes: the class's views of the fitted model, and those
    scikit-learn sets on the instance (``n_features_in_``)."""
    names = {name for name in [*dir(type(model)), *vars(model)]
             if name.endswith("_") and not name.startswith("_")}
    return {name: getattr(model, name) for name in sorted(names) if hasattr(model, name)}


# ------------------------------------------------------------- round trips


@pytest.mark.parametrize("include_training_matrix", [True, False])
def test_a_loaded_model_answers_every_query_as_the_saved_one(fitted, include_training_matrix):
    loaded = load_model(io.BytesIO(saved(fitted,
                                         include_training_matrix=include_training_matrix)))
    assert loaded.get_params() == fitted.get_params()
    expected = public_attributes(fitted)
    if not include_training_matrix:
        expected["user_items_"] = None
    assert_identical(expected, public_attributes(loaded), "attributes")
    assert_identical(answers(fitted, with_matrix=include_training_matrix),
                     answers(loaded, with_matrix=include_training_matrix))


def test_compressed_files_and_paths_round_trip(fitted, tmp_path):
    path = tmp_path / "model.cml"  # any name: no suffix is added
    fitted.save(path, include_training_matrix=True, compress=True)
    assert sorted(os.listdir(tmp_path)) == ["model.cml"]
    assert_identical(answers(fitted), answers(load_model(path)))
    fitted.save(str(path))
    assert_identical(answers(fitted, with_matrix=False),
                     answers(load_model(str(path)), with_matrix=False))


def test_a_loaded_model_saves_as_it_was_loaded(fitted):
    for include_training_matrix in (True, False):
        data = saved(fitted, include_training_matrix=include_training_matrix)
        loaded = load_model(io.BytesIO(data))
        assert saved(loaded, include_training_matrix=include_training_matrix) == data
    with pytest.raises(ValueError, match="no training matrix to save"):
        saved(loaded, include_training_matrix=True)


def test_the_training_matrix_is_saved_by_default_so_recommend_works_as_is(fitted):
    loaded = load_model(io.BytesIO(saved(fitted)))
    assert_identical(fitted.user_items_, loaded.user_items_)
    assert_identical(fitted.recommend([0, 1], return_distance=True),
                     loaded.recommend([0, 1], return_distance=True))
    assert saved(fitted) == saved(fitted, include_training_matrix=True)
    assert len(saved(fitted, include_training_matrix=False)) < len(saved(fitted))


def test_without_the_training_matrix_seen_items_must_be_given(fitted):
    loaded = load_model(io.BytesIO(saved(fitted, include_training_matrix=False)))
    assert loaded.user_items_ is None
    with pytest.raises(ValueError, match="saved without its training matrix.*filter_seen"):
        loaded.recommend([0, 1])
    if fitted.n_item_features_in_ is not None:
        with pytest.raises(ValueError, match="training matrix.*content_weight=0"):
            loaded.recommend([0], item_features=NEW_ITEMS)
    seen = fitted.user_items_[[0, 1]]
    assert_identical(fitted.recommend([0, 1], return_distance=True),
                     loaded.recommend([0, 1], return_distance=True, user_items=seen))


def test_partial_fit_is_refused_after_loading_and_fit_starts_anew(fitted):
    loaded = load_model(io.BytesIO(saved(fitted, include_training_matrix=True)))
    before = answers(loaded)
    features = FEATURES if fitted.n_item_features_in_ is not None else None
    with pytest.raises(ValueError, match="saved without its optimiser state.*partial_fit "
                                         "cannot continue.*include_optimizer_state=True"):
        loaded.partial_fit(TRAIN, item_features=features)
    assert_identical(before, answers(loaded))
    refitted = loaded.fit(TRAIN, item_features=features)
    assert refitted.user_items_ is not None and refitted._training is not None
    assert refitted.partial_fit(TRAIN, item_features=features).n_iter_ == fitted.n_iter_ + 1


def test_pickle_keeps_everything(fitted):
    unpickled = pickle.loads(pickle.dumps(fitted))
    assert_identical(answers(fitted), answers(unpickled))
    assert_identical(vars(fitted._training), vars(unpickled._training), "training state")
    features = FEATURES if fitted.n_item_features_in_ is not None else None
    assert unpickled.partial_fit(TRAIN, item_features=features).n_iter_ == fitted.n_iter_ + 1
    loaded = load_model(io.BytesIO(saved(fitted)))
    assert_identical(answers(loaded, with_matrix=False),
                     answers(pickle.loads(pickle.dumps(loaded)), with_matrix=False))


# ------------------------------------------------------ the optimiser state

STATE_CONFIGS = {
    "block softmax (the defaults)": dict(SMALL),
    "hinge": dict(SMALL, loss="hinge"),
    "averaging": dict(SMALL, average=1),
    "averaging from a later epoch": dict(SMALL, average=3),
    "hogwild, one thread": dict(SMALL, solver="hogwild", n_jobs=1, average=1),
    "early stopping": dict(SMALL, n_epochs=4, early_stopping=True, n_iter_no_change=1),
    "temperature measured": dict(SMALL, n_epochs=6),  # temperature="auto", after 5 epochs
    "features, neighbors": dict(SMALL, cold_start="neighbors"),
    "features, network": dict(SMALL, cold_start="network", hidden_size=8, average=1),
}


def _fit_for_state(case):
    features = FEATURES if "features" in case else None
    return CMLRecommender(**STATE_CONFIGS[case]).fit(TRAIN, item_features=features), features


@pytest.mark.parametrize("case", list(STATE_CONFIGS))
def test_a_model_saved_with_its_optimizer_state_trains_on_bit_for_bit(case):
    model, features = _fit_for_state(case)
    data = saved(model, include_optimizer_state=True)
    loaded = load_model(io.BytesIO(data))
    assert_identical(vars(model._training), vars(loaded._training), "training state")
    assert saved(loaded, include_optimizer_state=True) == data
    n_iter = model.n_iter_
    if case == "temperature measured":
        assert "temperature" in loaded.resolved_params_  # partial_fit goes on with it
    for _ in range(3):  # "averaging from a later epoch" starts averaging here
        model.partial_fit(TRAIN, item_features=features)
        loaded.partial_fit(TRAIN, item_features=features)
        assert_identical(public_attributes(model), public_attributes(loaded), "attributes")
    assert loaded.n_iter_ == len(loaded.loss_curve_) == n_iter + 3
    assert_identical(answers(model), answers(loaded))
    assert saved(loaded, include_optimizer_state=True) == \
        saved(model, include_optimizer_state=True)


def test_the_state_keeps_the_sgd_vectors_only_where_they_are_not_the_models():
    plain, _ = _fit_for_state("hinge")  # two epochs, averaging from the fifth
    averaged, _ = _fit_for_state("averaging")
    assert saved(plain) == saved(plain, include_optimizer_state=False)
    state = {"state.user_grad_sq": TRAIN.shape[0], "state.item_grad_sq": N_ITEMS,
             "state.rng_states": N_BLOCKS, "state.feature_rng_states": N_BLOCKS}
    sgd_vectors = {"state.user_embeddings": TRAIN.shape[0] * SMALL["n_components"],
                   "state.item_embeddings": N_ITEMS * SMALL["n_components"]}
    for model, expected in ((plain, state), (averaged, {**state, **sgd_vectors})):
        arrays, _ = read_archive(saved(model, include_optimizer_state=True))
        sizes = {name: array.size for name, array in arrays.items()
                 if name.startswith("state.")}
        assert sizes == expected
        assert not set(arrays) - set(read_archive(saved(model))[0]) - set(expected)


def test_only_a_model_with_its_state_saves_it():
    loaded = load_model(io.BytesIO(saved(CMLRecommender(**SMALL).fit(TRAIN))))
    assert loaded._training is None
    with pytest.raises(ValueError, match="no optimiser state to save.*"
                                         "include_optimizer_state=False"):
        saved(loaded, include_optimizer_state=True)
    saved(loaded, include_optimizer_state=False)


def test_pickle_keeps_a_loaded_state():
    model, _ = _fit_for_state("averaging")
    loaded = load_model(io.BytesIO(saved(model, include_optimizer_state=True)))
    unpickled = pickle.loads(pickle.dumps(loaded))
    assert_identical(vars(loaded._training), vars(unpickled._training), "training state")
    model.partial_fit(TRAIN)
    assert_identical(model.user_embeddings_, unpickled.partial_fit(TRAIN).user_embeddings_)


@pytest.mark.parametrize("kind", ["strings", "objects"])
def test_ids_round_trip_with_their_dtype(kind):
    coo = TRAIN.tocoo()
    table = [(f"user {u}", 100 + i) for u, i in zip(coo.row, coo.col)]
    if kind == "objects":
        table = np.array(table, dtype=object)
    encoded = InteractionEncoder().fit_transform(table)
    model = CMLRecommender(**SMALL).fit(encoded)
    loaded = load_model(io.BytesIO(saved(model)))
    assert_identical(public_attributes(model), public_attributes(loaded))
    for ids in ("user_ids_", "item_ids_"):
        assert getattr(loaded, ids).dtype == getattr(model, ids).dtype
    assert isinstance(loaded.user_ids_[0], str)


def test_feature_names_of_a_dataframe_round_trip():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(TRAIN.toarray(), columns=[f"item {j}" for j in range(X.shape[1])])
    model = CMLRecommender(**SMALL).fit(frame)
    loaded = load_model(io.BytesIO(saved(model)))
    assert_identical(model.feature_names_in_, loaded.feature_names_in_)
    new = pd.DataFrame(NEW_USERS.toarray(), columns=frame.columns)
    assert_identical(model.transform(new), loaded.transform(new))
    with pytest.raises(ValueError, match="feature names"):
        loaded.transform(new.iloc[:, ::-1])


# ------------------------------------------------------- what cannot be saved


def test_saving_refuses_what_needs_pickle_and_names_it():
    model = CMLRecommender(**dict(SMALL, random_state=np.random.RandomState(0))).fit(TRAIN)
    with pytest.raises(ValueError, match="random_state=RandomState.*set_params"):
        saved(model)
    model.set_params(random_state=0)
    load_model(io.BytesIO(saved(model)))


def test_saving_an_unfitted_model_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CMLRecommender().save(io.BytesIO())


# ------------------------------------------------------- damaged files


NETWORK = CMLRecommender(**CONFIGS["features, network"]).fit(TRAIN, item_features=FEATURES)
NETWORK_FILE = saved(NETWORK, include_training_matrix=True)


def read_archive(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    return arrays, json.loads(arrays.pop("header").tobytes())


def rewrite(data, edit, describe=True):
    """The file ``data`` with ``edit(arrays, header)`` applied; with
    ``describe``, the header describes the edited arrays (so that the checks
    behind the header's are reached)."""
    arrays, header = read_archive(data)
    edit(arrays, header)
    if describe:
        header["arrays"] = {name: {"dtype": array.dtype.str, "shape": list(array.shape)}
                            for name, array in arrays.items()}
    file = io.BytesIO()
    np.savez(file, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return file.getvalue()


def setter(name, value):
    def edit(arrays, header):
        arrays[name] = value(arrays[name]) if callable(value) else value
    return edit


def set_header(path, value):
    def edit(arrays, header):
        target = header
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def drop(name):
    return lambda arrays, header: arrays.pop(name)


def _with(array, position, value):
    array = array.copy()
    array[position] = value
    return array


def item_ids(ids):
    def edit(arrays, header):
        arrays["attribute.item_ids_"] = ids
        header["array_attributes"]["item_ids_"] = {"object": False}
    return edit


N_ITEMS = X.shape[1]
DAMAGE = {
    "newer format": (set_header(["format_version"], FORMAT_VERSION + 1),
                     "format version 2.*Upgrade sklearn-cml"),
    "unknown format version": (set_header(["format_version"], "1"), "format version '1'"),
    "another format": (set_header(["format"], "something else"), "does not name"),
    "unknown parameter": (set_header(["params", "n_neighbours"], 3), "n_neighbours"),
    "invalid parameter": (set_header(["params", "n_components"], -8), "n_components"),
    "parameter against the arrays": (set_header(["params", "n_components"], 9),
                                     "embeddings' has shape"),
    "missing array": (drop("item_embeddings"), "'item_embeddings' is missing"),
    "unexpected array": (setter("surprise", np.zeros(3)), "does not have.*surprise"),
    "embeddings as float64": (setter("item_embeddings", lambda a: a.astype(np.float64)),
                              "dtype float64"),
    "NaN in the embeddings": (setter("user_embeddings", lambda a: _with(a, (0, 0), np.nan)),
                              "NaN or infinity"),
    "fewer user vectors than rows of the training matrix": (
        setter("user_embeddings", lambda a: a[:-1]), "user_items.indptr.*shape"),
    "item index past the end": (setter("user_items.indices", lambda a: _with(a, 3, N_ITEMS)),
                                f"index {N_ITEMS} .*outside"),
    "negative item index": (setter("user_items.indices", lambda a: _with(a, 0, -1)),
                            "index -1 .*outside"),
    "indptr decreasing": (setter("user_items.indptr", lambda a: _with(a, 2, a[1] - 1)),
                          "indptr decreases"),
    "indptr past the entries": (setter("user_items.indptr", lambda a: _with(a, 5, 10**9)),
                                "points past"),
    "indptr not from 0": (setter("user_items.indptr", lambda a: _with(a, 0, 1)),
                          "starts at 1"),
    "indptr short of the entries": (setter("user_items.indptr", lambda a: _with(a, -1, a[-2])),
                                    "indptr ends at"),
    "training row unsorted": (setter("user_items.indices",
                                     lambda a: _with(a, slice(0, 2), a[:2][::-1])),
                              "not strictly increasing"),
    "indices as int64": (setter("user_items.indices", lambda a: a.astype(np.int64)),
                         "dtype int64"),
    "item counts off the matrix": (setter("item_counts", lambda a: a + 1), "do not match"),
    "negative item counts": (setter("item_counts", lambda a: a - 10**6), "negative"),
    "content row index past the features": (
        setter("content.rows.indices", lambda a: _with(a, 0, FEATURES.shape[1])), "outside"),
    "content values and indices differ": (setter("content.rows.data", lambda a: a[:-1]),
                                          "indices but"),
    "encoder of other features": (setter("encoder.w1", lambda a: a[:-1]), "encoder.w1"),
    "encoder of other hidden units": (setter("encoder.b1", lambda a: a[:-1]), "encoder.b1"),
    "n_features_in_ off the items": (set_header(["attributes", "n_features_in_"], N_ITEMS + 5),
                                     "n_features_in_"),
    "required attribute missing": (
        lambda arrays, header: header["attributes"].pop("n_item_features_in_"),
        "n_item_features_in_"),
    "a private attribute": (set_header(["attributes", "_state"], 1), "'_state'"),
    "an unknown attribute": (set_header(["attributes", "flags_"], 1), "'flags_'"),
    "best epoch not an int": (set_header(["attributes", "best_epoch_"], "4"), "best_epoch_"),
    "validation scores not numbers": (set_header(["attributes", "validation_scores_"], ["a"]),
                                      "validation_scores_"),
    "resolved values not a dict": (set_header(["attributes", "resolved_params_"], [0.3]),
                                   "resolved_params_"),
    "a resolved value not a number": (
        set_header(["attributes", "resolved_params_"], {"temperature": [0.3]}),
        "resolved_params_"),
    "a resolved temperature not positive": (
        set_header(["attributes", "resolved_params_"], {"temperature": -0.3}),
        "resolved temperature"),
    "a resolved temperature not a number": (
        set_header(["attributes", "resolved_params_"], {"temperature": True}),
        "resolved temperature"),
    "a resolved pool size out of range": (
        set_header(["attributes", "resolved_params_"], {"pool_size": 10**12}),
        "resolved pool_size"),
    "a resolved pool size not an int": (
        set_header(["attributes", "resolved_params_"], {"pool_size": 1024.0}),
        "resolved pool_size"),
    "fold-in epochs that would hang a query": (set_header(["params", "fold_in_epochs"], 10**12),
                                               "fold_in_epochs=10+ is above 10,000"),
    "cold start neighbors past memory": (set_header(["params", "cold_start_neighbors"], 10**9),
                                         "cold_start_neighbors=.* is above"),
    "a pool past memory": (set_header(["params", "pool_size"], 10**10), "pool_size=.* is above"),
    "a NaN item id": (item_ids(_with(np.arange(N_ITEMS, dtype=float), 3, np.nan)),
                      "item_ids_ are not valid ids.*missing id"),
    "an item id repeated": (item_ids(_with(np.arange(N_ITEMS), 3, 2)), "repeats an id"),
    "an array of another size than the header says": (
        setter("item_counts", lambda a: a[:-1]), "'item_counts' has shape"),
    "seed out of range": (set_header(["state", "seed"], -1), "seed"),
    "median user count zero": (set_header(["state", "median_user_count"], 0), "median"),
    "value scales missing": (set_header(["state", "value_scales"], {}), "value scales"),
    "value scale zero": (set_header(["state", "value_scales", "values"], 0.0), "value scales"),
    "network without its encoder": (drop("encoder.w1"), "'encoder.w1' is missing"),
    "unknown cold start": (set_header(["state", "fitted_cold_start"], "magic"), "cold start"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_file_raises_a_clear_error(case):
    edit, message = DAMAGE[case]
    with pytest.raises(ValueError, match="(?s)" + message):
        load_model(io.BytesIO(rewrite(NETWORK_FILE, edit)))


# A network model that averages: its file holds every array of the state.
STATEFUL = CMLRecommender(**STATE_CONFIGS["features, network"]).fit(TRAIN,
                                                                    item_features=FEATURES)
STATE_FILE = saved(STATEFUL, include_optimizer_state=True)
N_USERS, N_HIDDEN = TRAIN.shape[0], STATE_CONFIGS["features, network"]["hidden_size"]

STATE_DAMAGE = {
    "AdaGrad sums NaN": (setter("state.user_grad_sq", lambda a: _with(a, 0, np.nan)),
                         "'state.user_grad_sq' holds NaN"),
    "AdaGrad sums infinite": (setter("state.item_grad_sq", lambda a: _with(a, 3, np.inf)),
                              "'state.item_grad_sq' holds NaN or infinity"),
    "an AdaGrad sum negative": (setter("state.item_grad_sq", lambda a: _with(a, 3, -1.0)),
                                "'state.item_grad_sq' are not all positive"),
    "an AdaGrad sum zero": (setter("state.user_grad_sq", lambda a: _with(a, 0, 0.0)),
                            "'state.user_grad_sq' are not all positive"),
    "AdaGrad sums as float64": (setter("state.user_grad_sq", lambda a: a.astype(np.float64)),
                                "'state.user_grad_sq' has dtype float64"),
    "an AdaGrad sum short": (setter("state.user_grad_sq", lambda a: a[:-1]),
                             f"'state.user_grad_sq' has shape \\({N_USERS - 1},\\)"),
    "AdaGrad sums of two dimensions": (setter("state.item_grad_sq", lambda a: a[:, None]),
                                       "'state.item_grad_sq' has shape"),
    "random states of another block count": (setter("state.rng_states", lambda a: a[:-1]),
                                             f"'state.rng_states' has shape.*{N_BLOCKS}"),
    "a random state zero": (setter("state.feature_rng_states", lambda a: _with(a, 5, 0)),
                            "'state.feature_rng_states' hold a zero"),
    "random states signed": (setter("state.rng_states", lambda a: a.astype(np.int64)),
                             "'state.rng_states' has dtype int64"),
    "random states missing": (drop("state.rng_states"), "'state.rng_states' is missing"),
    "SGD vectors missing while averaging": (drop("state.item_embeddings"),
                                            "'state.item_embeddings' is missing"),
    "SGD vectors of another dimension": (
        setter("state.user_embeddings", lambda a: a[:, :-1]), "'state.user_embeddings' has shape"),
    "SGD vectors of fewer items": (setter("state.item_embeddings", lambda a: a[:-1]),
                                   "'state.item_embeddings' has shape"),
    "SGD vectors NaN": (setter("state.item_embeddings", lambda a: _with(a, (2, 1), np.nan)),
                        "'state.item_embeddings' holds NaN"),
    "SGD vectors as float16": (setter("state.user_embeddings", lambda a: a.astype(np.float16)),
                               "'state.user_embeddings' has dtype float16"),
    "SGD vectors without averaging": (set_header(["optimizer_state", "n_averaged"], 0),
                                      "does not have.*state.item_embeddings"),
    "MLP sums of other features": (setter("state.encoder_grad_sq.w1", lambda a: a[:-1]),
                                   "'state.encoder_grad_sq.w1' has shape"),
    "MLP sums of other hidden units": (setter("state.encoder_grad_sq.w2", lambda a: a[:-1]),
                                       f"'state.encoder_grad_sq.w2' has shape.*{N_HIDDEN}"),
    "MLP bias sums of three": (setter("state.encoder_grad_sq.bias", lambda a: np.ones(3, a.dtype)),
                               "'state.encoder_grad_sq.bias' has shape"),
    "MLP sums negative": (setter("state.encoder_grad_sq.bias", lambda a: _with(a, 1, -0.5)),
                          "'state.encoder_grad_sq.bias' are not all positive"),
    "MLP sums missing": (drop("state.encoder_grad_sq.w2"),
                         "'state.encoder_grad_sq.w2' is missing"),
    "MLP sums of a model without the MLP": (
        set_header(["state", "fitted_cold_start"], "neighbors"),
        "does not have.*state.encoder_grad_sq"),
    "averaged epochs negative": (set_header(["optimizer_state", "n_averaged"], -1),
                                 "averaged epochs -1"),
    "averaged epochs past n_iter_": (set_header(["optimizer_state", "n_averaged"], 99),
                                     "averaged epochs 99 .*n_iter_ \\(2\\)"),
    "averaged epochs not an int": (set_header(["optimizer_state", "n_averaged"], 1.0),
                                   "averaged epochs 1.0"),
    "n_iter_ negative": (set_header(["attributes", "n_iter_"], -1), "n_iter_ -1"),
    "n_iter_ past the random streams": (set_header(["attributes", "n_iter_"], 2**40),
                                        "n_iter_ 1099511627776 is not"),
    "section not a dict": (set_header(["optimizer_state"], [2]), "optimizer state section"),
    "section with an unknown field": (set_header(["optimizer_state", "epoch"], 2),
                                      "optimizer state section"),
    "state arrays without the section": (lambda arrays, header: header.pop("optimizer_state"),
                                         "does not have.*state.user_grad_sq"),
}


@pytest.mark.parametrize("case", list(STATE_DAMAGE))
def test_a_damaged_optimizer_state_raises_a_clear_error(case):
    edit, message = STATE_DAMAGE[case]
    with pytest.raises(ValueError, match="(?s)not a valid sklearn-cml model file: .*" + message):
        load_model(io.BytesIO(rewrite(STATE_FILE, edit)))


def test_an_undamaged_state_file_loads_and_trains():
    """The base of the damaged cases: only the damage makes them fail."""
    loaded = load_model(io.BytesIO(rewrite(STATE_FILE, lambda arrays, header: None)))
    assert loaded._training.n_averaged == 2
    assert loaded.partial_fit(TRAIN, item_features=FEATURES).n_iter_ == 3


def test_the_header_must_describe_the_arrays():
    data = rewrite(NETWORK_FILE, setter("item_counts", lambda a: a[:-1]), describe=False)
    with pytest.raises(ValueError, match="'item_counts'.*header says"):
        load_model(io.BytesIO(data))


@pytest.mark.parametrize("damage", ["empty", "random bytes", "truncated", "flipped byte",
                                    "a single array", "no header", "header not JSON"])
def test_a_file_that_is_no_model_file_raises_a_clear_error(damage):
    if damage == "empty":
        data = b""
    elif damage == "random bytes":
        data = np.random.default_rng(0).bytes(1000)
    elif damage == "truncated":
        data = NETWORK_FILE[: len(NETWORK_FILE) // 2]
    elif damage == "flipped byte":  # in the item vectors: the zip's CRC catches it
        position = NETWORK_FILE.index(b"item_embeddings.npy") + 400
        data = bytearray(NETWORK_FILE)
        data[position] ^= 0xFF
        data = bytes(data)
    else:
        file = io.BytesIO()
        if damage == "a single array":
            np.save(file, np.zeros(3))
        elif damage == "no header":
            np.savez(file, item_embeddings=np.zeros((3, 8), np.float32))
        else:
            np.savez(file, header=np.frombuffer(b"{not json", np.uint8))
        data = file.getvalue()
    with pytest.raises(ValueError, match="not a valid sklearn-cml model file"):
        load_model(io.BytesIO(data))


# -------------------------------------------------------- no code is run

UNPICKLED = []


def _mark_unpickled():
    UNPICKLED.append(True)


class _Payload:
    """Runs ``_mark_unpickled`` when unpickled."""

    def __reduce__(self):
        return _mark_unpickled, ()


def test_loading_never_unpickles():
    pickle.loads(pickle.dumps(_Payload()))  # the payload works when unpickled
    assert UNPICKLED == [True]
    UNPICKLED.clear()
    hostile = np.array([_Payload()], dtype=object)
    for data in (
        rewrite(NETWORK_FILE, setter("item_counts", hostile)),
        rewrite(NETWORK_FILE, setter("attribute.user_ids_", hostile)),
        pickle.dumps(_Payload()),
        pickle.dumps(NETWORK),
    ):
        with pytest.raises(ValueError, match="not a valid sklearn-cml model file"):
            load_model(io.BytesIO(data))
    with pytest.raises(ValueError, match="'item_counts' holds Python objects.*without pickle"):
        load_model(io.BytesIO(rewrite(NETWORK_FILE, setter("item_counts", hostile))))
    assert UNPICKLED == []


def test_fuzzed_files_never_crash_or_escape_validation():
    """Random damage to a model file, then every query: in a child process, so
    that a crash fails this test instead of the run."""
    examples = os.environ.get("SKLEARN_CML_FUZZ_EXAMPLES")
    script = Path(__file__).with_name("_fuzz_model_files.py")
    child = subprocess.run(
        [sys.executable, str(script), examples or "150",
         "random" if examples else "derandomize"],
        capture_output=True, text=True, timeout=600,
    )
    assert child.returncode == 0, (
        f"the fuzzed process exited with code {child.returncode}:\n"
        f"{child.stdout[-5000:]}\n{child.stderr[-5000:]}"
    )


def test_original_ids_round_trip(tmp_path):
    """A model fitted on an encoded table keeps its ids, and answers in them."""
    from sklearn_cml.preprocessing import InteractionEncoder

    table = [(f"user-{u}", 10 * i) for u in range(40) for i in range(12) if (u * i) % 5 < 2]
    X = InteractionEncoder().fit_transform(table)
    model = CMLRecommender(n_components=4, n_epochs=2, random_state=0).fit(X)
    model.recommend(["user-3"])  # builds the id lookups, a cache the file leaves out
    path = tmp_path / "ids.npz"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.user_ids_, model.user_ids_)
    assert loaded.item_ids_.dtype == model.item_ids_.dtype
    np.testing.assert_array_equal(
        loaded.recommend(["user-3", "user-7"], n_items=3, filter_seen=False),
        model.recommend(["user-3", "user-7"], n_items=3, filter_seen=False))
    np.testing.assert_array_equal(loaded.kneighbors_items([10, 20])[1],
                                  model.kneighbors_items([10, 20])[1])


def test_mixed_kind_ids_are_refused_with_advice(tmp_path):
    from sklearn_cml.preprocessing import InteractionEncoder

    X = InteractionEncoder().fit_transform(np.array([(1, "a"), ("1", "b")], dtype=object))
    model = CMLRecommender(n_components=2, n_epochs=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="user_ids_ holds object values"):
        model.save(tmp_path / "mixed.npz")


def test_rating_weights_round_trip():
    """Fold-in weighs new users' values by the training mean, which the file keeps."""
    rng = np.random.default_rng(0)
    rated = X.multiply(rng.integers(1, 6, size=X.shape)).tocsr().astype(np.float32)
    model = CMLRecommender(**SMALL, interaction_weight="values").fit(rated[:N_TRAIN])
    loaded = load_model(io.BytesIO(saved(model)))
    assert loaded._model.value_scales == model._model.value_scales
    new = rated[N_TRAIN:]
    np.testing.assert_array_equal(loaded.transform(new), model.transform(new))
    np.testing.assert_array_equal(loaded.predict(new), model.predict(new))
    # The values matter: the same users with all-one values are placed elsewhere.
    assert not np.array_equal(model.transform(new), model.transform((new > 0).astype(float)))


# ------------------------------------------------- saving replaces atomically


def _folder_after(path):
    """The names in ``path``'s folder: a failed save leaves no temporary file."""
    return sorted(os.listdir(os.path.dirname(path)))


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"),
                                     KeyboardInterrupt()])
def test_a_failed_save_leaves_the_previous_file_whole(tmp_path, monkeypatch, failure):
    path = tmp_path / "model.npz"
    NETWORK.save(path, include_training_matrix=True)
    before = answers(load_model(path))

    def write_half_then_fail(stream, **arrays):
        stream.write(NETWORK_FILE[: len(NETWORK_FILE) // 2])
        raise failure

    monkeypatch.setattr(np, "savez", write_half_then_fail)
    with pytest.raises(type(failure)):
        load_model(path).save(path, include_training_matrix=True)
    monkeypatch.undo()
    assert _folder_after(path) == ["model.npz"]
    assert_identical(before, answers(load_model(path)))


def test_a_save_past_the_file_size_limit_leaves_the_previous_file_whole(tmp_path):
    """RLIMIT_FSIZE makes the write fail with EFBIG, as a full disk would."""
    resource = pytest.importorskip("resource", reason="RLIMIT_FSIZE is POSIX only")
    from _isolated import describe, run_isolated

    path = tmp_path / "model.npz"
    NETWORK.save(path, include_training_matrix=True)
    before = answers(load_model(path))
    limit = os.path.getsize(path) // 2
    assert limit < resource.getrlimit(resource.RLIMIT_FSIZE)[0] or \
        resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY
    code = (
        "import resource, signal\n"
        "from sklearn_cml import load_model\n"
        f"model = load_model({str(path)!r})\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit("
        "resource.RLIMIT_FSIZE)[1]))\n"
        f"model.save({str(path)!r}, include_training_matrix=True)\n"
    )
    outcome = run_isolated({"save": code})["save"]
    assert outcome["outcome"] == "raised" and outcome["type"] == "OSError", describe(outcome)
    assert "too large" in outcome["message"], describe(outcome)
    assert _folder_after(path) == ["model.npz"]
    assert_identical(before, answers(load_model(path)))


# Run as a child: re-saves the model file, slowed after its first array so
# that the parent can kill it mid-save.
_SLOW_SAVE = r"""
import sys, time
import numpy.lib.format as npy_format
from sklearn_cml import load_model

path = sys.argv[1]
model = load_model(path)
write_array = npy_format.write_array

def write_then_wait(*args, **kwargs):
    write_array(*args, **kwargs)
    print("mid-save", flush=True)
    time.sleep(600)

npy_format.write_array = write_then_wait
model.save(path, include_training_matrix=True)
"""


def test_a_process_killed_mid_save_leaves_the_previous_file_whole(tmp_path):
    signal = pytest.importorskip("signal")
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("SIGKILL is POSIX only")
    path = tmp_path / "model.npz"
    NETWORK.save(path, include_training_matrix=True)
    before = answers(load_model(path))
    child = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "mid-save", f"the child exited early ({child.wait()})"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert_identical(before, answers(load_model(path)))
    # What a killed save leaves: a hidden temporary file, never a damaged model.
    leftover = [name for name in _folder_after(path) if name != "model.npz"]
    assert all(name.startswith(".model.npz.") and name.endswith(".tmp") for name in leftover)


# Run as a child: re-saves the model file until the file named by its second
# argument exists, then prints how many saves it made.
_RESAVE = r"""
import os, sys
from sklearn_cml import load_model

path, stop = sys.argv[1:]
model = load_model(path)
print("saving", flush=True)
saves = 0
while not os.path.exists(stop):
    model.save(path, include_training_matrix=True)
    saves += 1
print(saves, flush=True)
"""


def test_loads_during_saves_all_succeed(tmp_path):
    path, stop = tmp_path / "model.npz", tmp_path / "stop"
    NETWORK.save(path, include_training_matrix=True)
    expected = NETWORK.recommend([0, 1, 2])
    writer = subprocess.Popen([sys.executable, "-c", _RESAVE, str(path), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    failures, n_loads = [], 300
    try:
        assert writer.stdout.readline().strip() == "saving", "the writer failed to start"
        for _ in range(n_loads):
            try:
                np.testing.assert_array_equal(load_model(path).recommend([0, 1, 2]), expected)
            except (ValueError, AssertionError) as error:
                failures.append(repr(error)[:200])
    finally:
        stop.touch()
        saves = writer.stdout.read().strip()
        writer.wait(timeout=120)
        writer.stdout.close()
    print(f"{n_loads} loads during {saves} saves")
    assert writer.returncode == 0
    assert int(saves) > 0
    assert not failures, f"{len(failures)} of {n_loads} loads failed: {failures[:3]}"
    assert _folder_after(path) == ["model.npz", "stop"]


def test_saving_refuses_what_loading_would_refuse():
    model = CMLRecommender(**dict(SMALL, fold_in_epochs=10_001)).fit(TRAIN)
    with pytest.raises(ValueError, match="fold_in_epochs=10001 is above 10,000.*set_params"):
        saved(model)
    load_model(io.BytesIO(saved(model.set_params(fold_in_epochs=10_000))))


def test_ids_ending_in_nul_are_refused_at_save_not_merged_at_load():
    # "a" and "a\x00" are two users to the encoder; a file would merge them.
    table = [("a", "x"), ("a\x00", "y"), ("b", "x"), ("b", "y")]
    X = InteractionEncoder().fit_transform(table)
    model = CMLRecommender(**SMALL).fit(X)
    assert len(set(model.user_ids_)) == 3
    with pytest.raises(ValueError, match="user_ids_ holds strings that end in a NUL"):
        saved(model)


# ------------------------------------------------ archives that inflate

# Run in a child: builds archives whose members inflate to 1 GiB (from about
# 1 MB) by streaming zeros, so that building them allocates little.
_BOMBS = r"""
import io, json, resource, zipfile
import numpy as np
from sklearn_cml import load_model

def npy_preamble(shape, dtype):
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        stream, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
    return stream.getvalue()

def archive(members):
    # members: name -> (preamble, bytes of zeros after it, or bytes)
    file = io.BytesIO()
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, (preamble, data) in members.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                member.write(preamble)
                if isinstance(data, bytes):
                    member.write(data)
                else:
                    chunk = bytes(2**20)
                    for _ in range(data // 2**20):
                        member.write(chunk)
    return file.getvalue()

GIB = 2**30
def header_member(arrays, params=None):
    header = {"format": "sklearn-cml model", "format_version": 1, "estimator": "CMLRecommender",
              "params": params or {"n_components": 8}, "attributes": {},
              "array_attributes": {}, "state": {}, "training_matrix": False,
              "arrays": {name: {"dtype": "<f4", "shape": list(shape)}
                         for name, shape in arrays.items()}}
    raw = json.dumps(header).encode()
    return npy_preamble((len(raw),), np.uint8), raw

vectors = (GIB // 32, 8)  # float32: 1 GiB
BOMBS = {
    # The header says 1 GiB of vectors, and the member holds them.
    "described": archive({"header": header_member({"user_embeddings": vectors}),
                          "user_embeddings": (npy_preamble(vectors, "<f4"), GIB)}),
    # The header says 8 vectors; the member inflates to 1 GiB.
    "undescribed": archive({"header": header_member({"user_embeddings": (1, 8)}),
                            "user_embeddings": (npy_preamble(vectors, "<f4"), GIB)}),
    # The header itself.
    "header": archive({"header": (npy_preamble((GIB,), np.uint8), GIB)}),
}
"""

_REFUSE = r"""
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_model(io.BytesIO(BOMBS[NAME]))
except ValueError as error:
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    raise ValueError(f"{grown / 1024:.1f} MB | {len(BOMBS[NAME]):,} bytes | {error}")
"""


def test_archives_that_inflate_are_refused_before_they_are_read():
    """Each archive is refused before its 1 GiB is allocated: the peak memory
    of the refusal (ru_maxrss, in kB on Linux) grows by less than 100 MB."""
    pytest.importorskip("resource", reason="ru_maxrss is POSIX only")
    if not sys.platform.startswith("linux"):
        pytest.skip("ru_maxrss is in kB on Linux only")
    from _isolated import describe, run_isolated

    names = ["described", "undescribed", "header"]
    outcomes = run_isolated({name: _REFUSE.replace("NAME", repr(name)) for name in names},
                            prelude=_BOMBS)
    for name in names:
        outcome = outcomes[name]
        assert outcome["outcome"] == "raised" and outcome["type"] == "ValueError", \
            f"{name}: {describe(outcome)}"
        grown, size, message = outcome["message"].split(" | ", 2)
        print(f"{name}: {size} refused, peak memory grew {grown}: {message[:160]}")
        assert "not a valid sklearn-cml model file" in message, f"{name}: {message}"
        assert float(grown.split()[0]) < 100, f"{name}: peak memory grew {grown}"


def test_values_near_the_float64_maximum_round_trip():
    # Their mean used to overflow to inf: the file saved, then failed to load.
    huge = TRAIN.astype(np.float64)
    huge.data[:] = 1e308
    model = CMLRecommender(**dict(SMALL, interaction_weight="values")).fit(huge)
    assert all(0 < scale < np.inf for scale in model._model.value_scales.values())
    loaded = load_model(io.BytesIO(saved(model)))
    np.testing.assert_array_equal(loaded.predict(huge[:5]), model.predict(huge[:5]))


def test_a_model_whose_value_means_are_not_finite_is_refused_at_save(monkeypatch):
    model = CMLRecommender(**SMALL).fit(TRAIN)
    monkeypatch.setitem(model._model.value_scales, "values", np.inf)
    with pytest.raises(ValueError, match="cannot be saved.*'values'.*Rescale X's values"):
        saved(model)


# ------------------------------------------------------------- pipelines


def _ratings():
    coo = TRAIN.tocoo()
    rng = np.random.default_rng(1)
    return pd_or_dict({"user": [f"user {u}" for u in coo.row], "item": 100 + coo.col,
                       "stars": rng.integers(1, 6, coo.nnz)})


def pd_or_dict(columns):
    """A DataFrame when pandas is installed, else the dict of arrays the encoder also takes."""
    try:
        import pandas as pd
    except ImportError:
        return {name: np.asarray(values) for name, values in columns.items()}
    return pd.DataFrame(columns)


RATINGS = _ratings()
NEW_TABLE = pd_or_dict({"user": ["new a", "new a", "new b", "new b", "new b"],
                        "item": [100, 103, 101, 104, 120], "stars": [5, 3, 4, 4, 1]})


def _pipeline():
    from sklearn_cml import make_recommender

    encoder = InteractionEncoder("user", "item", strength_col="stars")
    return make_recommender(encoder, CMLRecommender(**SMALL, interaction_weight="values"))


PIPELINE = _pipeline().fit(RATINGS)
PIPELINE_FILE = saved(PIPELINE)


def pipeline_answers(pipeline, with_matrix=True):
    """What a pipeline answers: to tables, and by ids."""
    users, items = ["user 0", "user 7", "user 21"], [100, 117, 103]
    results = {
        "predict": pipeline.predict(NEW_TABLE),
        "predict, n_items": pipeline.predict(NEW_TABLE, n_items=7),
        "transform": pipeline.transform(NEW_TABLE),
        "score": pipeline.score(RATINGS),
        "recommend, unfiltered": pipeline.recommend(users, 4, filter_seen=False,
                                                    return_distance=True),
        "kneighbors_items": pipeline.kneighbors_items(items, n_neighbors=3),
        "similar_users": pipeline.similar_users(users, n_users=2),
        "pair_distances": pipeline.pair_distances(users, items),
    }
    if with_matrix:
        results["recommend"] = pipeline.recommend(users, n_items=4, return_distance=True)
    return results


@pytest.mark.parametrize("include_training_matrix", [True, False])
def test_a_loaded_pipeline_answers_tables_and_ids_as_the_saved_one(include_training_matrix):
    from sklearn_cml import RecommenderPipeline

    loaded = load_model(io.BytesIO(saved(PIPELINE,
                                         include_training_matrix=include_training_matrix)))
    assert type(loaded) is RecommenderPipeline
    assert [name for name, _ in loaded.steps] == [name for name, _ in PIPELINE.steps]
    assert loaded.get_params(deep=True).keys() == PIPELINE.get_params(deep=True).keys()
    assert loaded[0].get_params() == PIPELINE[0].get_params()
    assert loaded[-1].get_params() == PIPELINE[-1].get_params()
    assert_identical(public_attributes(PIPELINE[0]), public_attributes(loaded[0]), "encoder")
    assert_identical(pipeline_answers(PIPELINE, include_training_matrix),
                     pipeline_answers(loaded, include_training_matrix))
    assert saved(loaded, include_training_matrix=include_training_matrix) == \
        saved(PIPELINE, include_training_matrix=include_training_matrix)
    # Still a Pipeline: it trains anew on a table.
    assert load_model(io.BytesIO(PIPELINE_FILE)).fit(RATINGS).predict(NEW_TABLE).shape == \
        PIPELINE.predict(NEW_TABLE).shape


def test_a_pipeline_saved_with_its_optimizer_state_trains_on_bit_for_bit():
    loaded = load_model(io.BytesIO(saved(PIPELINE, include_optimizer_state=True)))
    original = pickle.loads(pickle.dumps(PIPELINE))  # pickle keeps the state too
    encoded = original[0].transform(RATINGS)
    for pipeline in (original, loaded):
        pipeline[-1].partial_fit(encoded)
    assert_identical(public_attributes(original[-1]), public_attributes(loaded[-1]))
    assert_identical(pipeline_answers(original), pipeline_answers(loaded))
    with pytest.raises(ValueError, match="include_optimizer_state=True"):
        load_model(io.BytesIO(PIPELINE_FILE))[-1].partial_fit(encoded)


def test_a_pipeline_file_at_a_path_round_trips(tmp_path):
    path = tmp_path / "pipeline.npz"
    PIPELINE.save(path, compress=True)
    assert_identical(pipeline_answers(PIPELINE), pipeline_answers(load_model(path)))


def test_a_loaded_pipeline_refuses_unknown_items_as_the_saved_one_does():
    loaded = load_model(io.BytesIO(PIPELINE_FILE))
    unknown = pd_or_dict({"user": ["x"], "item": [999], "stars": [3]})
    for pipeline in (PIPELINE, loaded):
        with pytest.raises(ValueError, match="not seen in fit: 999"):
            pipeline.predict(unknown)
        with pytest.raises(ValueError, match="not seen in fit: 'nobody'"):
            pipeline.recommend(["nobody"])


def test_saving_a_pipeline_refuses_other_steps_and_names_the_fix():
    from sklearn.preprocessing import FunctionTransformer

    from sklearn_cml import RecommenderPipeline

    odd = RecommenderPipeline([("encoder", PIPELINE[0]), ("noop", FunctionTransformer()),
                               ("cml", PIPELINE[-1])])
    with pytest.raises(ValueError, match=r"InteractionEncoder then a CMLRecommender.*"
                                         r"FunctionTransformer.*pipeline\[-1\]\.save"):
        saved(odd)
    # The encoder refitted on another table: its columns are not the model's items.
    refitted = _pipeline().fit(RATINGS)
    refitted[0].fit(NEW_TABLE)
    with pytest.raises(ValueError, match="different tables.*Fit the pipeline again"):
        saved(refitted)


def encoder_ids(name, ids):
    def edit(arrays, header):
        arrays[f"pipeline.encoder.{name}"] = ids
        header["pipeline"]["encoder"]["array_attributes"][name] = {"object": False}
    return edit


def pipeline_header(path, value):
    return set_header(["pipeline", *path], value)


PIPELINE_DAMAGE = {
    "an encoder user id repeated": (
        encoder_ids("user_ids_", np.array(["a", "b", "a"])), "encoder's user_ids_ repeats"),
    "a NaN encoder item id": (
        encoder_ids("item_ids_", _with(np.arange(N_ITEMS, dtype=float), 3, np.nan)),
        "encoder's item_ids_ are not valid ids.*missing id"),
    "encoder item ids not the model's": (
        encoder_ids("item_ids_", 100 + np.arange(N_ITEMS)[::-1].copy()),
        "encoder's item ids are not its model's"),
    "encoder item ids of another dtype": (
        encoder_ids("item_ids_", (100 + np.arange(N_ITEMS)).astype(np.float64)),
        "encoder's item ids are not its model's"),
    "no encoder user ids": (encoder_ids("user_ids_", np.array([], dtype="<U3")),
                            "no user ids"),
    "encoder ids of two dimensions": (encoder_ids("user_ids_", np.array([["a"]])),
                                      "user_ids_' has shape"),
    "encoder ids missing": (drop("pipeline.encoder.user_ids_"),
                            "'pipeline.encoder.user_ids_' is missing"),
    "an unknown encoder attribute": (
        pipeline_header(["encoder", "array_attributes", "n_rows_"], {"object": False}),
        "n_rows_"),
    "an invalid encoder parameter": (pipeline_header(["encoder", "params", "handle_unknown"],
                                                     "magic"),
                                     "InteractionEncoder.*handle_unknown"),
    "an encoder column of the wrong type": (
        pipeline_header(["encoder", "params", "user_col"], [0, 1]),
        "InteractionEncoder.*user_col"),
    "an unknown encoder parameter": (pipeline_header(["encoder", "params", "sep"], ","),
                                     "InteractionEncoder.*sep"),
    "encoder parameters not a dict": (pipeline_header(["encoder", "params"], [1]),
                                      "no parameters"),
    "a step name with a double underscore": (pipeline_header(["steps"], ["a__b", "cml"]),
                                             "step names are not valid.*__"),
    "the same step name twice": (pipeline_header(["steps"], ["cml", "cml"]),
                                 "step names are not valid.*unique"),
    "a step name that is a parameter": (pipeline_header(["steps"], ["memory", "cml"]),
                                        "step names are not valid.*memory"),
    "three steps": (pipeline_header(["steps"], ["a", "b", "c"]), "are not two names"),
    "pipeline section not a dict": (set_header(["pipeline"], "encoder"), "are not two names"),
    "encoder ids of a plain model": (lambda arrays, header: header.pop("pipeline"),
                                     "does not have.*pipeline.encoder"),
}


@pytest.mark.parametrize("case", list(PIPELINE_DAMAGE))
def test_a_damaged_pipeline_file_raises_a_clear_error(case):
    edit, message = PIPELINE_DAMAGE[case]
    with pytest.raises(ValueError, match="(?s)not a valid sklearn-cml model file.*" + message):
        load_model(io.BytesIO(rewrite(PIPELINE_FILE, edit)))


def test_pipeline_files_that_would_inflate_or_are_flipped_are_refused():
    # The header says the encoder's ids take a GB: refused before anything is read.
    def huge(arrays, header):
        header["arrays"]["pipeline.encoder.user_ids_"]["shape"] = [10**9]

    with pytest.raises(ValueError, match="would inflate to"):
        load_model(io.BytesIO(rewrite(PIPELINE_FILE, huge, describe=False)))
    # The member inflates past what the header says.
    def longer(arrays, header):
        ids = arrays["pipeline.encoder.user_ids_"]
        arrays["pipeline.encoder.user_ids_"] = np.concatenate([ids, ids + "x"] * 50)

    data = rewrite(PIPELINE_FILE, longer, describe=False)
    with pytest.raises(ValueError, match="'pipeline.encoder.user_ids_' inflates to"):
        load_model(io.BytesIO(data))
    # A flipped byte in the encoder's ids: the zip's CRC catches it.
    position = PIPELINE_FILE.index(b"pipeline.encoder.user_ids_.npy") + 200
    flipped = bytearray(PIPELINE_FILE)
    flipped[position] ^= 0xFF
    with pytest.raises(ValueError, match="not a valid sklearn-cml model file"):
        load_model(io.BytesIO(bytes(flipped)))


def test_pipeline_ids_of_python_objects_are_never_unpickled():
    hostile = np.array([_Payload()], dtype=object)
    data = rewrite(PIPELINE_FILE, setter("pipeline.encoder.user_ids_", hostile))
    with pytest.raises(ValueError, match="holds Python objects.*without pickle"):
        load_model(io.BytesIO(data))
    assert UNPICKLED == []
