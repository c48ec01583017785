"""Tests for sklearn_cml.datasets: the synthetic generator and the file loaders."""

import gzip
import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_cml.datasets import (
    _parsing,
    _synthetic,
    load_amazon,
    load_amazon_attributes,
    load_citeulike,
    load_citeulike_tags,
    load_movielens,
    load_movielens_genres,
    make_interactions,
)


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


@pytest.mark.parametrize("rejection_rounds", [_synthetic._MAX_REJECTION_ROUNDS, 0])
def test_distinct_item_sampler_is_successive_sampling(monkeypatch, rejection_rounds):
    # 0 rounds sends every user to the exponential-key fallback.
    monkeypatch.setattr(_synthetic, "_MAX_REJECTION_ROUNDS", rejection_rounds)
    weights = np.array([[0.6, 0.3, 0.1]])
    n_users = 20_000
    # The second half of the users already holds item 0.
    held = np.arange(n_users // 2, n_users) * 3
    n_new = np.r_[np.full(n_users // 2, 2), np.full(n_users // 2, 1)]
    pairs = _synthetic._add_distinct_items(
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

    pairs = _synthetic._add_distinct_items(
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
    np.testing.assert_array_equal(data.user_ids, [0, 1, 2])
    np.testing.assert_array_equal(data.item_ids, np.arange(6))
    assert data.item_names is None


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
# load_movielens_genres on tiny files

# Movies 2, 9 and 4 (out of order, with gaps) over the genres of _GENRES.
_GENRES = ["unknown", "Action", "Children's", "Comedy"]
_MOVIE_GENRES = {2: ["Action", "Comedy"], 9: ["unknown"], 4: ["Children's"]}


def _write_ml100k_genres(folder):
    folder.mkdir(exist_ok=True)
    # u.genre ends with a blank line, as in the real file.
    genre_lines = [f"{name}|{index}" for index, name in enumerate(_GENRES)]
    (folder / "u.genre").write_bytes(("\n".join(genre_lines) + "\n\n").encode())
    titles = {2: "Café Society (1995)", 9: "Untitled (1996)", 4: "Heidi (1937)"}
    lines = []
    for movie, genres in _MOVIE_GENRES.items():
        flags = "|".join("1" if name in genres else "0" for name in _GENRES)
        lines.append(f"{movie}|{titles[movie]}|01-Jan-1995||http://x/{movie}|{flags}")
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return folder


def _write_ml1m_genres(folder):
    folder.mkdir(exist_ok=True)
    # CRLF line ends, a ':' in a title, latin-1 and no final newline.
    lines = [
        "2::Café: The Movie (1995)::Comedy|Action",
        "9::Untitled (1996)::unknown",
        "4::Heidi (1937)::Children's",
    ]
    (folder / "movies.dat").write_bytes("\r\n".join(lines).encode("latin-1"))
    return folder


def _expected_genres(item_ids, genre_names):
    expected = np.zeros((len(item_ids), len(genre_names)), dtype=np.float32)
    for row, movie in enumerate(item_ids):
        for name in _MOVIE_GENRES.get(movie, []):
            expected[row, list(genre_names).index(name)] = 1
    return expected


@pytest.mark.parametrize(
    "write, genre_names",
    [(_write_ml100k_genres, _GENRES), (_write_ml1m_genres, sorted(_GENRES))],
)
def test_load_movielens_genres_aligns_rows_with_item_ids(tmp_path, write, genre_names):
    folder = write(tmp_path / "ml")
    # 3 and 7 are not in the file; 9 comes before 2; movie 4 is not asked for.
    item_ids = [9, 3, 2, 7]
    data = load_movielens_genres(str(folder), item_ids)

    F = data.features
    assert isinstance(F, sp.csr_matrix) and F.dtype == np.float32
    assert F.has_sorted_indices and np.all(F.data == 1.0)
    assert data.feature_names.dtype == object
    assert list(data.feature_names) == genre_names
    np.testing.assert_array_equal(F.toarray(), _expected_genres(item_ids, genre_names))
    assert "2 of which are not in" in data.DESCR
    assert "research" in data.DESCR.lower()


def test_load_movielens_genres_lines_up_with_load_movielens(tmp_path):
    folder = _write_ml100k_genres(tmp_path / "ml")
    _write_movielens(folder, "u.data", [(1, 9, 5), (1, 4, 3), (2, 5, 4), (2, 9, 1)])
    ratings = load_movielens(folder)
    genres = load_movielens_genres(folder, ratings.item_ids)

    np.testing.assert_array_equal(ratings.item_ids, [4, 5, 9])
    assert genres.features.shape == (ratings.interactions.shape[1], len(_GENRES))
    # Movie 5 is rated but not in u.item: an all-zero row, counted in DESCR.
    np.testing.assert_array_equal(
        genres.features.toarray(), _expected_genres([4, 5, 9], _GENRES)
    )
    assert "1 of which are not in u.item" in genres.DESCR
    assert load_movielens_genres(folder, []).features.shape == (0, len(_GENRES))


@pytest.mark.parametrize("write_movies, title_of_2", [
    (_write_ml100k_genres, "Café Society (1995)"),
    (_write_ml1m_genres, "Café: The Movie (1995)"),
], ids=["u.item", "movies.dat"])
def test_load_movielens_names_the_movies(tmp_path, write_movies, title_of_2):
    folder = write_movies(tmp_path / "ml")
    _write_movielens(folder, "u.data", [(1, 9, 5), (1, 2, 3), (2, 5, 4)])
    data = load_movielens(folder)
    np.testing.assert_array_equal(data.item_ids, [2, 5, 9])
    # Movie 5 is rated but not in the movie file: no title.
    assert data.item_names.tolist() == [title_of_2, None, "Untitled (1996)"]
    assert "1 rated movies are not in it" in data.DESCR


def test_load_movielens_without_a_movie_file_has_no_names(tmp_path):
    data = load_movielens(_write_movielens(tmp_path / "ml", "u.data"))
    assert data.item_names is None and "no titles" in data.DESCR


def test_load_movielens_genres_prefers_movies_dat(tmp_path):
    folder = _write_ml100k_genres(tmp_path / "ml")
    _write_ml1m_genres(folder)
    data = load_movielens_genres(folder, [2])
    assert "movies.dat" in data.DESCR and data.features.shape == (1, 4)
    assert list(data.feature_names) == sorted(_GENRES)


def test_load_movielens_genres_missing_files(tmp_path):
    for folder in (tmp_path / "absent", tmp_path):
        with pytest.raises(FileNotFoundError) as error:
            load_movielens_genres(folder, [1])
        assert "movies.dat" in str(error.value) and "u.item" in str(error.value)
    (_write_ml100k_genres(tmp_path / "ml") / "u.genre").unlink()
    with pytest.raises(FileNotFoundError, match="u.genre"):
        load_movielens_genres(tmp_path / "ml", [1])


@pytest.mark.parametrize("item_ids", [[[1, 2]], [1.0, 2.0], ["1"], 5])
def test_load_movielens_genres_rejects_bad_item_ids(tmp_path, item_ids):
    folder = _write_ml1m_genres(tmp_path / "ml")
    with pytest.raises(ValueError, match="item_ids"):
        load_movielens_genres(folder, item_ids)


_FLAGS = "|0|1|0|0"


@pytest.mark.parametrize(
    "file_name, content, match",
    [
        ("u.item", f"1|A|d||u{_FLAGS}\n2|B|d||u|0|1|0\n", "line 2: expected 9"),
        ("u.item", f"1|A|d||u{_FLAGS}\n2|B|d||u|0{_FLAGS}\n", "got 10"),
        ("u.item", f"1|A|d||u{_FLAGS}\n2|B|d||u|0|2|0|0\n", "line 2: genre flags"),
        ("u.item", f"x|A|d||u{_FLAGS}\n", "line 1: the movie id"),
        ("u.item", f"1|A|d||u{_FLAGS}\n1|B|d||u{_FLAGS}\n", "movie id 1 is listed"),
        ("u.item", "", "empty"),
        ("u.genre", "unknown|0\nAction|1\nChildren's\nComedy|3\n", "line 3"),
        ("u.genre", "unknown|0\nAction|1\nComedy|1\n", "genre indices"),
        ("movies.dat", "1::A::Drama\n2::B\n", "line 2: expected"),
        ("movies.dat", "1::A::Drama\n::B::Drama\n", "line 2: the movie id"),
        ("movies.dat", "1::A::Drama||War\n", "line 1: empty genre"),
        ("movies.dat", "1::A::War\n2::B::Drama|War|Drama\n", "line 2: a genre"),
        ("movies.dat", "5::A::War\n5::B::Drama\n", "movie id 5 is listed"),
    ],
)
def test_load_movielens_genres_rejects_malformed_files(
    tmp_path, file_name, content, match
):
    if file_name != "movies.dat":
        _write_ml100k_genres(tmp_path)
    (tmp_path / file_name).write_text(content)
    with pytest.raises(ValueError, match=match):
        load_movielens_genres(tmp_path, [1])


def test_load_movielens_genres_movie_without_genres(tmp_path):
    (tmp_path / "movies.dat").write_text("1::A::\n2::B::Drama\n")
    data = load_movielens_genres(tmp_path, [1, 2])
    np.testing.assert_array_equal(data.features.toarray(), [[0], [1]])
    assert list(data.feature_names) == ["Drama"]


# --------------------------------------------------------------------------
# load_citeulike_tags on tiny files

_TAG_NAMES = ["deep-learning", "rna", "café", "", "graphs"]  # tag 3 is blank


def _write_citeulike_tags(folder, item_tag="2 0 3 \n1 4\n0\n3 4 1 2"):
    # Trailing spaces, an untagged article and no final newline, as in the
    # real item-tag.dat; tags.dat has no final newline either.
    folder.mkdir(exist_ok=True)
    (folder / "item-tag.dat").write_text(item_tag)
    (folder / "tags.dat").write_bytes("\n".join(_TAG_NAMES).encode())
    return folder


_DENSE_TAGS = np.array(
    [[1, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 1, 1, 0, 1]],
    dtype=np.float32,
)


def test_load_citeulike_tags_parses_both_files(tmp_path):
    data = load_citeulike_tags(str(_write_citeulike_tags(tmp_path)))

    F = data.features
    assert isinstance(F, sp.csr_matrix) and F.dtype == np.float32
    assert F.has_sorted_indices
    np.testing.assert_array_equal(F.toarray(), _DENSE_TAGS)
    assert data.feature_names.dtype == object
    assert list(data.feature_names) == _TAG_NAMES
    assert "1 articles have no tag" in data.DESCR and "CiteULike" in data.DESCR


def test_load_citeulike_tags_n_items_pads_or_cuts(tmp_path):
    folder = _write_citeulike_tags(tmp_path)
    padded = load_citeulike_tags(folder, n_items=6)
    np.testing.assert_array_equal(padded.features.toarray()[:4], _DENSE_TAGS)
    assert padded.features[4:].nnz == 0 and padded.features.shape == (6, 5)
    assert "last 2 rows are all-zero" in padded.DESCR

    cut = load_citeulike_tags(folder, n_items=2)
    np.testing.assert_array_equal(cut.features.toarray(), _DENSE_TAGS[:2])
    assert "dropped" in cut.DESCR


def test_load_citeulike_tags_lines_up_with_load_citeulike(tmp_path):
    folder = _write_citeulike_tags(tmp_path)
    (folder / "users.dat").write_text("2 0 3\n1 1\n")  # articles 0 to 3
    X = load_citeulike(folder).interactions
    features = load_citeulike_tags(folder, n_items=X.shape[1]).features
    assert features.shape[0] == X.shape[1]


@pytest.mark.parametrize(
    "item_tag, match",
    [
        ("2 0 3\n2 1\n", "line 2: expected 'N tag_1"),
        ("1 0\n\n1 4\n", "line 2: expected 'N tag_1"),
        ("1 0\n1 -4\n", "line 2: expected non-negative integers"),
        ("1 0\n1 x\n", "line 2: expected non-negative integers"),
        ("1 0\n1 5\n", "line 2: tag id 5 is out of range"),
        ("1 0\n2 1 1\n", "line 2: tag 1 is listed more than once"),
    ],
)
def test_load_citeulike_tags_rejects_malformed_lines(tmp_path, item_tag, match):
    folder = _write_citeulike_tags(tmp_path, item_tag)
    with pytest.raises(ValueError, match=match):
        load_citeulike_tags(folder)


def test_load_citeulike_tags_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="item-tag.dat"):
        load_citeulike_tags(tmp_path / "absent")
    folder = _write_citeulike_tags(tmp_path)
    (folder / "tags.dat").unlink()
    with pytest.raises(FileNotFoundError, match="tags.dat"):
        load_citeulike_tags(folder)
    with pytest.raises(ValueError, match="n_items"):
        load_citeulike_tags(folder, n_items=-1)


# --------------------------------------------------------------------------
# load_amazon on tiny files

# Line u is user u (1-based): its items oldest first, 1-based; user 2 lists
# item 4 twice (a repeated pair counts once) and nobody reviews item 5.
_AMAZON_LINES = ["1 3 1 6", "2 4 2 4", "3 1"]
_DENSE_AMAZON = np.array(
    [[1, 0, 1, 0, 0, 1], [0, 1, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=np.float32
)


def _write_amazon(folder, lines=_AMAZON_LINES, name="Tiny_Shop", attributes=None):
    """``<name>.txt`` as in the S3-Rec files (LF, final newline), and
    ``<name>_item2attributes.json`` (one line, no final newline) if given."""
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.txt").write_bytes(("\n".join(lines) + "\n").encode())
    if attributes is not None:
        text = attributes if isinstance(attributes, str) else json.dumps(attributes)
        (folder / f"{name}_item2attributes.json").write_bytes(text.encode())
    return folder


def test_load_amazon_parses_one_based_ids(tmp_path):
    data = load_amazon(str(_write_amazon(tmp_path / "shop")))

    X = data.interactions
    assert isinstance(X, sp.csr_matrix) and X.dtype == np.float32
    assert X.has_sorted_indices and np.all(X.data == 1.0)
    np.testing.assert_array_equal(X.toarray(), _DENSE_AMAZON)
    np.testing.assert_array_equal(data.user_ids, [1, 2, 3])
    np.testing.assert_array_equal(data.item_ids, np.arange(1, 7))
    assert data.item_names is None
    assert "Amazon Tiny Shop" in data.DESCR and "Tiny_Shop.txt" in data.DESCR
    assert "1 repeated (user, item) pairs were counted once" in data.DESCR
    assert "1 item ids are on no line" in data.DESCR
    assert "research" in data.DESCR.lower()


@pytest.mark.parametrize(
    "text",
    [
        "2 4 2 4\r\n3 1\r\n1 3 1 6\r\n",  # CRLF, users out of order
        "1  3\t1 6 \n2 4 2 4\n3 1",  # runs of blanks, no final newline
        "1 3 1 6\n2 4 2 4\n3 1\n\n\n",  # trailing blank lines
    ],
)
def test_load_amazon_reads_variants_of_the_format(tmp_path, text):
    (tmp_path / "Shop.txt").write_bytes(text.encode())
    X = load_amazon(tmp_path).interactions
    np.testing.assert_array_equal(X.toarray(), _DENSE_AMAZON)


def test_load_amazon_finds_the_interaction_file(tmp_path):
    folder = _write_amazon(tmp_path, attributes={"1": [1]})
    # S3-Rec's sampled negatives and another .txt are not taken for it.
    (folder / "Tiny_Shop_sample.txt").write_text("1 2 3\n")
    (folder / "notes.txt").write_text("not interactions\n")
    assert load_amazon(folder).interactions.shape == (3, 6)

    (folder / "Tiny_Shop_item2attributes.json").unlink()
    with pytest.raises(ValueError, match="several .txt files.*notes.txt"):
        load_amazon(folder)


def test_load_amazon_missing_folder_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*<Name>.txt"):
        load_amazon(tmp_path / "absent")
    (tmp_path / "Shop_sample.txt").write_text("1 2\n")
    with pytest.raises(FileNotFoundError, match="No <Name>.txt"):
        load_amazon(tmp_path)


@pytest.mark.parametrize(
    "lines, match",
    [
        (["1 2 3", "", "3 1"], "line 2 is blank"),
        (["1 2 3", "2 4 x"], "line 2: expected non-negative integers"),
        (["1 2 3", "2 -4"], "line 2: expected non-negative integers"),
        (["1 2 3", "2 4 0 5"], "line 2: item id 0 is out of range"),
        (["1 2 3", "2 2147483648"], "line 2: item id 2147483648 is out of range"),
        (["1 2 3", "0 4"], "line 2: user id 0 is out of range"),
        (["1 2 3", "3 4"], "line 2: user id 3 is out of range.*1 to 2"),
        (["1 2 3", "2 4", "1 5"], "line 3: user id 1 is on line 1 already"),
        ([], "is empty"),
    ],
)
def test_load_amazon_rejects_malformed_lines(tmp_path, lines, match):
    folder = _write_amazon(tmp_path / "shop", lines)
    if not lines:
        (folder / "Tiny_Shop.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=match) as error:
        load_amazon(folder)
    assert "Tiny_Shop.txt" in str(error.value)


def test_load_amazon_user_without_items(tmp_path):
    data = load_amazon(_write_amazon(tmp_path, ["1 2", "2"]))
    np.testing.assert_array_equal(data.interactions.toarray(), [[0, 1], [0, 0]])
    assert "1 item ids are on no line" in data.DESCR


# --------------------------------------------------------------------------
# load_amazon_attributes on tiny files

# Items 2, 1 and 4 (out of order; item 3 is not listed); item 4 lists
# attribute 3 twice, and item 1 has an empty list.
_ITEM_ATTRIBUTES = {"2": [1, 3], "1": [], "4": [3, 2, 3]}
_DENSE_ATTRIBUTES = np.array(
    [[0, 0, 0], [1, 0, 1], [0, 0, 0], [0, 1, 1]], dtype=np.float32
)


def test_load_amazon_attributes_parses_one_based_ids(tmp_path):
    folder = _write_amazon(tmp_path, attributes=_ITEM_ATTRIBUTES)
    data = load_amazon_attributes(str(folder))

    F = data.features
    assert isinstance(F, sp.csr_matrix) and F.dtype == np.float32
    assert F.has_sorted_indices and np.all(F.data == 1.0)
    np.testing.assert_array_equal(F.toarray(), _DENSE_ATTRIBUTES)
    np.testing.assert_array_equal(data.feature_ids, [1, 2, 3])
    assert data.feature_names is None
    assert "1 repeated attribute ids within an item counted once" in data.DESCR
    assert "2 items have no attribute" in data.DESCR
    assert "Tiny_Shop_item2attributes.json" in data.DESCR
    assert "research" in data.DESCR.lower()


def test_load_amazon_attributes_lines_up_with_load_amazon(tmp_path):
    folder = _write_amazon(tmp_path, attributes=_ITEM_ATTRIBUTES)
    X = load_amazon(folder).interactions  # items 1 to 6
    padded = load_amazon_attributes(folder, n_items=X.shape[1])
    assert padded.features.shape == (6, 3)
    np.testing.assert_array_equal(padded.features.toarray()[:4], _DENSE_ATTRIBUTES)
    assert padded.features[4:].nnz == 0
    assert "4 items have no attribute" in padded.DESCR

    cut = load_amazon_attributes(folder, n_items=2)
    # The columns do not depend on n_items.
    np.testing.assert_array_equal(cut.features.toarray(), _DENSE_ATTRIBUTES[:2])
    assert "1 items above n_items=2 (the file goes up to item 4) were dropped" in cut.DESCR


def test_load_amazon_attributes_finds_its_file(tmp_path):
    folder = _write_amazon(tmp_path, attributes={"1": [2]})
    (folder / "Other_item2attributes.json").write_text('{"1": [1]}')
    # Two attribute files: the one beside Tiny_Shop.txt is read.
    assert load_amazon_attributes(folder).features.shape == (1, 2)
    (folder / "Tiny_Shop.txt").unlink()
    with pytest.raises(ValueError, match="several attribute files"):
        load_amazon_attributes(folder)


def test_load_amazon_attributes_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*item2attributes"):
        load_amazon_attributes(tmp_path / "absent")
    _write_amazon(tmp_path)
    with pytest.raises(FileNotFoundError, match="No <Name>_item2attributes.json"):
        load_amazon_attributes(tmp_path)
    with pytest.raises(ValueError, match="n_items"):
        load_amazon_attributes(tmp_path, n_items=-1)


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"1": [1, 2], "2": [3', "line 1, column 22: not valid JSON"),
        ('{"1": [1],\n "2": [2,]}', "line 2, column 10: not valid JSON"),
        ("[[1, 2]]", "expected one JSON object.*got a JSON list"),
        ('{"0": [1]}', "item id '0' is out of range"),
        ('{"x1": [1]}', "item id 'x1' is out of range"),
        ('{"1": [1], "01": [2]}', "item 1 is listed more than once"),
        ('{"1": [1], "2": 3}', "item 2: expected a list of integer attribute ids"),
        ('{"1": [1.0]}', "item 1: expected a list of integer"),
        ('{"1": [true]}', "item 1: expected a list of integer"),
        ('{"1": ["1"]}', "item 1: expected a list of integer"),
        ('{"1": {"2": 3}}', "item 1: expected a list of integer"),
        ('{"1": [1], "2": [0]}', "item 2: attribute id 0 is out of range"),
    ],
)
def test_load_amazon_attributes_rejects_malformed_files(tmp_path, content, match):
    _write_amazon(tmp_path, attributes=content)
    with pytest.raises(ValueError, match=match) as error:
        load_amazon_attributes(tmp_path)
    assert "Tiny_Shop_item2attributes.json" in str(error.value)


@settings(max_examples=50, deadline=None)
@given(
    lines=st.lists(st.lists(st.integers(0, 120), max_size=6, unique=True), max_size=8),
    separator=st.sampled_from([" ", "  ", "\t", " \t"]),
    line_end=st.sampled_from(["\n", "\r\n", " \n"]),
    final=st.sampled_from(["", "\n", "\n\n"]),
)
def test_count_prefixed_parser_matches_a_line_by_line_reading(
    tmp_path_factory, lines, separator, line_end, final
):
    text = line_end.join(
        separator.join(map(str, [len(ids), *ids])) for ids in lines
    )
    file = tmp_path_factory.mktemp("tags") / "item-tag.dat"
    file.write_text(text + final, newline="")
    lengths, ids = _parsing._read_count_prefixed_lines(file, "tag")
    np.testing.assert_array_equal(lengths, [len(line) for line in lines])
    np.testing.assert_array_equal(ids, [i for line in lines for i in line])


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
    assert data.item_names[0] == "Toy Story (1995)" and None not in data.item_names

    positives = load_movielens(folder, min_rating=4)
    assert positives.interactions.shape == (6040, 3706)
    # 348,971 fours + 226,310 fives, counted from the file with awk.
    assert positives.interactions.nnz == 575_281
    np.testing.assert_array_equal(positives.item_ids, data.item_ids)


def test_real_citeulike_a(data_dir):
    X = load_citeulike(data_dir / "citeulike-a").interactions
    assert X.shape == (5551, 16980) and X.nnz == 204_986
    assert X.getnnz(axis=0).min() >= 1  # every article is in some library


def test_real_movielens_100k_genres(data_dir):
    folder = data_dir / "ml-100k"
    item_ids = load_movielens(folder).item_ids
    data = load_movielens_genres(folder, item_ids)
    F = data.features
    assert F.shape == (1682, 19) and F.nnz == 2893  # counted with awk
    assert data.feature_names[0] == "unknown" and data.feature_names[-1] == "Western"
    assert F.getnnz(axis=1).min() == 1  # no movie is left without a flag
    # Column c of the ratings is movie item_ids[c]: 1 is Toy Story.
    assert item_ids[0] == 1
    assert list(data.feature_names[F[0].indices]) == [
        "Animation", "Children's", "Comedy"
    ]
    # Movies per genre, counted from u.item with awk.
    np.testing.assert_array_equal(
        F.sum(axis=0).A1,
        [2, 251, 135, 42, 122, 505, 109, 50, 725, 22, 24, 92, 56, 61, 247, 101,
         251, 71, 27],
    )


def test_real_movielens_1m_genres(data_dir):
    folder = data_dir / "ml-1m"
    item_ids = load_movielens(folder).item_ids
    data = load_movielens_genres(folder, item_ids)
    F = data.features
    # The 3,706 rated movies, all in movies.dat, with 6,192 genre labels
    # (counted with awk over the rated ids).
    assert F.shape == (3706, 18) and F.nnz == 6192
    assert F.getnnz(axis=1).min() == 1
    assert "0 of which are not in movies.dat" in data.DESCR
    assert list(data.feature_names) == [
        "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
        "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical",
        "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
    ]
    assert item_ids[-1] == 3952  # The Contender (2000)
    assert list(data.feature_names[F[-1].indices]) == ["Drama", "Thriller"]

    # Every id up to 3952: the 69 ids that movies.dat lacks get zero rows.
    every_id = load_movielens_genres(folder, np.arange(1, 3953)).features
    assert every_id.nnz == 6408
    assert np.count_nonzero(every_id.getnnz(axis=1) == 0) == 3952 - 3883


def test_real_citeulike_a_tags(data_dir):
    folder = data_dir / "citeulike-a"
    X = load_citeulike(folder).interactions
    data = load_citeulike_tags(folder, n_items=X.shape[1])
    F = data.features
    assert F.shape == (16980, 46391) and F.nnz == 239_253
    assert data.feature_names[0] == "ucsc-browser"
    assert data.feature_names[-1] == "andrew-leaver-fay"
    # Not every article is tagged: 3,461 lines of item-tag.dat are "0".
    n_tags = F.getnnz(axis=1)
    assert np.count_nonzero(n_tags == 0) == 3461
    # Line 1 of item-tag.dat, whose tags begin 4276 32443 37837.
    assert n_tags[0] == 17 and {4276, 32443, 37837} <= set(F[0].indices)


# (folder, users, items, unique user-item pairs, the most users of an item,
# attributes, distinct item-attribute pairs), from README_amazon.md.
_AMAZON_COUNTS = [
    ("amazon-beauty", 22_363, 12_101, 198_502, 431, 637, 45_037 - 5),
    ("amazon-sports-outdoors", 35_598, 18_357, 296_337, 1_042, 2_277, 106_440),
    ("amazon-toys-games", 19_412, 11_924, 167_597, 309, 1_027, 51_022 - 146),
]


@pytest.mark.parametrize(
    "folder, n_users, n_items, n_pairs, most_users, n_attributes, n_assignments",
    _AMAZON_COUNTS, ids=[counts[0] for counts in _AMAZON_COUNTS],
)
def test_real_amazon(
    data_dir, folder, n_users, n_items, n_pairs, most_users, n_attributes, n_assignments
):
    path = data_dir / folder
    if not path.is_dir():
        reason = f"{path} not found: the Amazon 5-core files are not in the data folder"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    data = load_amazon(path)
    X = data.interactions
    assert X.shape == (n_users, n_items) and X.nnz == n_pairs
    assert "repeated" not in data.DESCR  # no (user, item) pair is repeated
    # 5-core: every user and every item has at least 5 reviews.
    assert X.getnnz(axis=1).min() == 5 and X.getnnz(axis=0).min() == 5
    assert X.getnnz(axis=0).max() == most_users

    features = load_amazon_attributes(path, n_items=X.shape[1]).features
    assert features.shape == (n_items, n_attributes) and features.nnz == n_assignments
    assert features.getnnz(axis=1).min() >= 1  # every item has a list
    assert features.getnnz(axis=0).min() >= 1  # every attribute id is used
