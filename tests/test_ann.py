"""search="nndescent" and "hnsw": the approximate top-k keeps the exact search's contract.

The exact search is the reference (tests/test_recommend_options.py checks it
against brute force).  An approximate list may differ from the exact one,
so these tests check what must hold whatever the graph: excluded items never
come back, rows are sorted, distances are the true ones, shapes and padding
are those of the exact search, most of the exact answer is found, and the
graph follows the vectors it was built on.  Each test that takes ``fitted``
runs once per approximate backend installed.
"""

import pickle
from importlib.util import find_spec

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from sklearn_cml import CMLRecommender, load_model
from sklearn_cml._ann import EXACT_SHARE, NNDescentIndex, approximate_top_k
from sklearn_cml._hnsw import HNSWIndex
from sklearn_cml._query import check_search, nearest_items
from sklearn_cml._topk import exact_top_k
from sklearn_cml.datasets import make_interactions

# Per backend: its library, its index, a query setting and a build setting
# other than the defaults.
BACKENDS = {
    "nndescent": ("pynndescent", NNDescentIndex, {"epsilon": 0.3}, {"n_neighbors": 10}),
    "hnsw": ("hnswlib", HNSWIndex, {"ef": 100}, {"M": 8}),
}


def require(search):
    """Skip, saying why, when the library of ``search`` is not installed."""
    library = BACKENDS[search][0]
    if find_spec(library) is None:  # pragma: no cover - the test extra installs both
        reason = f"{library} is not installed: pip install -e '.[test]' (or '.[ann]')"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return search


# pynndescent compiles its Numba functions in every process (tens of
# seconds), so its runs are in the slow group, which CI runs; hnswlib's,
# compiled ahead of time, check the same contract in every run.
BACKEND_PARAMS = [pytest.param("nndescent", marks=pytest.mark.slow), "hnsw"]
searches = pytest.mark.parametrize("search", BACKEND_PARAMS)
N_USERS, N_ITEMS = 300, 4000


@pytest.fixture(scope="module")
def interactions():
    return make_interactions(n_users=N_USERS, n_items=N_ITEMS, n_clusters=8,
                             mean_interactions=15, random_state=0)


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def fitted(interactions, request):
    """A model with an approximate search, its graph built once for the module.
    One thread: the same seed then builds the same graph with either backend."""
    model = CMLRecommender(n_components=16, n_epochs=5, random_state=0, n_jobs=1,
                           search=require(request.param))
    model.fit(interactions)
    model.recommend([0], n_items=1)
    return model


def index_of(model):
    """The approximate search's index in the model's cache (None before a query)."""
    return model._model._cache.get("search index")


def exact(model):
    """The same fitted model, answering exactly."""
    twin = pickle.loads(pickle.dumps(model))
    return twin.set_params(search="exact")


def overlap(approximate, reference):
    """Mean share of each reference row found in the approximate row (-1 ignored)."""
    shares = [np.isin(b[b >= 0], a).mean()
              for a, b in zip(approximate, reference) if (b >= 0).any()]
    return float(np.mean(shares))


def check_rows(distances, items, queries, item_vectors):
    """Sorted by (distance, item); each distance that of the query and the item."""
    valid = items >= 0
    assert (np.diff(distances, axis=1) >= 0).all()
    assert np.isinf(distances[~valid]).all()
    rows, cols = np.nonzero(valid)
    true = np.linalg.norm(queries[rows].astype(np.float64)
                          - item_vectors[items[rows, cols]].astype(np.float64), axis=1)
    np.testing.assert_allclose(distances[rows, cols], true, rtol=1e-5, atol=1e-6)
    for row in range(items.shape[0]):
        found = items[row][valid[row]]
        assert np.unique(found).size == found.size


