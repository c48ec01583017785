"""MovieLens (100K and 1M): the ratings and the movie genres.

``load_movielens`` reads the ratings as a user x movie matrix and
``load_movielens_genres`` reads the genres of ``movies.dat`` (ML-1M) or
``u.item``/``u.genre`` (ML-100K) as one-hot item features whose rows follow
the ratings' columns. Everything specific to MovieLens files (formats,
movie-id checks, terms of use) is here; generic file parsing is in
``_parsing``.
"""

import os
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, validate_params

from ._parsing import _csr_from_pairs, _file_lines, _find_file, _read_number_table

# Terms of use, repeated in the DESCR of every loader of the dataset.
_MOVIELENS_TERMS = (
    "GroupLens Research, University of Minnesota. Research use only; not "
    "redistributable. Cite F. M. Harper and J. A. Konstan, The MovieLens "
    "Datasets: History and Context, ACM TiiS 5(4), 2015."
)


@validate_params(
    {
        "path": [str, os.PathLike],
        "min_rating": [Interval(Real, None, None, closed="neither"), None],
    },
    prefer_skip_nested_validation=True,
)
def load_movielens(path, min_rating=None):
    """Load MovieLens ratings (100K or 1M) from a local folder.

    The format is detected from the files in ``path``, first match wins:
    ``ratings.dat`` (ML-1M, ``UserID::MovieID::Rating::Timestamp``),
    ``ratings_no_timestamp.dat.gz`` (ML-1M without the timestamp column,
    gzip) and ``u.data`` (ML-100K, tab-separated user, item, rating,
    timestamp). Nothing is downloaded.

    Parameters
    ----------
    path : str or path-like
        Folder holding one of the files above.
    min_rating : float or None, default=None
        If None, entries hold the ratings. Otherwise ratings below
        ``min_rating`` are dropped and the others become 1.0 (implicit
        feedback). Rows and columns stay the same, so some rows may be empty.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        interactions : scipy.sparse.csr_matrix of shape (n_users, n_items)
            float32 ratings, or 1.0 where rating >= ``min_rating``; sorted
            indices.
        user_ids : ndarray of shape (n_users,), dtype int64
            Original user id of each row, ascending.
        item_ids : ndarray of shape (n_items,), dtype int64
            Original movie id of each column, ascending: every movie that has
            a rating in the file, whatever ``min_rating``.
        item_names : ndarray of shape (n_items,), dtype object, or None
            Title of each column's movie (str, with its year), from
            ``movies.dat`` or ``u.item`` in the same folder (None for a movie
            not listed there); None when the folder has neither file.  The
            genres are read by :func:`load_movielens_genres`.
        DESCR : str
            Where the data came from and its terms of use.

    Raises
    ------
    FileNotFoundError
        If the folder is missing or holds none of the files above.
    ValueError
        If ``min_rating`` is not a finite number or is above every rating,
        or if the file is malformed or repeats a (user, movie) pair.

    Examples
    --------
    >>> from sklearn_cml.datasets import load_movielens
    >>> ml = load_movielens("data/ml-1m", min_rating=4)  # doctest: +SKIP
    >>> ml.interactions.shape, ml.interactions.nnz  # doctest: +SKIP
    ((6040, 3706), 575281)
    """
    file = _find_file(
        path, ("ratings.dat", "ratings_no_timestamp.dat.gz", "u.data"), "MovieLens"
    )
    table = _read_number_table(file)
    user_ids, rows = np.unique(table[:, 0].astype(np.int64), return_inverse=True)
    item_ids, cols = np.unique(table[:, 1].astype(np.int64), return_inverse=True)
    ratings = table[:, 2]
    shape = (user_ids.size, item_ids.size)

    if min_rating is None:
        kept = "ratings"
        data = ratings.astype(np.float32)
    else:
        if min_rating > ratings.max():
            raise ValueError(
                f"min_rating={min_rating} is above every rating in {file.name} "
                f"(the highest is {ratings.max()}); nothing would be kept."
            )
        keep = ratings >= min_rating
        rows, cols = rows[keep], cols[keep]
        kept = f"ratings >= {min_rating}, stored as 1.0"
        data = np.ones(rows.size, dtype=np.float32)

    interactions = _csr_from_pairs(rows, cols, data, shape)
    item_names, names_note = _movie_titles(path, item_ids)
    descr = (
        f"MovieLens ratings read from {file.name}: {shape[0]} users x "
        f"{shape[1]} movies, {interactions.nnz} {kept}. {names_note}\n" + _MOVIELENS_TERMS
    )
    return Bunch(
        interactions=interactions, user_ids=user_ids, item_ids=item_ids,
        item_names=item_names, DESCR=descr,
    )


