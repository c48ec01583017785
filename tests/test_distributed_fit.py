"""Data-parallel training on a Dask cluster (``sklearn_cml.distributed.fit``).

A LocalCluster of two single-threaded worker processes stands in for a
cluster.  The planted problem is small (400 users in 6 taste clusters), so
the whole module runs in seconds once the kernels are compiled.  Skipped,
with the reason printed, when ``dask.distributed`` is not installed.
"""

import os
import signal

import numpy as np
import pytest
import scipy.sparse as sp
from _dask import local_client, needs_dask
from _helpers import hold_out, recall_of_recommendations

from sklearn_cml import CMLRecommender, load_model
from sklearn_cml.datasets import make_interactions
from sklearn_cml.preprocessing import InteractionEncoder

PARAMS = dict(n_components=8, n_epochs=10, random_state=0, n_jobs=1)
K = 10



# First, before the module's client exists.
def test_without_a_client_it_says_how_to_make_one(planted):
    distributed_module = needs_dask()
    from sklearn_cml import distributed

    try:
        distributed_module.default_client()
    except ValueError:
        pass
    else:
        reason = "a Dask client made before this module is still current"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    with pytest.raises(ValueError, match="found no Dask client: create one first"):
        distributed.fit(CMLRecommender(**PARAMS), planted[0])


@pytest.fixture(scope="module")
def client():
    """A client of two single-threaded worker processes, for the whole module."""
    with local_client() as client:
        yield client


@pytest.fixture(scope="module")
def planted():
    """``(train, test)``: 400 users in 6 taste clusters, 20% of pairs held out."""
    X = make_interactions(n_users=400, n_items=120, n_clusters=6, mean_interactions=12,
                          random_state=1)
    return hold_out(X, 0.2)


@pytest.fixture(scope="module")
def fitted(client, planted):
    from sklearn_cml import distributed

    return distributed.fit(CMLRecommender(**PARAMS), planted[0], client=client)


def test_recall_matches_the_single_process_fit(planted, fitted):
    train, test = planted
    single = CMLRecommender(**PARAMS).fit(train)
    random = CMLRecommender(**{**PARAMS, "n_epochs": 1}).fit(train)
    single_recall = recall_of_recommendations(single, train, test, K)
    distributed_recall = recall_of_recommendations(fitted, train, test, K)
    # Within noise of one process (fits of other seeds spread by about
    # 0.02 here), and far above a barely trained model.
    assert abs(distributed_recall - single_recall) < 0.05
    assert distributed_recall > recall_of_recommendations(random, train, test, K) + 0.1
    assert fitted.n_iter_ == PARAMS["n_epochs"] and len(fitted.loss_curve_) == fitted.n_iter_


def test_reproducible_for_a_fixed_number_of_shards_and_seed(client, planted, fitted):
    from sklearn_cml import distributed

    again = distributed.fit(CMLRecommender(**PARAMS), planted[0], client=client)
    np.testing.assert_array_equal(again.user_embeddings_, fitted.user_embeddings_)
    np.testing.assert_array_equal(again.item_embeddings_, fitted.item_embeddings_)
    other_shape = distributed.fit(CMLRecommender(**PARAMS), planted[0], client=client,
                                  n_shards=3)
    assert not np.array_equal(other_shape.item_embeddings_, fitted.item_embeddings_)


def test_a_dask_array_of_row_blocks_trains_as_its_matrix(client, planted, fitted):
    import dask
    import dask.array as da

    from sklearn_cml import distributed

    train = planted[0]
    bounds = [0, 100, 200, 300, 400]
    blocks = [da.from_delayed(dask.delayed(train.__getitem__)(slice(start, stop)),
                              shape=(stop - start, train.shape[1]), dtype=train.dtype,
                              meta=sp.csr_matrix((0, 0), dtype=train.dtype))
              for start, stop in zip(bounds[:-1], bounds[1:])]
    model = distributed.fit(CMLRecommender(**PARAMS), da.concatenate(blocks), client=client)
    # Interactions split evenly over 4 blocks: shards of 2 blocks each.
    assert model.n_features_in_ == train.shape[1]
    assert (model.user_items_ != (train > 0)).nnz == 0
    assert model.user_embeddings_.shape == fitted.user_embeddings_.shape