def test_recommend_finds_the_exact_top_k_and_never_a_seen_item(fitted, monkeypatch):
    users = np.arange(N_USERS)
    index, asked = index_of(fitted), []
    answer = index.top_k

    def counting(queries, *args):
        asked.append(queries.shape[0])
        return answer(queries, *args)

    monkeypatch.setattr(index, "top_k", counting)
    distances, items = fitted.recommend(users, n_items=20, return_distance=True)
    # Most users exclude few enough items for the graph to answer them.
    assert sum(asked) >= N_USERS // 2
    exact_distances, exact_items = exact(fitted).recommend(users, n_items=20,
                                                          return_distance=True)
    assert items.shape == exact_items.shape
    assert overlap(items, exact_items) >= 0.95
    seen = fitted.user_items_
    for user in users:
        assert not np.isin(items[user], seen[user].indices).any()
    check_rows(distances, items, fitted.user_embeddings_, fitted.item_embeddings_)
    # Never nearer than the exact answer: the k-th distance is at least as large.
    assert (distances[:, -1] >= exact_distances[:, -1] - 1e-6).all()


def test_kneighbors_items_never_returns_the_item_itself(fitted):
    distances, neighbors = fitted.kneighbors_items(n_neighbors=10)
    _, exact_neighbors = exact(fitted).kneighbors_items(n_neighbors=10)
    assert not (neighbors == np.arange(N_ITEMS)[:, None]).any()
    assert overlap(neighbors, exact_neighbors) >= 0.9
    check_rows(distances, neighbors, fitted.item_embeddings_, fitted.item_embeddings_)


def test_predict_leaves_out_the_rows_own_items(fitted, interactions):
    rows = interactions[:40]
    items = fitted.predict(rows, n_items=15)
    assert items.shape == exact(fitted).predict(rows, n_items=15).shape
    for row in range(40):
        assert not np.isin(items[row], rows[row].indices).any()
    assert overlap(items, exact(fitted).predict(rows, n_items=15)) >= 0.95


def test_filter_items_are_left_out_and_cap_the_width_as_in_exact_search(fitted):
    filtered = np.arange(0, N_ITEMS, 2)
    users = np.arange(50)
    for n_items in (10, N_ITEMS):
        items = fitted.recommend(users, n_items=n_items, filter_items=filtered)
        exact_items = exact(fitted).recommend(users, n_items=n_items, filter_items=filtered)
        assert items.shape == exact_items.shape
        assert not np.isin(items, filtered).any()
        # More than EXACT_SHARE of the items are excluded: answered exactly.
        np.testing.assert_array_equal(items, exact_items)


def test_items_restricts_the_candidates_exactly(fitted):
    candidates = np.arange(100, 160)
    items = fitted.recommend(np.arange(20), n_items=10, items=candidates)
    np.testing.assert_array_equal(
        items, exact(fitted).recommend(np.arange(20), n_items=10, items=candidates))


def test_a_query_asking_for_every_item_pads_as_the_exact_search(fitted):
    users = np.arange(10)
    distances, items = fitted.recommend(users, n_items=N_ITEMS + 5, return_distance=True)
    exact_distances, exact_items = exact(fitted).recommend(users, n_items=N_ITEMS + 5,
                                                          return_distance=True)
    np.testing.assert_array_equal(items, exact_items)
    np.testing.assert_array_equal(distances, exact_distances)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n_queries=st.integers(0, 12), k=st.integers(1, 40),
       max_excluded=st.integers(0, 300))
