"""The EASE peer of benchmarks/ and how compare.py skips a peer on a dataset.

The peers are benchmark code, run by hand; these tests pin what a reader
of the results relies on: EASE's closed form is the one of the paper, it
holds one n_items x n_items matrix at its peak, it runs on one BLAS thread
past ``SINGLE_THREAD_ITEMS``, and a dataset too large for the memory is
reported as skipped instead of crashing the run.  The modules are imported
as the scripts import them (``benchmarks/`` on ``sys.path``) and dropped
from ``sys.modules`` afterwards, so that other tests import their own.
"""

import contextlib
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import hold_out, planted_blocks

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    """``(compare, peers)`` imported from benchmarks/, forgotten afterwards."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    before = set(sys.modules)
    import compare
    import peers

    yield compare, peers
    for name in set(sys.modules) - before:
        module_file = getattr(sys.modules[name], "__file__", None)
        if module_file and Path(module_file).is_relative_to(BENCHMARKS):
            del sys.modules[name]


def _binary(n_users=120, n_items=60, density=0.15, seed=0):
    X = sp.random(n_users, n_items, density=density, format="csr", dtype=np.float32,
                  random_state=seed)
    X.data[:] = 1.0
    return X


def _reference_weights(X, l2):
    """EASE in float64 numpy, as in the paper's listing."""
    gram = (X.T @ X).toarray().astype(np.float64) + l2 * np.eye(X.shape[1])
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights


@pytest.mark.parametrize("block_elements", [1 << 22, 7 * 60])  # one block, or several
def test_ease_weights_are_the_closed_form(bench, monkeypatch, block_elements):
    _, peers = bench
    monkeypatch.setattr(peers.ease, "_BLOCK_ELEMENTS", block_elements)
    X = _binary()
    weights = peers.ease.ease_weights(X, 5.0)
    assert weights.dtype == np.float32 and weights.flags.c_contiguous
    np.testing.assert_array_equal(np.diagonal(weights), 0.0)
    np.testing.assert_allclose(weights, _reference_weights(X, 5.0), atol=2e-6)


