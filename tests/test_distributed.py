"""Tuning and batch recommendation on a Dask cluster.

A LocalCluster of two worker processes stands in for a cluster
(``tests/_dask.py``).  The tests that need dask are skipped, with the reason
printed, when ``dask.distributed`` is not installed (``pip install -e
'.[test]'`` installs it).
"""

import subprocess
import sys

import joblib
import numpy as np
import pytest
from _dask import local_client, needs_dask
from sklearn.model_selection import GridSearchCV

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions
from sklearn_cml.distributed import recommend_batches
from sklearn_cml.metrics import make_ranking_scorer

# n_jobs=1: each worker has one thread, so a model must not start more.
PARAMS = dict(n_components=8, n_epochs=3, random_state=0, n_jobs=1, top_k=10)


@pytest.fixture(scope="module")
def client():
    """A client of two single-threaded worker processes, for the whole module."""
    with local_client() as client:
        yield client


@pytest.fixture(scope="module")
def model():
    X = make_interactions(n_users=120, n_items=50, random_state=0)
    return CMLRecommender(**PARAMS).fit(X)


def _tasks_run_on(client, work):
    """Run ``work()`` and return its result and the names of the tasks the cluster ran."""
    from dask.distributed import get_task_stream

    with get_task_stream(client) as stream:
        result = work()
    return result, [task["key"] for task in stream.data]