def test_the_search_keeps_the_top_k_contract_under_any_exclusions(
    fitted, seed, n_queries, k, max_excluded
):
    """Through the one rule between the searches: a query that would ask the
    graph for more than its share of the items is answered exactly."""
    rng = np.random.default_rng(seed)
    queries = rng.standard_normal((n_queries, 16)).astype(np.float32) * 0.3
    counts = rng.integers(0, max_excluded + 1, n_queries)
    rows = [np.sort(rng.choice(N_ITEMS, c, replace=False)) for c in counts]
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    excluded = np.concatenate(rows + [np.zeros(0, np.int64)]).astype(np.int32)
    distances, items = nearest_items(fitted._model, fitted._search(), queries, k,
                                     (indptr, excluded))
    exact_distances, exact_items = exact_top_k(queries, fitted.item_embeddings_, k,
                                               (indptr, excluded))
    assert items.shape == exact_items.shape == (n_queries, min(k, N_ITEMS))
    for row in range(n_queries):
        assert not np.isin(items[row], rows[row]).any()
        # As many items as are eligible (the exact search's count).
        assert (items[row] >= 0).sum() == (exact_items[row] >= 0).sum()
        if min(k, N_ITEMS) + counts[row] > EXACT_SHARE * N_ITEMS:
            np.testing.assert_array_equal(items[row], exact_items[row])
    check_rows(distances, items, queries, fitted.item_embeddings_)


@searches
def test_the_graph_is_built_once_and_follows_the_vectors(interactions, search):
    _, backend, query_setting, build_setting = BACKENDS[require(search)]
    model = CMLRecommender(n_components=8, n_epochs=2, random_state=0, search=search)
    model.fit(interactions)
    first = model.recommend(np.arange(5), n_items=5)
    index = index_of(model)
    model.recommend(np.arange(5), n_items=5)
    model.set_params(search_params=query_setting)  # a query setting: same graph
    model.recommend(np.arange(5), n_items=5)
    assert index_of(model) is index
    model.set_params(search_params=build_setting)  # another graph
    model.recommend(np.arange(5), n_items=5)
    assert index_of(model) is not index
    assert index_of(model).build_params == {**{name: backend.DEFAULT_PARAMS[name]
                                               for name in backend.BUILD_PARAMS},
                                            **build_setting}
    index = index_of(model)
    model.partial_fit(interactions)  # moves the vectors: a new fitted model
    assert index_of(model) is None
    model.recommend(np.arange(5), n_items=5)
    assert index_of(model) is not index
    assert index_of(model).item_embeddings is model.item_embeddings_
    assert first.shape == (5, 5)


def test_the_same_seed_builds_the_same_graph(fitted, interactions):
    twin = clone(fitted)
    twin.fit(interactions)
    np.testing.assert_array_equal(twin.recommend(np.arange(N_USERS), n_items=20),
                                  fitted.recommend(np.arange(N_USERS), n_items=20))


def test_pickles_and_model_files_leave_the_graph_out(fitted, tmp_path):
    restored = pickle.loads(pickle.dumps(fitted))
    assert index_of(restored) is None
    _, _, query_setting, build_setting = BACKENDS[fitted.search]
    settings = {**query_setting, **build_setting}
    fitted.set_params(search_params=settings)
    try:
        fitted.save(tmp_path / "model.npz")
        loaded = load_model(tmp_path / "model.npz")
    finally:
        fitted.set_params(search_params=None)
    assert loaded.search == fitted.search
    assert loaded.search_params == settings
    items = loaded.recommend(np.arange(N_USERS), n_items=20, filter_seen=False)
    reference = exact(fitted).recommend(np.arange(N_USERS), n_items=20, filter_seen=False)
    assert overlap(items, reference) >= 0.95