def test_the_result_saves_recommends_folds_in_and_trains_on(tmp_path, planted, fitted):
    train, _ = planted
    path = tmp_path / "model.npz"
    fitted.save(path, include_optimizer_state=True)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.recommend(np.arange(5), n_items=K),
                                  fitted.recommend(np.arange(5), n_items=K))
    assert (fitted.user_items_ != (train > 0)).nnz == 0
    assert fitted.recommend([0], n_items=K, filter_seen=True).shape == (1, K)
    assert not set(fitted.recommend([0], n_items=K)[0]) & set(train[0].indices)
    assert fitted.transform(train[:3]).shape == (3, PARAMS["n_components"])
    loaded.partial_fit(train, n_epochs=2)
    assert loaded.n_iter_ == PARAMS["n_epochs"] + 2


def test_an_encoded_table_keeps_its_ids(client):
    import pandas as pd

    from sklearn_cml import distributed

    table = pd.DataFrame({"user": ["a", "a", "b", "c", "c", "d"],
                          "item": ["x", "y", "y", "x", "z", "z"]})
    X = InteractionEncoder("user", "item").fit_transform(table)
    model = distributed.fit(CMLRecommender(**PARAMS), X, client=client)
    assert list(model.user_ids_) == ["a", "b", "c", "d"]
    assert model.recommend(["a"], n_items=1)[0][0] == "z"


def test_a_worker_killed_mid_fit_does_not_lose_the_fit(client, planted, fitted):
    from sklearn_cml._distributed_fit import distributed_fit

    train, test = planted
    killed = []

    def kill_a_worker(driver):
        # Two epochs in, while the shards train: kill one worker process.
        if driver.n_iter == 2 and not killed:
            pids = client.run(os.getpid)
            victim = sorted(pids)[0]
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)

    model, driver = distributed_fit(CMLRecommender(**PARAMS), train, client, None, 1,
                                    on_round=kill_a_worker)
    assert killed and driver.n_rebuilt >= 1
    assert model.n_iter_ == PARAMS["n_epochs"]
    undisturbed = recall_of_recommendations(fitted, train, test, K)
    assert abs(recall_of_recommendations(model, train, test, K) - undisturbed) < 0.05
    client.wait_for_workers(2, timeout=60)


def test_bytes_per_epoch_follow_the_formula_and_verbose_prints_them(client, planted, capsys):
    from sklearn_cml._distributed_fit import distributed_fit

    train = planted[0]
    n_epochs, n_components, n_shards = 5, PARAMS["n_components"], 3
    params = {**PARAMS, "n_epochs": n_epochs, "verbose": 1}
    _, driver = distributed_fit(CMLRecommender(**params), train, client, n_shards, 2)
    # Item vectors (K float32) and AdaGrad sums (one float32), from and to
    # every shard, after epochs 2, 4 and 5.
    per_combination = n_shards * train.shape[1] * (4 * n_components + 4)
    assert driver.bytes_per_round == [(per_combination, per_combination)] * 3
    printed = capsys.readouterr().out
    assert printed.count("item arrays combined across 3 shards") == 3
    assert "Epoch 5/5" in printed


@pytest.mark.parametrize("params, options, match", [
    ({"early_stopping": True}, {}, "early_stopping=True is not supported"),
    ({"early_stopping": "auto"}, {}, "early_stopping='auto' is not supported"),
    ({}, {"n_shards": 0}, "n_shards must be a positive integer"),
    ({}, {"n_shards": 1000}, "n_shards=1000 is more than X's 400 users"),
    ({}, {"combine_every": 0}, "combine_every must be a positive integer"),
    ({}, {"item_features": np.eye(120)}, "item_features are not supported"),
    ({"solver": "hogwild"}, {}, "solver='hogwild' is not supported"),
])
def test_bad_inputs_are_refused_and_leave_the_model_unchanged(client, planted, params,
                                                               options, match):
    from sklearn_cml import distributed

    model = CMLRecommender(**{**PARAMS, **params})
    with pytest.raises(ValueError, match=match):
        distributed.fit(model, planted[0], client=client, **options)
    assert not hasattr(model, "n_features_in_")


def test_something_else_than_an_estimator_is_refused(client, planted):
    from sklearn_cml import distributed

    with pytest.raises(TypeError, match="must be a CMLRecommender"):
        distributed.fit("not a model", planted[0], client=client)