def test_grid_search_on_the_cluster_matches_the_local_one(client):
    X = make_interactions(n_users=90, n_items=40, random_state=1)

    def search():
        return GridSearchCV(
            CMLRecommender(**PARAMS),
            {"n_components": [4, 8], "margin": [0.5, 1.0]},
            scoring=make_ranking_scorer("recall", k=10), cv=3,
        )

    local = search().fit(X)

    def on_cluster():
        with joblib.parallel_backend("dask"):
            return search().fit(X)

    remote, tasks = _tasks_run_on(client, on_cluster)
    assert tasks, "no task ran on the cluster: the dask backend was not used"
    assert remote.best_params_ == local.best_params_
    # Fits are reproducible for a fixed random_state; a rare last-bit
    # difference between repeated fits has been seen, hence the tolerance.
    for name in ["mean_test_score", *(f"split{i}_test_score" for i in range(3))]:
        np.testing.assert_allclose(remote.cv_results_[name], local.cv_results_[name],
                                   rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("filter_seen", [True, False])
def test_batches_equal_recommend_chunk_by_chunk(client, model, filter_seen):
    # Uneven chunks, one of a single user, users out of order and repeated.
    users = np.random.default_rng(0).permutation(120)[:70]
    users = np.concatenate([users, users[:5]])
    bounds = [0, 1, 18, 19, 50, len(users)]
    chunks = [users[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    expected_distances, expected_items = model.recommend(
        users, n_items=7, filter_seen=filter_seen, return_distance=True
    )
    results, tasks = _tasks_run_on(client, lambda: list(recommend_batches(
        model, iter(chunks), n_items=7, filter_seen=filter_seen, client=client, max_pending=2
    )))
    assert any("_recommend_chunk" in str(key) for key in tasks)
    assert len(results) == len(chunks)
    for (got_users, distances, items), chunk, a, b in zip(results, chunks, bounds[:-1],
                                                          bounds[1:]):
        np.testing.assert_array_equal(got_users, chunk)
        # Bitwise what recommend gives for the same chunk on this machine.
        same_chunk = model.recommend(chunk, n_items=7, filter_seen=filter_seen,
                                     return_distance=True)
        np.testing.assert_array_equal(distances, same_chunk[0])
        np.testing.assert_array_equal(items, same_chunk[1])
        # And what it gives for all the users at once, but for the last bit of
        # the distances: the matrix product behind them rounds differently for
        # a different number of rows.
        np.testing.assert_array_equal(items, expected_items[a:b])
        np.testing.assert_allclose(distances, expected_distances[a:b], rtol=1e-6)


def test_batches_of_a_dask_array_and_of_a_saved_model(client, model, tmp_path):
    import dask.array as da

    path = tmp_path / "model.npz"
    model.save(path, include_training_matrix=True)
    users = np.arange(0, 120, 3)
    blocks = da.from_array(users, chunks=(7,))  # 40 users: five blocks of 7, one of 5
    results = list(recommend_batches(path, blocks, n_items=4))  # the default client
    assert [len(found_users) for found_users, _, _ in results] == [7, 7, 7, 7, 7, 5]
    expected_distances, expected_items = model.recommend(users, n_items=4, return_distance=True)
    np.testing.assert_array_equal(np.concatenate([r[0] for r in results]), users)
    np.testing.assert_allclose(np.concatenate([r[1] for r in results]), expected_distances,
                               rtol=1e-6)  # last bit: see the test above
    np.testing.assert_array_equal(np.concatenate([r[2] for r in results]), expected_items)


def test_batches_of_user_ids_return_item_ids(client):
    pd = pytest.importorskip("pandas", reason="pandas is needed for a table of ids")
    from sklearn_cml.preprocessing import InteractionEncoder

    X = make_interactions(n_users=60, n_items=30, random_state=2).tocoo()
    table = pd.DataFrame({"user": np.char.add("u", X.row.astype(str)),
                          "item": np.char.add("i", X.col.astype(str))})
    model = CMLRecommender(**PARAMS).fit(InteractionEncoder("user", "item").fit_transform(table))
    users = model.user_ids_[::2]
    expected = model.recommend(users, n_items=5)
    found = [items for _, _, items in recommend_batches(
        model, np.array_split(users, 3), n_items=5, client=client)]
    np.testing.assert_array_equal(np.concatenate(found), expected)
    # Item ids, None where a user has fewer eligible items.
    assert set(np.concatenate(found).ravel()) - {None} <= set(model.item_ids_)


def test_batches_of_a_saved_pipeline_take_and_return_ids(client, tmp_path):
    from sklearn_cml import make_recommender
    from sklearn_cml.preprocessing import InteractionEncoder

    X = make_interactions(n_users=60, n_items=30, random_state=3).tocoo()
    table = [(f"u{user}", f"i{item}") for user, item in zip(X.row, X.col)]
    pipeline = make_recommender(InteractionEncoder(), CMLRecommender(**PARAMS)).fit(table)
    path = tmp_path / "pipeline.npz"
    pipeline.save(path)
    users = np.array([f"u{user}" for user in range(0, 60, 4)], dtype=object)
    found = [items for _, _, items in recommend_batches(
        path, np.array_split(users, 3), n_items=5, client=client)]
    np.testing.assert_array_equal(np.concatenate(found), pipeline.recommend(users, n_items=5))


def test_errors_name_the_problem(client, model):
    with pytest.raises(TypeError, match="fitted CMLRecommender"):
        recommend_batches(object(), [[0]], client=client)
    with pytest.raises(ValueError, match="n_items must be a positive integer"):
        recommend_batches(model, [[0]], n_items=0, client=client)
    with pytest.raises(ValueError, match="max_pending"):
        recommend_batches(model, [[0]], client=client, max_pending=0)
    with pytest.raises(TypeError, match="iterable of 1-D arrays"):
        next(recommend_batches(model, np.arange(5), client=client))
    with pytest.raises(ValueError, match="Chunk 1 of user_chunks has shape"):
        list(recommend_batches(model, [[0, 1], [[2, 3]]], client=client))
    with pytest.raises(ValueError, match="Chunk 0 .* non-empty"):
        list(recommend_batches(model, [[]], client=client))
    with pytest.raises(ValueError):  # an unknown user: recommend's own error, from the worker
        list(recommend_batches(model, [[0], [10_000]], client=client))
    # The cluster still answers after the errors.
    (_, _, items), = recommend_batches(model, [[3]], n_items=2, client=client)
    np.testing.assert_array_equal(items, model.recommend([3], n_items=2))


def test_without_dask_an_import_error_says_how_to_install(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cml\[dask\]'"):
        recommend_batches(model, [[0]])


def test_importing_the_package_does_not_import_dask():
    code = ("import sys, sklearn_cml, sklearn_cml.distributed; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dask'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_without_a_client_the_error_says_how_to_start_one(model, monkeypatch):
    distributed = needs_dask()

    def no_client():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "default_client", no_client)
    with pytest.raises(ValueError, match=r"no Dask client: create one first"):
        recommend_batches(model, [[0]])