@pytest.mark.parametrize("search, search_params, message", [
    ("nndescent", {"degree": 10}, "unknown keys ['degree']"),
    ("nndescent", {"n_neighbors": 1}, "n_neighbors'] must be an int >= 2"),
    ("nndescent", {"n_neighbors": 2.5}, "n_neighbors'] must be an int >= 2"),
    ("nndescent", {"epsilon": -0.1}, "epsilon'] must be a number in [0, 10]"),
    ("nndescent", {"epsilon": "wide"}, "epsilon'] must be a number in [0, 10]"),
    ("hnsw", {"n_neighbors": 10}, "unknown keys ['n_neighbors']; search='hnsw' takes"),
    ("hnsw", {"M": 1}, "['M'] must be an int in [2, 1024], got 1: the graph's degree"),
    ("hnsw", {"ef": 0.5}, "['ef'] must be an int in [1, 1048576]"),
    ("hnsw", {"ef_construction": True}, "['ef_construction'] must be an int"),
])
def test_bad_search_params_are_refused_before_training_and_at_query(
    interactions, search, search_params, message
):
    model = CMLRecommender(n_components=8, n_epochs=1, search=require(search),
                           search_params=search_params)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        model.fit(interactions)
    assert not hasattr(model, "user_embeddings_")
    model = CMLRecommender(n_components=8, n_epochs=1, random_state=0).fit(interactions)
    before = model.recommend([0, 1], n_items=5)
    model.set_params(search=search, search_params=search_params)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        model.recommend([0, 1], n_items=5)
    model.set_params(search="exact", search_params=None)
    np.testing.assert_array_equal(model.recommend([0, 1], n_items=5), before)


def test_search_params_must_be_a_dict(interactions):
    with pytest.raises(Exception, match="search_params"):
        CMLRecommender(n_epochs=1, search_params=[("epsilon", 0.1)]).fit(interactions)


@pytest.mark.parametrize("search, module", [("nndescent", "_ann"), ("hnsw", "_hnsw")])
def test_without_its_library_the_error_says_how_to_install_it(monkeypatch, search, module):
    import importlib

    monkeypatch.setattr(importlib.import_module(f"sklearn_cml.{module}"), "find_spec",
                        lambda name: None)
    library = BACKENDS[search][0]
    with pytest.raises(ImportError, match=rf'{search}.* needs {library}: pip install '
                                          r'"sklearn-cml\[ann\]"'):
        check_search(search, None)
    with pytest.raises(ImportError, match="sklearn-cml"):
        CMLRecommender(n_epochs=1, search=search).fit(make_interactions(20, 30))
    assert check_search("exact", None) == {}


@searches
def test_a_tiny_catalogue_is_answered_exactly(search):
    backend = BACKENDS[require(search)][1]
    vectors = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    index = backend(vectors, backend.DEFAULT_PARAMS, seed=0, n_threads=1)
    queries = vectors[[0, 2]]
    itself = (np.arange(3, dtype=np.int64), np.array([0, 2], np.int32))
    distances, items = index.top_k(queries, 5, itself, backend.DEFAULT_PARAMS)
    np.testing.assert_array_equal((distances, items), exact_top_k(queries, vectors, 5, itself))


def test_rows_the_search_leaves_short_are_answered_exactly():
    vectors = np.random.default_rng(1).standard_normal((1000, 4)).astype(np.float32)
    asked = []

    def half_found(rows, width):
        """A search that finds only the first half of what it is asked for."""
        asked.append(rows.size)
        found = np.tile(np.arange(width, dtype=np.int32), (rows.size, 1))
        found[:, width // 2:] = -1
        return found, np.where(found >= 0, 1.0, np.inf).astype(np.float32)

    queries = vectors[:6] + 0.01
    distances, items = approximate_top_k(half_found, queries, vectors, 8, None)
    assert asked == [6]
    np.testing.assert_array_equal((distances, items), exact_top_k(queries, vectors, 8, None))


def test_a_short_filter_reaches_the_graph_a_chunk_of_users_at_a_time(fitted, monkeypatch):
    import sklearn_cml._query as query

    users, filtered = np.arange(40), np.arange(0, 40, 4)
    whole = fitted.recommend(users, n_items=10, filter_items=filtered, return_distance=True)
    monkeypatch.setattr(query, "BATCH_ENTRIES", 3 * filtered.size)  # 3 users a chunk
    chunked = fitted.recommend(users, n_items=10, filter_items=filtered, return_distance=True)
    # The rows sent to the exact search may round their distances
    # differently in a product of fewer rows; the items are the same.
    np.testing.assert_array_equal(chunked[1], whole[1])
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-6)
    assert not np.isin(chunked[1], filtered).any()
    exact_items = exact(fitted).recommend(users, n_items=10, filter_items=filtered)
    assert chunked[1].shape == exact_items.shape
    assert overlap(chunked[1], exact_items) >= 0.95