def _movie_titles(path, item_ids):
    """``(titles of item_ids or None, a sentence for DESCR)``."""
    try:
        file, _, movie_ids, titles, _, _ = _read_movies(path)
    except FileNotFoundError:
        return None, "No movie file (movies.dat, or u.item and u.genre), so no titles."
    lines = _positions_in_file(file, movie_ids, item_ids)
    names = np.where(lines >= 0, titles[np.maximum(lines, 0)], None)
    return names, (f"Titles from {file.name}; {int(np.count_nonzero(lines < 0))} rated "
                   "movies are not in it (title None).")


# --------------------------------------------------------------------------
# Item side information


def _check_movie_ids(file, id_fields):
    """Parse the movie id field of every line; name the first bad line."""
    id_fields = np.array(id_fields, dtype=bytes)
    is_number = np.char.isdigit(id_fields)  # also False for b""
    if not is_number.all():
        line_number = int(np.argmin(is_number)) + 1
        raise ValueError(
            f"{file}, line {line_number}: the movie id "
            f"{id_fields[line_number - 1][:20]!r} is not a non-negative integer."
        )
    return id_fields.astype(np.int64)


# Fields of a u.item line before its genre flags: id, title, release date,
# video release date, IMDb URL.
_ML100K_ITEM_FIELDS = 5


def _read_ml100k_genres(item_file, genre_file):
    """Movie ids, one-hot genre matrix and genre names from ML-100K files.

    ``u.genre`` holds ``name|index`` lines; ``u.item`` holds
    ``id|title|release date|video date|URL|flag_0|...|flag_(n-1)`` with one
    0/1 flag per genre, in index order.
    """
    names, indices = [], []
    for line_number, line in enumerate(_file_lines(genre_file.read_bytes()), 1):
        name, sep, index = line.strip().rpartition(b"|")
        if not sep or not name or not index.isdigit():
            raise ValueError(
                f"{genre_file}, line {line_number}: expected 'name|index', got "
                f"{line[:60]!r}."
            )
        names.append(name.decode("latin-1"))
        indices.append(int(index))
    if sorted(indices) != list(range(len(indices))) or not indices:
        raise ValueError(
            f"{genre_file}: the genre indices must be 0, 1, ..., n_genres - 1, "
            f"each once; got {indices}."
        )
    feature_names = np.empty(len(names), dtype=object)
    feature_names[indices] = names
    n_genres = len(names)

    lines = _file_lines(item_file.read_bytes())
    if not lines:
        raise ValueError(f"{item_file}: the file is empty.")
    # A field too many or too few would shift every flag: count them exactly.
    n_fields = _ML100K_ITEM_FIELDS + n_genres
    fields = [line.rstrip().split(b"|") for line in lines]
    field_counts = np.fromiter(map(len, fields), dtype=np.intp, count=len(fields))
    if np.any(field_counts != n_fields):
        line_number = int(np.argmax(field_counts != n_fields)) + 1
        raise ValueError(
            f"{item_file}, line {line_number}: expected {n_fields} '|'-separated "
            f"fields (id, title, release date, video date, URL and one flag per "
            f"genre of {genre_file.name}), got "
            f"{field_counts[line_number - 1]}: {lines[line_number - 1][:60]!r}."
        )
    movie_ids = _check_movie_ids(item_file, [f[0] for f in fields])
    flags = np.array([f[_ML100K_ITEM_FIELDS:] for f in fields], dtype=bytes)
    is_flag = (flags == b"0") | (flags == b"1")
    if not is_flag.all():
        line_number = int(np.argmin(is_flag.all(axis=1))) + 1
        raise ValueError(
            f"{item_file}, line {line_number}: genre flags must be 0 or 1, got "
            f"{b'|'.join(flags[line_number - 1])!r}."
        )
    features = sp.csr_matrix((flags == b"1").astype(np.float32))
    return movie_ids, _titles(f[1] for f in fields), features, feature_names


