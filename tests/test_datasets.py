"""Tests for sklearn_cml.datasets: the synthetic generator and the file loaders."""

import gzip

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_cml import datasets
from sklearn_cml.datasets import load_citeulike, load_movielens, make_interactions


def _top_decile_share(X):
    """Share of all interactions held by the 10% most popular items."""
    counts = np.sort(X.getnnz(axis=0))[::-1]
    return counts[: counts.size // 10].sum() / counts.sum()


def _own_cluster_share(X, user_labels, item_labels):
    """Share of interactions whose item is in the user's own cluster."""
    user_of_entry = np.repeat(user_labels, np.diff(X.indptr))
    return np.mean(item_labels[X.indices] == user_of_entry)


# --------------------------------------------------------------------------
# make_interactions


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"n_clusters": 1},
        {"cluster_affinity": 0.0, "popularity_exponent": 0.0},
        {"cluster_affinity": 1.0, "mean_interactions": 60},  # beyond cluster size
        {"mean_interactions": 1.0},
        {"n_items": 30, "n_clusters": 30, "mean_interactions": 30},  # dense rows
        {"popularity_exponent": 10.0, "mean_interactions": 100},  # rare items
    ],
)
def test_make_interactions_is_a_clean_binary_csr(params):
    params = {"n_users": 300, "n_items": 200, "random_state": 0, **params}
    X = make_interactions(**params)

    assert isinstance(X, sp.csr_matrix)
    assert X.shape == (params["n_users"], params["n_items"])
    assert X.dtype == np.float32
    assert np.all(X.data == 1.0)
    # Strictly increasing column indices within each row: sorted, no duplicates.
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    same_row = rows[1:] == rows[:-1]
    assert np.all(np.diff(X.indices)[same_row] > 0)
    assert X.has_sorted_indices
    row_counts = X.getnnz(axis=1)
    assert row_counts.min() >= 1 and row_counts.max() <= params["n_items"]


def test_make_interactions_is_reproducible():
    first = make_interactions(n_users=500, random_state=42, return_labels=True)
    again = make_interactions(
        n_users=500, random_state=np.random.RandomState(42), return_labels=True
    )
    other = make_interactions(n_users=500, random_state=43)

    assert (first[0] != again[0]).nnz == 0
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[2], again[2])
    assert (first[0] != other).nnz > 0


def test_make_interactions_mean_count():
    X = make_interactions(
        n_users=3000, n_items=2000, mean_interactions=15, random_state=0
    )
    # Geometric counts: the mean of 3000 users has a standard error of ~0.27.
    assert X.nnz / X.shape[0] == pytest.approx(15, abs=1.0)


def test_make_interactions_popularity_is_heavy_tailed():
    params = dict(n_users=2000, n_items=1000, n_clusters=4, mean_interactions=10)
    shares = [
        _top_decile_share(
            make_interactions(**params, popularity_exponent=exponent, random_state=0)
        )
        for exponent in (0.0, 1.0, 2.0)
    ]
    # Uniform popularity gives the top decile about its 10% by chance only;
    # Zipf with exponent 1 gives it about half, exponent 2 about four fifths.
    assert shares[0] < 0.2
    assert shares[1] > 0.4
    assert shares[2] > shares[1] + 0.15