def test_a_long_filter_goes_to_the_exact_search_without_an_entry_per_user(fitted, monkeypatch):
    import sklearn_cml._query as query

    def refuse(*args):
        raise AssertionError("a long filter built an exclusion entry per user")

    monkeypatch.setattr(query, "_plus_columns", refuse)
    filtered = np.arange(0, N_ITEMS, 10)  # 10% of the items: past the graph's share
    items = fitted.recommend(np.arange(30), n_items=10, filter_items=filtered)
    np.testing.assert_array_equal(
        items, exact(fitted).recommend(np.arange(30), n_items=10, filter_items=filtered))


def test_with_an_exact_search_behind_it_the_over_asking_is_exact(monkeypatch):
    """The over-asking, dropping, chunking and fallback add no error of their own."""
    import sklearn_cml._ann as ann

    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((2000, 6)).astype(np.float32)
    queries = rng.standard_normal((50, 6)).astype(np.float32)
    counts = rng.integers(0, 25, 50)  # widths up to 32: within the chunks' bound
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    excluded = np.concatenate(
        [np.sort(rng.choice(2000, c, replace=False)) for c in counts]).astype(np.int32)
    calls = []

    def exact_search(rows, width):
        calls.append((rows.size, width))
        distances, found = exact_top_k(queries[rows], vectors, width, None)
        return found, distances

    monkeypatch.setattr(ann, "BATCH_ENTRIES", 64)  # 4 queries a chunk at width 16
    got = approximate_top_k(exact_search, queries, vectors, 8, (indptr, excluded))
    # Chunked (more calls than widths, none past the bound), and the graph asked.
    assert len(calls) > len({width for _, width in calls})
    assert all(n_rows * width <= 64 for n_rows, width in calls)
    assert sum(n_rows for n_rows, _ in calls) >= 10
    want = exact_top_k(queries, vectors, 8, (indptr, excluded))
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)


def test_any_n_items_with_a_short_filter_answers_as_the_exact_search(fitted):
    users, filtered = np.arange(5), np.arange(0, 40, 4)
    for n_items in (N_ITEMS + 1, 2**70):
        items = fitted.recommend(users, n_items=n_items, filter_items=filtered)
        np.testing.assert_array_equal(
            items, exact(fitted).recommend(users, n_items=n_items, filter_items=filtered))


@searches
def test_verbose_announces_a_slow_build_in_one_line(interactions, search, capsys, monkeypatch):
    import sklearn_cml._ann as ann

    library, _, _, build_setting = BACKENDS[require(search)]
    model = CMLRecommender(n_components=8, n_epochs=1, random_state=0, search=search)
    model.fit(interactions)
    capsys.readouterr()
    model.recommend([0], n_items=5)  # verbose=0: silent
    assert capsys.readouterr().out == ""
    # Just above this catalogue's entries: only a backend that compiles speaks.
    monkeypatch.setattr(ann, "SLOW_BUILD_ENTRIES", N_ITEMS * 8 + 1)
    model.set_params(verbose=1, search_params=build_setting)  # a new graph
    model.recommend([0], n_items=5)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == (search == "nndescent")
    assert all("compiles" in line and "search='hnsw'" in line for line in lines)
    monkeypatch.setattr(ann, "SLOW_BUILD_ENTRIES", N_ITEMS * 8)
    model.set_params(search_params=None)  # another graph, now a slow one
    model.recommend([0], n_items=5)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Building the {library} index of {N_ITEMS} items x 8 dimensions")
    model.recommend([1], n_items=5)  # the graph is kept: nothing more to say
    assert capsys.readouterr().out == ""