def _read_ml1m_genres(file):
    """Movie ids, one-hot genre matrix and genre names from ``movies.dat``.

    Lines are ``MovieID::Title::Genre_1|...|Genre_k``; the genre names are
    every name in the file, sorted.
    """
    lines = _file_lines(file.read_bytes())
    if not lines:
        raise ValueError(f"{file}: the file is empty.")
    fields = [line.rstrip().split(b"::") for line in lines]
    field_counts = np.fromiter(map(len, fields), dtype=np.intp, count=len(fields))
    if np.any(field_counts < 3):
        line_number = int(np.argmax(field_counts < 3)) + 1
        raise ValueError(
            f"{file}, line {line_number}: expected 'MovieID::Title::Genre_1|"
            f"...|Genre_k', got {lines[line_number - 1][:60]!r}."
        )
    movie_ids = _check_movie_ids(file, [f[0] for f in fields])
    genre_fields = [f[-1] for f in fields]
    # An empty field means no genre; otherwise k genres are k - 1 bars.
    counts = np.array([g.count(b"|") + 1 if g else 0 for g in genre_fields])
    rows = np.repeat(np.arange(len(lines)), counts)
    joined = b"|".join(filter(None, genre_fields))
    tokens = np.array(joined.split(b"|") if joined else [], dtype=bytes)
    is_empty = tokens == b""
    if is_empty.any():
        line_number = int(rows[np.argmax(is_empty)]) + 1
        raise ValueError(
            f"{file}, line {line_number}: empty genre name in "
            f"{genre_fields[line_number - 1]!r}."
        )
    names, cols = np.unique(tokens, return_inverse=True)
    features = sp.csr_matrix(
        (np.ones(cols.size, np.float32), (rows, cols.ravel())),
        shape=(len(lines), names.size),
    )
    if features.nnz != cols.size:
        codes = rows * names.size + cols.ravel()
        unique_codes, code_counts = np.unique(codes, return_counts=True)
        line_number = int(unique_codes[np.argmax(code_counts > 1)] // names.size) + 1
        raise ValueError(
            f"{file}, line {line_number}: a genre is listed twice in "
            f"{genre_fields[line_number - 1]!r}."
        )
    features.sort_indices()
    feature_names = np.array([name.decode("latin-1") for name in names], dtype=object)
    return movie_ids, _titles(b"::".join(f[1:-1]) for f in fields), features, feature_names


def _titles(fields):
    """Movie titles (object array of str) from their latin-1 byte fields."""
    return np.array([field.decode("latin-1") for field in fields], dtype=object)


def _read_movies(path):
    """``(file, read_from, movie_ids, titles, genre matrix, genre names)`` of
    the movie file in ``path``: ``movies.dat``, or ``u.item`` with ``u.genre``."""
    file = _find_file(path, ("movies.dat", "u.item"), "MovieLens")
    if file.name == "movies.dat":
        return (file, file.name, *_read_ml1m_genres(file))
    genre_file = file.parent / "u.genre"
    if not genre_file.is_file():
        raise FileNotFoundError(
            f"u.genre (the genre names of u.item's flags) not found in the "
            f"MovieLens folder {str(file.parent)!r}."
        )
    return (file, "u.item and u.genre", *_read_ml100k_genres(file, genre_file))


def _positions_in_file(file, movie_ids, item_ids):
    """Line of each of ``item_ids`` in the movie file, -1 where absent."""
    order = np.argsort(movie_ids, kind="stable")
    sorted_ids = movie_ids[order]
    repeated = sorted_ids[1:] == sorted_ids[:-1]
    if repeated.any():
        movie_id = int(sorted_ids[1:][repeated][0])
        raise ValueError(f"{file}: movie id {movie_id} is listed more than once.")
    position = np.minimum(np.searchsorted(sorted_ids, item_ids), sorted_ids.size - 1)
    return np.where(sorted_ids[position] == item_ids, order[position], -1)


@validate_params(
    {"path": [str, os.PathLike], "item_ids": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def load_movielens_genres(path, item_ids):
    """Load MovieLens movie genres (100K or 1M) as a one-hot item feature matrix.

    The format is detected from the files in ``path``, first match wins:
    ``movies.dat`` (ML-1M, ``MovieID::Title::Genre_1|...|Genre_k``, latin-1)
    and ``u.item`` with ``u.genre`` (ML-100K, pipe-separated with one 0/1
    flag per genre of ``u.genre``). Nothing is downloaded.

    Rows follow ``item_ids``, so passing the ``item_ids`` of
    :func:`load_movielens` on the same folder lines the rows up with the
    columns of its interaction matrix. A movie id that is not in the file
    gets an all-zero row (the DESCR says how many); movies of the file that
    are not in ``item_ids`` are left out.

    Parameters
    ----------
    path : str or path-like
        Folder holding ``movies.dat``, or ``u.item`` and ``u.genre``.
    item_ids : array-like of shape (n_items,) of int
        Original movie id of each row, e.g. ``load_movielens(path).item_ids``.
        Any order; repeats give repeated rows.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        features : scipy.sparse.csr_matrix of shape (n_items, n_genres)
            float32; 1.0 where movie ``item_ids[r]`` has the genre; sorted
            indices.
        feature_names : ndarray of shape (n_genres,), dtype object
            Genre names (str): ML-100K's ``u.genre`` in index order (19, the
            first is ``"unknown"``), or every genre named in ``movies.dat``,
            sorted (the 18 genres of ML-1M).
        DESCR : str
            The files read, the number of requested movie ids missing from
            them, and the terms of use.

    Raises
    ------
    FileNotFoundError
        If the folder is missing, holds neither ``movies.dat`` nor
        ``u.item``, or holds ``u.item`` without ``u.genre``.
    ValueError
        If ``item_ids`` is not a 1-D array of integers, or if a file is
        malformed (bad field count, id or flag) or lists a movie id twice.

    See Also
    --------
    load_movielens : The ratings whose columns ``item_ids`` describes.

    Examples
    --------
    >>> from sklearn_cml.datasets import load_movielens, load_movielens_genres
    >>> ml = load_movielens("data/ml-1m", min_rating=4)  # doctest: +SKIP
    >>> genres = load_movielens_genres("data/ml-1m", ml.item_ids)  # doctest: +SKIP
    >>> genres.features.shape  # doctest: +SKIP
    (3706, 18)
    >>> list(genres.feature_names[genres.features[0].indices])  # doctest: +SKIP
    ['Animation', "Children's", 'Comedy']
    """
    item_ids = np.asarray(item_ids)
    if item_ids.ndim != 1 or not (
        item_ids.size == 0 or np.issubdtype(item_ids.dtype, np.integer)
    ):
        raise ValueError(
            "item_ids must be a 1-D array of integer movie ids (for example "
            f"load_movielens(path).item_ids); got shape {item_ids.shape} and "
            f"dtype {item_ids.dtype}."
        )
    item_ids = item_ids.astype(np.int64)

    file, read_from, movie_ids, _, file_features, feature_names = _read_movies(path)
    lines = _positions_in_file(file, movie_ids, item_ids)
    # Missing ids point at an extra all-zero row.
    padded = sp.vstack(
        [file_features, sp.csr_matrix((1, feature_names.size), dtype=np.float32)],
        format="csr",
    )
    features = padded[np.where(lines >= 0, lines, movie_ids.size)]
    features.sort_indices()
    n_missing = int(np.count_nonzero(lines < 0))

    descr = (
        f"MovieLens genres read from {read_from}: {movie_ids.size} movies, "
        f"{feature_names.size} genres. {item_ids.size} rows for the requested "
        f"movie ids, {n_missing} of which are not in {file.name} and have no "
        f"genre (all-zero rows); {features.nnz} movie-genre pairs.\n"
        + _MOVIELENS_TERMS
    )
    return Bunch(features=features, feature_names=feature_names, DESCR=descr)