def test_item_updates_of_the_shards_add_up_at_one_process_step_size():
    from sklearn_cml._shard import combine_item_updates

    rng = np.random.default_rng(0)
    items = rng.normal(size=(6, 3)).astype(np.float32)
    grad_sq = np.full(6, 1.0, np.float32)
    copies, sums = [items.copy(), items.copy(), items.copy()], [grad_sq.copy() for _ in range(3)]
    copies[0][1] += 0.5  # item 1: moved by one shard only, which keeps its step
    sums[0][1] += 3.0
    copies[1][2] += 0.25  # item 2: moved by two shards, each at its own step size
    sums[1][2] += 1.0
    copies[2][2] -= 0.125
    sums[2][2] += 2.0
    combined, combined_sq = combine_item_updates(items, grad_sq, copies, sums)
    expected = items.astype(np.float64)
    expected[1] += 0.5
    # Item 2's sum is 1 + 1 + 2 = 4: each shard's change rescaled from its
    # own sum (2, then 3) to 4.
    expected[2] += 0.25 * np.sqrt(2 / 4) - 0.125 * np.sqrt(3 / 4)
    np.testing.assert_allclose(combined, expected, rtol=1e-6)
    np.testing.assert_array_equal(combined[[0, 3, 4, 5]], items[[0, 3, 4, 5]])
    np.testing.assert_allclose(combined_sq, [1, 4, 4, 1, 1, 1], rtol=1e-6)
    assert combined.dtype == combined_sq.dtype == np.float32


def test_the_overlap_factors_keep_the_sum_for_items_few_steps_move():
    from sklearn_cml._shard import OVERLAP_RATE, overlap_factors

    steps = np.array([[0.0, 3.0, 2.0, 400.0, 1.5],
                      [0.0, 0.0, 2.0, 400.0, 0.5]])
    factors = overlap_factors(steps)
    rate = OVERLAP_RATE
    assert factors[0] == 1.0  # no step: nothing to shrink
    assert factors[1] == pytest.approx(1.0)  # one shard's change alone
    # Two shards of m steps each: (1 - e^{-2 rate m}) / (2 (1 - e^{-rate m})).
    assert factors[2] == pytest.approx((1 + np.exp(-2 * rate)) / 2)
    assert factors[3] == pytest.approx(0.5)  # both went all the way: one move
    assert factors[4] == pytest.approx(-np.expm1(-2 * rate)
                                       / (-np.expm1(-1.5 * rate) - np.expm1(-0.5 * rate)))
    np.testing.assert_array_equal(overlap_factors(steps[:1]), 1.0)  # one shard
    assert overlap_factors(np.full((4, 1), 1e4))[0] == pytest.approx(0.25)
    # The two ends: the sum of the changes, and their mean over the shards
    # that stepped the item.
    np.testing.assert_array_equal(overlap_factors(steps, rate=0), 1.0)
    np.testing.assert_allclose(overlap_factors(steps, rate=np.inf), [1, 1, 0.5, 0.5, 0.5])


def test_the_factors_scale_the_summed_change():
    from sklearn_cml._shard import combine_item_updates

    items = np.zeros((2, 3), np.float32)
    grad_sq = np.full(2, 1e6, np.float32)  # the rescaling is about 1
    copies = [items + 0.5, items + 0.25]
    sums = [grad_sq.copy(), grad_sq.copy()]
    combined, _ = combine_item_updates(items, grad_sq, copies, sums, np.array([1.0, 0.5]))
    np.testing.assert_allclose(combined, [[0.75] * 3, [0.375] * 3], rtol=1e-6)


def test_pool_steps_count_the_block_solvers_draws():
    from types import SimpleNamespace

    from sklearn_cml._interactions import to_interactions
    from sklearn_cml._sampling import popularity_sampler
    from sklearn_cml._shard import pool_steps
    from sklearn_cml._solvers.block import GROUP_SIZE, _empty_pool, draw_pool, make_plan

    X = make_interactions(n_users=300, n_items=120, n_clusters=4, mean_interactions=6,
                          random_state=0)
    n_items = X.shape[1]
    counts = np.bincount(X.indices, minlength=n_items)
    config = SimpleNamespace(negative_sampling_exponent=0.75, pool_size=40, block_size=200)
    shards = [to_interactions(X[:100]), to_interactions(X[100:])]
    expected = pool_steps(counts, [shard.n_interactions for shard in shards], config)
    sampler = popularity_sampler(counts.astype(np.int64), 0.75)
    pool = _empty_pool(config.pool_size, n_items)
    rng_state, stamp, n_epochs = np.uint64(12345), 0, 2000
    for shard, shard_expected in zip(shards, expected):
        plan = make_plan(shard.indptr, shard.indices, np.ones(shard.n_interactions, np.float32),
                         GROUP_SIZE, config.block_size, 0)
        n_blocks = plan.block_ptr.shape[0] - 1
        seen = np.zeros(n_items)
        for _ in range(n_epochs * n_blocks):
            stamp += 1
            rng_state = np.uint64(draw_pool(rng_state, sampler, n_items, pool, stamp))
            seen[np.unique(pool.items)] += 1
        np.testing.assert_allclose(seen / n_epochs, shard_expected, rtol=0.1, atol=0.05)