@pytest.mark.parametrize("cluster_affinity", [0.0, 0.5, 0.9, 1.0])
def test_make_interactions_plants_clusters(cluster_affinity):
    n_clusters = 4
    X, user_labels, item_labels = make_interactions(
        n_users=2000,
        n_items=2000,
        n_clusters=n_clusters,
        mean_interactions=10,
        popularity_exponent=0.0,  # every cluster holds 1/4 of the popularity
        cluster_affinity=cluster_affinity,
        random_state=0,
        return_labels=True,
    )
    assert user_labels.shape == (2000,) and item_labels.shape == (2000,)
    assert set(np.unique(user_labels)) == set(range(n_clusters))
    np.testing.assert_array_equal(np.bincount(item_labels), [500] * n_clusters)

    # Own-cluster picks, plus the whole-catalogue picks that land there anyway.
    expected = cluster_affinity + (1 - cluster_affinity) / n_clusters
    share = _own_cluster_share(X, user_labels, item_labels)
    assert share == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_users": 0}, "n_users"),
        ({"n_items": 0}, "n_items"),
        ({"n_items": 2.5}, "n_items"),
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_items": 5, "n_clusters": 6, "mean_interactions": 2}, "n_clusters=6"),
        ({"mean_interactions": 0.5}, "mean_interactions"),
        ({"n_items": 10, "mean_interactions": 11}, "mean_interactions=11"),
        ({"popularity_exponent": -1}, "popularity_exponent"),
        ({"popularity_exponent": np.inf}, "popularity_exponent"),
        ({"cluster_affinity": 1.5}, "cluster_affinity"),
        ({"random_state": "seed"}, "random_state"),
        ({"return_labels": "yes"}, "return_labels"),
    ],
)
def test_make_interactions_rejects_bad_arguments(params, match):
    with pytest.raises(ValueError, match=match):
        make_interactions(**params)