def test_ease_weights_peak_is_one_matrix(bench, monkeypatch):
    _, peers = bench
    monkeypatch.setattr(peers.ease, "_BLOCK_ELEMENTS", 1 << 14)
    X = _binary(n_users=400, n_items=500, density=0.05)
    tracemalloc.start()
    try:
        peers.ease.ease_weights(X, 10.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    matrix = 4 * 500 * 500
    assert matrix <= peak < 1.3 * matrix, peak / matrix


def test_ease_train_scores_users_with_their_rows(bench):
    _, peers = bench
    X = _binary()
    calls = []
    peers.ease.train(X, {"l2": 5.0}, n_components=100, threads=1, n_epochs=1,
                     random_state=0, after_epoch=lambda *args: calls.append(args))
    assert [epoch for epoch, _ in calls] == [1]
    scores = calls[0][1]()
    users = np.array([3, 0, 7])
    expected = X[users].toarray() @ _reference_weights(X, 5.0)
    np.testing.assert_allclose(scores(users), expected, atol=1e-5)


def test_ease_ranks_held_out_items_of_the_users_block_first(bench):
    _, peers = bench
    X, _, item_block = planted_blocks(density=0.5)
    train, test = hold_out(X, 0.2)
    calls = []
    peers.ease.train(train, peers.ease.GRID[0], n_components=100, threads=1, n_epochs=1,
                     random_state=0, after_epoch=lambda *args: calls.append(args))
    scores = calls[0][1]()(np.arange(X.shape[0]))
    for user in range(X.shape[0]):
        held = test[user].indices
        if held.size:
            other = np.flatnonzero(item_block != item_block[held[0]])
            assert scores[user, held].min() > scores[user, other].max()


def test_ease_runs_on_one_blas_thread_past_the_limit(bench, monkeypatch):
    _, peers = bench
    limits = []

    @contextlib.contextmanager
    def recording_limits(**kwargs):
        limits.append(kwargs["limits"])
        yield

    monkeypatch.setattr(peers.ease, "threadpool_limits", recording_limits)
    X = _binary()
    for single_thread_items in (X.shape[1], X.shape[1] - 1):
        monkeypatch.setattr(peers.ease, "SINGLE_THREAD_ITEMS", single_thread_items)
        peers.ease.train(X, {"l2": 5.0}, n_components=100, threads=2, n_epochs=1,
                         random_state=0, after_epoch=lambda *args: None)
    assert limits == [2, 1]


def test_ease_is_skipped_when_its_matrix_does_not_fit(bench, monkeypatch):
    _, peers = bench
    monkeypatch.setattr(peers.ease, "available_bytes", lambda: 1_000_000)
    X = _binary(n_items=18_357, density=0.0001)
    assert peers.ease.peak_bytes(18_357) > 1.3e9
    with pytest.raises(peers.Skipped, match=r"needs 1\.4 GB .* 0\.0 GB available"):
        peers.ease.train(X, {"l2": 5.0}, n_components=100, threads=1, n_epochs=1,
                         random_state=0, after_epoch=lambda *args: pytest.fail("trained"))


def test_available_bytes_reads_the_machine(bench):
    _, peers = bench
    available = peers.ease.available_bytes()
    assert available is None or available > 0


def test_compare_reports_a_skipped_peer_and_runs_the_others(bench, monkeypatch, capsys):
    compare, peers = bench
    X, _, _ = planted_blocks(density=0.5)
    train, rest = hold_out(X, 0.4)
    validation, test = hold_out(rest, 0.5, seed=1)
    split = tuple(sp.csr_matrix(part, dtype=np.float32) for part in (train, validation, test))
    monkeypatch.setattr(compare, "load_split", lambda name, data_dir: (X, split))
    monkeypatch.setattr(peers.ease, "available_bytes", lambda: 100)

    chosen = [peers.ease, peers.popularity]
    dataset = compare.run_dataset(
        "ml-100k", None, chosen, 1, compare.SCHEDULES["quick"],
        {peer.NAME: peer.GRID for peer in chosen}, pause=0.0)
    assert list(dataset["models"]) == ["popularity"]
    assert "GB available" in dataset["skipped"]["EASE"]
    table = compare.results_table(dataset)
    assert "Skipped on this dataset: EASE (needs" in table
    assert "skipped on this dataset" in capsys.readouterr().out

    # Without the memory cap, EASE runs and its row shows its fit seconds.
    monkeypatch.setattr(peers.ease, "available_bytes", lambda: None)
    dataset = compare.run_dataset(
        "ml-100k", None, chosen, 1, compare.SCHEDULES["quick"],
        {peer.NAME: peer.GRID for peer in chosen}, pause=0.0)
    assert list(dataset["models"]) == ["EASE", "popularity"] and not dataset["skipped"]
    row = next(line for line in compare.results_table(dataset).splitlines()
               if line.startswith("| EASE"))
    fields = [field.strip() for field in row.strip("|").split("|")]
    assert fields[2] == "-" and fields[6] == "-"  # no epochs, no seconds per epoch
    assert float(fields[7]) >= 0 and float(fields[9]) >= float(fields[7])


def test_every_suite_runs_ease(bench):
    compare, peers = bench
    assert peers.ease in peers.PEERS
    assert peers.PEERS.index(peers.ease) == peers.PEERS.index(peers.implicit_models.als) + 1
    for suite, schedules in compare.SCHEDULES.items():
        assert schedules["none"] == (1, 1), suite
    assert compare.SUITE_DATASETS["amazon"] == (
        "amazon-beauty", "amazon-sports-outdoors", "amazon-toys-games")
    assert set(compare.SUITE_DATASETS["amazon"]) <= set(compare.DATASET_LABELS)


def test_the_defaults_fit_is_traced_epoch_by_epoch(bench, monkeypatch):
    compare, peers = bench
    X, _, _ = planted_blocks(n_blocks=8, users_per_block=30, items_per_block=60, density=0.3)
    train, rest = hold_out(X, 0.4)
    validation, test = hold_out(rest, 0.5, seed=1)
    split = tuple(sp.csr_matrix(part, dtype=np.float32) for part in (train, validation, test))
    defaults = peers.cml_defaults
    monkeypatch.setattr(compare, "load_split", lambda name, data_dir: (X, split))
    shorter = ({"n_epochs": 8, "n_components": 8},)  # the defaults, in a short fit
    dataset = compare.run_dataset("ml-100k", None, [defaults], 1, compare.SCHEDULES["quick"],
                                  {defaults.NAME: shorter}, pause=0.0)
    model = dataset["models"][defaults.NAME]
    curve = model["fit_facts"]["curve"]
    assert [point["epoch"] for point in curve] == list(range(1, 9))
    seconds = [point["seconds"] for point in curve]
    assert all(0 < a < b for a, b in zip(seconds, seconds[1:]))
    # The traced fit is the timed one, epoch for epoch: its last point scores
    # the model that fit returned.
    assert curve[-1]["recall"] == pytest.approx(model["chosen"]["validation_recall@50"])
    # The timed fit's seconds leave the traced one out.
    run = model["runs"][0]
    assert run["total_seconds"] < run["seconds_to_best"] + 0.5 * curve[-1]["seconds"]

    # Time to a target: the first traced epoch at or above it.
    target = curve[3]["recall"] - 1e-9
    dataset["models"]["implicit ALS"] = {"chosen": {"validation_recall@50": target,
                                                    "setting": {}, "seconds_to_best": 1.0},
                                         "runs": [{"setting": {}, "curve": []}],
                                         "test": {"recall@50": 0.5}}
    compare.add_seconds_to_target(dataset["models"])
    reached = next(point["seconds"] for point in curve if point["recall"] >= target)
    assert model["chosen"]["seconds_to_target"] == reached <= curve[3]["seconds"]
    assert "reached implicit ALS's best validation Recall@50 after" in compare.defaults_line(
        dataset["models"])