@pytest.mark.parametrize("rejection_rounds", [datasets._MAX_REJECTION_ROUNDS, 0])
def test_distinct_item_sampler_is_successive_sampling(monkeypatch, rejection_rounds):
    # 0 rounds sends every user to the exponential-key fallback.
    monkeypatch.setattr(datasets, "_MAX_REJECTION_ROUNDS", rejection_rounds)
    weights = np.array([[0.6, 0.3, 0.1]])
    n_users = 20_000
    # The second half of the users already holds item 0.
    held = np.arange(n_users // 2, n_users) * 3
    n_new = np.r_[np.full(n_users // 2, 2), np.full(n_users // 2, 1)]
    pairs = datasets._add_distinct_items(
        held, weights, np.zeros(n_users, np.intp), n_new, np.random.RandomState(0)
    )
    users, items = np.divmod(pairs, 3)
    X = sp.csr_matrix((np.ones(pairs.size), (users, items)), shape=(n_users, 3))
    fresh = X[: n_users // 2].mean(axis=0).A1
    holding_0 = X[n_users // 2 :].mean(axis=0).A1

    # Inclusion probabilities of 2 successive draws from (0.6, 0.3, 0.1):
    # P(i) = w_i + sum_{j != i} w_j * w_i / (1 - w_j).
    w = weights[0]
    first_other = w[:, None] * w[None, :] / (1 - w[:, None])
    np.fill_diagonal(first_other, 0)
    expected = w + first_other.sum(axis=0)
    np.testing.assert_allclose(fresh, expected, atol=0.015)
    # With item 0 held, the one new item is 1 or 2 in proportion 3 : 1.
    np.testing.assert_allclose(holding_0, [1.0, 0.75, 0.25], atol=0.015)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_users=st.integers(1, 30),
    n_items=st.integers(1, 12),
    n_rows=st.integers(1, 3),
)
def test_distinct_item_sampler_gives_each_user_exactly_what_it_asks(
    seed, n_users, n_items, n_rows
):
    rng = np.random.RandomState(seed)
    # Some zero weights, and tiny ones that rejection rounds will not find.
    weights = rng.choice([0.0, 1e-12, 1.0, 5.0], size=(n_rows, n_items))
    weights[:, 0] = 1.0
    user_rows = rng.randint(n_rows, size=n_users)
    n_reachable = np.count_nonzero(weights, axis=1)[user_rows]
    n_new = rng.randint(0, n_reachable + 1)

    pairs = datasets._add_distinct_items(
        np.empty(0, np.int64), weights, user_rows, n_new, rng
    )
    users, items = np.divmod(pairs, n_items)
    assert np.unique(pairs).size == pairs.size
    np.testing.assert_array_equal(np.bincount(users, minlength=n_users), n_new)
    assert np.all(weights[user_rows[users], items] > 0)


# --------------------------------------------------------------------------
# load_movielens on tiny files

# (user, movie, rating) with gaps in the ids and rows out of order; user 3
# only has ratings below 4.
_RATINGS = [(10, 100, 5), (3, 5, 2), (10, 42, 3), (7, 5, 4), (3, 100, 1), (7, 42, 5)]
_USER_IDS = [3, 7, 10]
_ITEM_IDS = [5, 42, 100]
_DENSE_RATINGS = np.array([[2, 0, 1], [4, 5, 0], [0, 3, 5]], dtype=np.float32)


def _write_movielens(folder, file_name, ratings=_RATINGS):
    folder.mkdir(exist_ok=True)
    if file_name == "u.data":
        lines = [f"{u}\t{i}\t{r}\t88125094{k}" for k, (u, i, r) in enumerate(ratings)]
    elif file_name == "ratings.dat":
        lines = [f"{u}::{i}::{r}::97830076{k}" for k, (u, i, r) in enumerate(ratings)]
    else:
        lines = [f"{u}::{i}::{r}" for u, i, r in ratings]
    text = ("\n".join(lines) + "\n").encode()
    if file_name.endswith(".gz"):
        text = gzip.compress(text)
    (folder / file_name).write_bytes(text)
    return folder


_MOVIELENS_FILES = ["u.data", "ratings.dat", "ratings_no_timestamp.dat.gz"]


@pytest.mark.parametrize("file_name", _MOVIELENS_FILES)
def test_load_movielens_parses_every_format(tmp_path, file_name):
    folder = _write_movielens(tmp_path / "ml", file_name)
    data = load_movielens(str(folder))  # a str path works as well as a Path

    X = data.interactions
    assert isinstance(X, sp.csr_matrix) and X.dtype == np.float32
    assert X.has_sorted_indices
    np.testing.assert_array_equal(data.user_ids, _USER_IDS)
    np.testing.assert_array_equal(data.item_ids, _ITEM_IDS)
    np.testing.assert_array_equal(X.toarray(), _DENSE_RATINGS)
    assert file_name in data.DESCR and "research" in data.DESCR.lower()


@pytest.mark.parametrize("file_name", _MOVIELENS_FILES)
def test_load_movielens_min_rating_binarises_and_keeps_shape(tmp_path, file_name):
    folder = _write_movielens(tmp_path / "ml", file_name)
    data = load_movielens(folder, min_rating=4)

    X = data.interactions
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X.toarray(), _DENSE_RATINGS >= 4)
    assert X.nnz == 3  # explicit zeros are not stored
    np.testing.assert_array_equal(data.item_ids, _ITEM_IDS)  # columns unchanged
    assert X.getnnz(axis=1)[0] == 0  # user 3 keeps its (empty) row


def test_load_movielens_reads_half_star_ratings(tmp_path):
    folder = _write_movielens(tmp_path / "ml", "ratings.dat", [(1, 2, 3.5), (2, 2, 4)])
    data = load_movielens(folder)
    np.testing.assert_array_equal(data.interactions.toarray(), [[3.5], [4.0]])
    np.testing.assert_array_equal(
        load_movielens(folder, min_rating=3.75).interactions.toarray(), [[0], [1]]
    )


def test_load_movielens_prefers_ratings_dat(tmp_path):
    folder = _write_movielens(tmp_path / "ml", "ratings.dat")
    _write_movielens(folder, "ratings_no_timestamp.dat.gz", [(1, 1, 1)])
    _write_movielens(folder, "u.data", [(1, 1, 1)])
    assert load_movielens(folder).interactions.shape == (3, 3)

    (folder / "ratings.dat").unlink()
    assert "ratings_no_timestamp.dat.gz" in load_movielens(folder).DESCR


@pytest.mark.parametrize("min_rating", ["4", np.nan, np.inf, [4]])
def test_load_movielens_rejects_invalid_min_rating(tmp_path, min_rating):
    folder = _write_movielens(tmp_path / "ml", "u.data")
    with pytest.raises(ValueError, match="min_rating"):
        load_movielens(folder, min_rating=min_rating)


def test_load_movielens_rejects_min_rating_above_every_rating(tmp_path):
    folder = _write_movielens(tmp_path / "ml", "u.data")
    with pytest.raises(ValueError, match="above every rating"):
        load_movielens(folder, min_rating=6)


def test_load_movielens_missing_folder_or_files(tmp_path):
    for folder in (tmp_path / "absent", tmp_path):
        with pytest.raises(FileNotFoundError) as error:
            load_movielens(folder)
        for name in _MOVIELENS_FILES:
            assert name in str(error.value)


@pytest.mark.parametrize(
    "content, match",
    [
        ("1\t2\t3\t4\n5\t6\t7\n", "expected 4 fields"),
        ("1\t2\tfive\t4\n", "could not parse"),
        ("1\t2\n", "at least 3 fields"),
        ("", "at least 3 fields"),
        ("1\t2\t3\t4\n1\t2\t5\t6\n", "duplicate"),
    ],
)
def test_load_movielens_rejects_malformed_files(tmp_path, content, match):
    (tmp_path / "u.data").write_text(content)
    with pytest.raises(ValueError, match=match):
        load_movielens(tmp_path)


# --------------------------------------------------------------------------
# load_citeulike on tiny files


def test_load_citeulike_parses_libraries(tmp_path):
    # Trailing spaces and a missing final newline, as in the real users.dat.
    (tmp_path / "users.dat").write_text("2 0 3 \n1 5\n3 4 1 2")
    data = load_citeulike(tmp_path)

    X = data.interactions
    assert isinstance(X, sp.csr_matrix) and X.dtype == np.float32
    assert X.has_sorted_indices
    expected = np.zeros((3, 6), dtype=np.float32)
    expected[0, [0, 3]] = expected[1, 5] = expected[2, [1, 2, 4]] = 1
    np.testing.assert_array_equal(X.toarray(), expected)
    assert "CiteULike" in data.DESCR


@pytest.mark.parametrize("content", ["2 0 3\n3 1 2\n", "2 0 3\n\n1 4\n", "1 2 2 2\n"])
def test_load_citeulike_rejects_miscounted_lines(tmp_path, content):
    # Duplicates are caught by their count line first: "1 2 2 2" claims 1 item.
    (tmp_path / "users.dat").write_text(content)
    with pytest.raises(ValueError, match="line"):
        load_citeulike(tmp_path)


def test_load_citeulike_rejects_repeated_items(tmp_path):
    (tmp_path / "users.dat").write_text("2 7 7\n")
    with pytest.raises(ValueError, match="duplicate"):
        load_citeulike(tmp_path)


def test_load_citeulike_missing_file(tmp_path):
    for folder in (tmp_path / "absent", tmp_path):
        with pytest.raises(FileNotFoundError, match="users.dat"):
            load_citeulike(folder)


# --------------------------------------------------------------------------
# The real datasets (skipped, saying why, when they are not available)


def test_real_movielens_100k(data_dir):
    data = load_movielens(data_dir / "ml-100k")
    X = data.interactions
    assert X.shape == (943, 1682) and X.nnz == 100_000
    np.testing.assert_array_equal(data.user_ids, np.arange(1, 944))
    np.testing.assert_array_equal(data.item_ids, np.arange(1, 1683))
    # The known distribution of ratings 1..5.
    np.testing.assert_array_equal(
        np.bincount(X.data.astype(int))[1:], [6110, 11370, 27145, 34174, 21201]
    )


def test_real_movielens_1m(data_dir):
    folder = data_dir / "ml-1m"
    data = load_movielens(folder)
    X = data.interactions
    assert X.shape == (6040, 3706) and X.nnz == 1_000_209
    np.testing.assert_array_equal(data.user_ids, np.arange(1, 6041))
    assert data.item_ids[-1] == 3952

    positives = load_movielens(folder, min_rating=4)
    assert positives.interactions.shape == (6040, 3706)
    # 348,971 fours + 226,310 fives, counted from the file with awk.
    assert positives.interactions.nnz == 575_281
    np.testing.assert_array_equal(positives.item_ids, data.item_ids)


def test_real_citeulike_a(data_dir):
    X = load_citeulike(data_dir / "citeulike-a").interactions
    assert X.shape == (5551, 16980) and X.nnz == 204_986
    assert X.getnnz(axis=0).min() >= 1  # every article is in some library
