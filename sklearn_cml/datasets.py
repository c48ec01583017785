"""Implicit-feedback datasets: a synthetic generator and loaders for standard files.

``make_interactions`` plants the two structures a metric-learning recommender
has to cope with: a long tail of item popularity and user/item taste clusters.
The loaders read MovieLens and CiteULike-a from a folder the user already has;
nothing here downloads data (both datasets are research-only and are not
shipped with the package).
"""

import gzip
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = [
    "load_citeulike",
    "load_citeulike_tags",
    "load_movielens",
    "load_movielens_genres",
    "make_interactions",
]

# Rejection rounds before the exact-but-dense fallback takes over; with the
# oversampling below almost every user is served by the first one or two.
_MAX_REJECTION_ROUNDS = 4

# Terms of use, repeated in the DESCR of every loader of the dataset.
_MOVIELENS_TERMS = (
    "GroupLens Research, University of Minnesota. Research use only; not "
    "redistributable. Cite F. M. Harper and J. A. Konstan, The MovieLens "
    "Datasets: History and Context, ACM TiiS 5(4), 2015."
)
_CITEULIKE_TERMS = (
    "Collected from CiteULike; research use only, not shipped with "
    "sklearn-cml. Cite C. Wang and D. M. Blei, KDD 2011, and H. Wang, "
    "B. Chen and W.-J. Li, IJCAI 2013."
)


@validate_params(
    {
        "n_users": [Interval(Integral, 1, None, closed="left")],
        "n_items": [Interval(Integral, 1, None, closed="left")],
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "mean_interactions": [Interval(Real, 1, None, closed="left")],
        # Real catalogues show 0.5 to 2; the cap keeps r ** -exponent far
        # from float64 underflow for any catalogue size.
        "popularity_exponent": [Interval(Real, 0, 10, closed="both")],
        "cluster_affinity": [Interval(Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
        "return_labels": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_interactions(
    n_users=1000,
    n_items=500,
    n_clusters=8,
    mean_interactions=20.0,
    popularity_exponent=1.0,
    cluster_affinity=0.9,
    random_state=None,
    return_labels=False,
):
    """Generate a binary user-item interaction matrix with realistic structure.

    Items get Zipf-like popularity: the item of popularity rank ``r`` has
    weight ``r ** -popularity_exponent`` (ranks are shuffled, so popularity
    is independent of item ids and clusters). Users and items are split into
    ``n_clusters`` latent taste clusters (items evenly, users at random).
    Each user draws its number of interactions ``n`` from a geometric
    distribution with mean ``mean_interactions`` (at least 1, at most
    ``n_items``). Each of its picks comes from its own cluster with
    probability ``cluster_affinity`` and from the whole catalogue otherwise;
    within the chosen source, a pick is an item the user does not have yet,
    drawn in proportion to popularity.

    Parameters
    ----------
    n_users : int, default=1000
        Number of users (rows).
    n_items : int, default=500
        Number of items (columns).
    n_clusters : int, default=8
        Number of taste clusters; at most ``n_items``.
    mean_interactions : float, default=20.0
        Mean number of interactions per user, between 1 and ``n_items``.
        Counts are clipped to ``n_items``, so the realised mean is a little
        lower when this is close to ``n_items``.
    popularity_exponent : float, default=1.0
        Exponent of the Zipf-like popularity law, in [0, 10]. 0 gives uniform
        popularity; larger values concentrate interactions on fewer items.
    cluster_affinity : float, default=0.9
        Probability that a pick is restricted to the user's own cluster, in
        [0, 1]; 0 removes the cluster structure. A user's expected share of
        items inside its cluster is about ``cluster_affinity + (1 -
        cluster_affinity) / n_clusters``. Own-cluster picks beyond the size
        of the cluster go to the whole catalogue instead, so users who want
        more items than their cluster holds have a lower share.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible output.
    return_labels : bool, default=False
        Also return the cluster of every user and item.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_users, n_items), dtype float32
        1.0 where the user interacted with the item; indices sorted, no
        duplicates, every row non-empty.
    user_labels : ndarray of shape (n_users,), dtype intp
        Cluster of each user. Only returned when ``return_labels=True``.
    item_labels : ndarray of shape (n_items,), dtype intp
        Cluster of each item. Only returned when ``return_labels=True``.

    Notes
    -----
    A user's number of own-cluster picks is binomial. They are drawn first,
    then the picks from the whole catalogue, each stage by successive
    sampling (popularity-weighted sampling without replacement). That is
    implemented by drawing with replacement and keeping first occurrences,
    at a cost proportional to the number of interactions; the few users who
    need nearly every item they can reach are finished with exponential keys
    (Efraimidis & Spirakis, 2006), which costs ``n_items`` per user but
    never stalls on rare items.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cml.datasets import make_interactions
    >>> X, user_labels, item_labels = make_interactions(
    ...     n_users=200, n_items=400, n_clusters=4, random_state=0,
    ...     return_labels=True)
    >>> X.shape, X.dtype
    ((200, 400), dtype('float32'))
    >>> int(X.getnnz(axis=1).min())
    1
    >>> # share of interactions inside the user's own cluster
    >>> user_of_entry = np.repeat(user_labels, np.diff(X.indptr))
    >>> print(f"{np.mean(item_labels[X.indices] == user_of_entry):.2f}")
    0.91
    """
    if n_clusters > n_items:
        raise ValueError(
            f"n_clusters={n_clusters} must be at most n_items={n_items}, "
            "so that every cluster holds at least one item."
        )
    if mean_interactions > n_items:
        raise ValueError(
            f"mean_interactions={mean_interactions} must be at most "
            f"n_items={n_items}: a user interacts with each item at most once."
        )
    rng = check_random_state(random_state)

    # Items are dealt round-robin from a shuffled deck: clusters of even size
    # (never empty) whose members form the rows of a small table.
    deck = rng.permutation(n_items)
    n_slots = -(-n_items // n_clusters)  # members of the largest cluster
    cluster_members = np.full(n_slots * n_clusters, -1)
    cluster_members[:n_items] = deck
    cluster_members = cluster_members.reshape(n_slots, n_clusters).T
    item_labels = np.empty(n_items, dtype=np.intp)
    item_labels[deck] = np.arange(n_items) % n_clusters

    popularity_rank = rng.permutation(n_items) + 1
    popularity = popularity_rank ** -float(popularity_exponent)
    user_labels = rng.randint(n_clusters, size=n_users).astype(np.intp)
    n_wanted = np.minimum(rng.geometric(1.0 / mean_interactions, size=n_users), n_items)

    # Own-cluster picks first, capped by the cluster's size. They are drawn
    # among the cluster's members, so their cost scales with the cluster's
    # size rather than the catalogue's. Padding slots (-1) weigh 0.
    is_member = cluster_members >= 0
    member_popularity = np.where(is_member, popularity[cluster_members], 0.0)
    cluster_sizes = np.count_nonzero(is_member, axis=1)
    n_own = np.minimum(
        rng.binomial(n_wanted, cluster_affinity), cluster_sizes[user_labels]
    )
    no_pairs = np.empty(0, dtype=np.int64)
    own = _add_distinct_items(no_pairs, member_popularity, user_labels, n_own, rng)
    users, slots = np.divmod(own, n_slots)
    pairs = users * n_items + cluster_members[user_labels[users], slots]
    # ... then the rest from the whole catalogue, avoiding the items just picked.
    pairs = _add_distinct_items(
        pairs, popularity[None, :], np.zeros(n_users, np.intp), n_wanted - n_own, rng
    )

    rows, cols = np.divmod(pairs, n_items)
    X = _csr_from_pairs(rows, cols, np.ones(rows.size, np.float32), (n_users, n_items))
    if return_labels:
        return X, user_labels, item_labels
    return X


def _add_distinct_items(pairs, weights, user_rows, n_new, rng):
    """Give each user ``u`` ``n_new[u]`` more items it does not have yet.

    Items are drawn by successive sampling from ``weights[user_rows[u]]``
    (non-negative; each user must have at least ``n_new[u]`` positive-weight
    items it does not have). Pairs are coded as ``user * n_items + item``;
    returns ``pairs`` extended with the new ones.
    """
    n_users = user_rows.size
    n_items = weights.shape[1]
    cumulative = np.cumsum(weights, axis=1)
    cumulative /= cumulative[:, -1:]  # the last entry is then exactly 1.0

    n_missing = n_new.astype(np.int64)
    for _ in range(_MAX_REJECTION_ROUNDS):
        users = np.flatnonzero(n_missing)
        if users.size == 0:
            break
        # Users ordered by weight row, so each row's draws form one slice.
        users = users[np.argsort(user_rows[users], kind="stable")]
        # Oversample so that, despite repeats of popular items, most users
        # are complete after one round.
        drawn_users = np.repeat(users, 2 * n_missing[users] + 4)
        uniforms = rng.random_sample(drawn_users.size)
        drawn_items = np.empty(drawn_users.size, dtype=np.int64)
        row_bounds = np.searchsorted(
            user_rows[drawn_users], np.arange(weights.shape[0] + 1)
        )
        for row, (start, stop) in enumerate(zip(row_bounds[:-1], row_bounds[1:])):
            # side="right" never lands on a zero-weight item.
            drawn_items[start:stop] = np.searchsorted(
                cumulative[row], uniforms[start:stop], side="right"
            )
        candidates = np.concatenate([pairs, drawn_users * n_items + drawn_items])
        # Drawing with replacement and keeping first occurrences, in draw
        # order, is exactly successive sampling without replacement; pairs
        # already held come first, so they count as seen.
        _, first = np.unique(candidates, return_index=True)  # stable: true firsts
        first = np.sort(first[first >= pairs.size])
        new_pairs = candidates[first]
        new_users = new_pairs // n_items  # each user's draws are contiguous
        position = np.arange(new_users.size)
        is_user_start = np.r_[True, new_users[1:] != new_users[:-1]]
        user_start = np.maximum.accumulate(np.where(is_user_start, position, 0))
        keep = position - user_start < n_missing[new_users]
        pairs = np.concatenate([pairs, new_pairs[keep]])
        n_missing -= np.bincount(new_users[keep], minlength=n_users)

    # Users who need nearly all the items they can reach would wait long for
    # the rare ones; finish them with exponential keys: the items with the
    # smallest Exp(1) / weight, among those not held, are a successive sample.
    users = np.flatnonzero(n_missing)
    if users.size:
        with np.errstate(divide="ignore"):
            keys = rng.standard_exponential((users.size, n_items)) / weights[
                user_rows[users]
            ]
        held_users, held_items = np.divmod(pairs, n_items)
        held = np.isin(held_users, users)
        keys[np.searchsorted(users, held_users[held]), held_items[held]] = np.inf
        order = np.argsort(keys, axis=1)
        take = np.arange(n_items) < n_missing[users][:, None]
        pairs = np.concatenate([pairs, (users[:, None] * n_items + order)[take]])
    return pairs


def _csr_from_pairs(rows, cols, data, shape):
    """Build a float32 CSR matrix with sorted indices, refusing duplicate pairs."""
    X = sp.csr_matrix((data, (rows, cols)), shape=shape, dtype=np.float32)
    # The COO -> CSR conversion sums duplicates, so fewer entries means some.
    if X.nnz != len(rows):
        raise ValueError(
            f"{len(rows) - X.nnz} duplicate (user, item) pairs in the input."
        )
    X.sort_indices()
    return X


def _find_file(folder, candidates, dataset):
    """Return the first of ``candidates`` present in ``folder``."""
    folder = Path(folder)
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    looked_for = ", ".join(candidates)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{dataset} folder {str(folder)!r} does not exist (or is not a "
            f"folder); expected a folder holding one of: {looked_for}. "
            "sklearn-cml never downloads data."
        )
    raise FileNotFoundError(
        f"None of {looked_for} found in the {dataset} folder {str(folder)!r}."
    )


def _read_number_table(file):
    """Parse a file of whitespace- or '::'-separated numbers into a 2-D array.

    Whole ratings are parsed as int64 (five times faster than float64, which
    is used only when the file holds a decimal point, e.g. ML-10M's half
    stars).
    """
    raw = file.read_bytes()
    if file.suffix == ".gz":
        raw = gzip.decompress(raw)
    # np.fromstring takes any run of whitespace, newlines included, as one
    # separator, so once ML-1M's '::' is a space the whole file is parsed by
    # one C call (np.loadtxt is about four times slower here).
    text = raw.replace(b"::", b" ").strip()
    n_lines = text.count(b"\n") + 1 if text else 0
    n_columns = len(text.partition(b"\n")[0].split())
    if n_columns < 3:
        raise ValueError(
            f"{file}: expected at least 3 fields per line (user, item, rating)."
        )
    dtype = np.float64 if b"." in text else np.int64
    try:
        values = np.fromstring(text, dtype=dtype, sep=" ")
    except ValueError as exc:
        raise ValueError(f"{file}: could not parse as numbers ({exc}).") from None
    if values.size != n_lines * n_columns:
        raise ValueError(
            f"{file}: expected {n_columns} fields on each of {n_lines} lines, "
            f"found {values.size} numbers in total."
        )
    return values.reshape(n_lines, n_columns)


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
    descr = (
        f"MovieLens ratings read from {file.name}: {shape[0]} users x "
        f"{shape[1]} movies, {interactions.nnz} {kept}.\n" + _MOVIELENS_TERMS
    )
    return Bunch(
        interactions=interactions, user_ids=user_ids, item_ids=item_ids, DESCR=descr
    )


@validate_params({"path": [str, os.PathLike]}, prefer_skip_nested_validation=True)
def load_citeulike(path):
    """Load the CiteULike-a user libraries from a local folder.

    Reads ``users.dat``, where line ``u`` is user ``u``'s library written as
    ``N item_1 ... item_N`` with 0-based article ids. Nothing is downloaded.

    Parameters
    ----------
    path : str or path-like
        Folder holding ``users.dat``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        interactions : scipy.sparse.csr_matrix of shape (n_users, n_items)
            1.0 (float32) where the article is in the user's library; sorted
            indices. Row ``u`` is line ``u`` of the file; column ``i`` is
            article id ``i``. ``n_items`` is the largest article id plus one
            (articles in no library above that id get no column; in
            CiteULike-a every article is in some library).
        DESCR : str
            Where the data came from and its terms of use.

    Raises
    ------
    FileNotFoundError
        If the folder is missing or has no ``users.dat``.
    ValueError
        If a line does not start with its number of items, or repeats one.

    Examples
    --------
    >>> from sklearn_cml.datasets import load_citeulike
    >>> citeulike = load_citeulike("data/citeulike-a")  # doctest: +SKIP
    >>> citeulike.interactions.shape  # doctest: +SKIP
    (5551, 16980)
    """
    file = _find_file(path, ("users.dat",), "CiteULike")
    libraries = []
    for line_number, line in enumerate(file.read_bytes().strip().splitlines(), 1):
        fields = np.fromstring(line, dtype=np.int64, sep=" ")
        if fields.size == 0 or fields[0] != fields.size - 1:
            raise ValueError(
                f"{file}, line {line_number}: expected 'N item_1 ... item_N' "
                f"with N the number of items, got {line[:60]!r}."
            )
        libraries.append(fields[1:])

    library_sizes = [library.size for library in libraries]
    rows = np.repeat(np.arange(len(libraries)), library_sizes)
    cols = np.concatenate(libraries) if libraries else np.empty(0, np.int64)
    shape = (len(libraries), int(cols.max()) + 1 if cols.size else 0)
    interactions = _csr_from_pairs(rows, cols, np.ones(cols.size, np.float32), shape)
    descr = (
        f"CiteULike-a user libraries read from {file.name}: {shape[0]} users x "
        f"{shape[1]} articles, {interactions.nnz} user-article pairs.\n"
        + _CITEULIKE_TERMS
    )
    return Bunch(interactions=interactions, DESCR=descr)


# --------------------------------------------------------------------------
# Item side information


def _file_lines(raw):
    """Split file bytes into lines: CRLF or LF, trailing blank lines dropped."""
    text = raw.replace(b"\r\n", b"\n").rstrip()
    return text.split(b"\n") if text else []


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
    return movie_ids, features, feature_names


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
    return movie_ids, features, feature_names


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

    file = _find_file(path, ("movies.dat", "u.item"), "MovieLens")
    if file.name == "movies.dat":
        movie_ids, file_features, feature_names = _read_ml1m_genres(file)
        read_from = file.name
    else:
        genre_file = file.parent / "u.genre"
        if not genre_file.is_file():
            raise FileNotFoundError(
                f"u.genre (the genre names of u.item's flags) not found in the "
                f"MovieLens folder {str(file.parent)!r}."
            )
        movie_ids, file_features, feature_names = _read_ml100k_genres(file, genre_file)
        read_from = "u.item and u.genre"

    order = np.argsort(movie_ids, kind="stable")
    sorted_ids = movie_ids[order]
    repeated = sorted_ids[1:] == sorted_ids[:-1]
    if repeated.any():
        movie_id = int(sorted_ids[1:][repeated][0])
        raise ValueError(f"{file}: movie id {movie_id} is listed more than once.")
    position = np.minimum(np.searchsorted(sorted_ids, item_ids), sorted_ids.size - 1)
    found = sorted_ids[position] == item_ids
    # Missing ids point at an extra all-zero row.
    padded = sp.vstack(
        [file_features, sp.csr_matrix((1, feature_names.size), dtype=np.float32)],
        format="csr",
    )
    features = padded[np.where(found, order[position], movie_ids.size)]
    features.sort_indices()
    n_missing = int(item_ids.size - np.count_nonzero(found))

    descr = (
        f"MovieLens genres read from {read_from}: {movie_ids.size} movies, "
        f"{feature_names.size} genres. {item_ids.size} rows for the requested "
        f"movie ids, {n_missing} of which are not in {file.name} and have no "
        f"genre (all-zero rows); {features.nnz} movie-genre pairs.\n"
        + _MOVIELENS_TERMS
    )
    return Bunch(features=features, feature_names=feature_names, DESCR=descr)


def _read_count_prefixed_lines(file, what):
    """Parse a file whose line ``k`` is ``N id_1 ... id_N`` (0-based ids).

    Vectorised over the bytes of the whole file: digits and whitespace are
    classified once, tokens are numbered by a cumulative sum, and a single
    ``np.fromstring`` call reads every number. Trailing blank lines are
    ignored; any other blank line is malformed (line ``k`` is item ``k``).

    Returns
    -------
    lengths : ndarray of shape (n_lines,), dtype int64
        ``N`` of each line.
    ids : ndarray of shape (lengths.sum(),), dtype int64
        The ids of all lines, concatenated.
    """
    text = file.read_bytes().rstrip()
    if not text:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    byte = np.frombuffer(text, dtype=np.uint8)
    newlines = np.flatnonzero(byte == ord("\n"))
    line_starts = np.r_[0, newlines + 1]
    line_ends = np.r_[newlines, byte.size]

    def line_text(k):
        return text[line_starts[k] : line_ends[k]][:60]

    is_digit = (byte >= ord("0")) & (byte <= ord("9"))
    is_space = np.zeros(256, dtype=bool)
    is_space[list(b" \t\r\n")] = True
    is_other = ~is_digit & ~is_space[byte]
    if is_other.any():
        k = int(np.searchsorted(newlines, np.argmax(is_other)))
        raise ValueError(
            f"{file}, line {k + 1}: expected non-negative integers "
            f"'N {what}_1 ... {what}_N', got {line_text(k)!r}."
        )
    # Only digits and whitespace are left: a token starts at each digit
    # that follows a non-digit.
    is_token_start = is_digit.copy()
    is_token_start[1:] &= ~is_digit[:-1]
    tokens_before = np.r_[0, np.cumsum(is_token_start)]
    first_token = tokens_before[line_starts]
    tokens_per_line = tokens_before[line_ends] - first_token
    values = np.fromstring(text, dtype=np.int64, sep=" ")
    if values.size != tokens_before[-1]:  # cannot happen with digits only
        raise ValueError(f"{file}: could not parse as integers.")

    heads = values[np.minimum(first_token, values.size - 1)]
    bad = (tokens_per_line == 0) | (heads != tokens_per_line - 1)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(
            f"{file}, line {k + 1}: expected 'N {what}_1 ... {what}_N' with N "
            f"the number of {what}s, got {line_text(k)!r}."
        )
    is_id = np.ones(values.size, dtype=bool)
    is_id[first_token] = False
    return tokens_per_line - 1, values[is_id]


@validate_params(
    {
        "path": [str, os.PathLike],
        "n_items": [Interval(Integral, 0, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def load_citeulike_tags(path, n_items=None):
    """Load the CiteULike-a article tags as a binary item feature matrix.

    Reads ``item-tag.dat``, where line ``i`` lists the tags of article ``i``
    as ``N tag_1 ... tag_N`` (0-based tag ids; ``N`` may be 0), and
    ``tags.dat``, where line ``t`` is the name of tag ``t``. Row ``i`` is
    article ``i``, the same as column ``i`` of :func:`load_citeulike`.
    Nothing is downloaded.

    Parameters
    ----------
    path : str or path-like
        Folder holding ``item-tag.dat`` and ``tags.dat``.
    n_items : int or None, default=None
        Number of rows. None means one per line of ``item-tag.dat``. To line
        the rows up with an interaction matrix ``X`` from
        :func:`load_citeulike`, pass ``X.shape[1]`` (which is above the
        largest article id in ``X``). Rows past the end of the file are
        all-zero; lines past ``n_items`` are dropped. The DESCR says which.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        features : scipy.sparse.csr_matrix of shape (n_items, n_tags)
            1.0 (float32) where the article has the tag; sorted indices.
            ``n_tags`` is the number of lines of ``tags.dat``.
        feature_names : ndarray of shape (n_tags,), dtype object
            Tag names (str), by tag id.
        DESCR : str
            The files read, the number of untagged articles, and the terms
            of use.

    Raises
    ------
    FileNotFoundError
        If the folder is missing or lacks ``item-tag.dat`` or ``tags.dat``.
    ValueError
        If a line of ``item-tag.dat`` does not start with its number of tags,
        holds anything but non-negative integers, repeats a tag, or names a
        tag id that ``tags.dat`` does not have.

    See Also
    --------
    load_citeulike : The user libraries whose columns the rows describe.

    Examples
    --------
    >>> from sklearn_cml.datasets import load_citeulike, load_citeulike_tags
    >>> X = load_citeulike("data/citeulike-a").interactions  # doctest: +SKIP
    >>> tags = load_citeulike_tags("data/citeulike-a", X.shape[1])  # doctest: +SKIP
    >>> tags.features.shape, tags.features.nnz  # doctest: +SKIP
    ((16980, 46391), 239253)
    >>> tags.feature_names[0]  # doctest: +SKIP
    'ucsc-browser'
    """
    item_tag_file = _find_file(path, ("item-tag.dat",), "CiteULike")
    tags_file = _find_file(path, ("tags.dat",), "CiteULike")

    raw_names = tags_file.read_bytes()
    try:
        names_text = raw_names.decode("utf-8")
    except UnicodeDecodeError:
        names_text = raw_names.decode("latin-1")
    # Line t is tag t: keep inner blank lines, drop the final newline only.
    names_text = names_text.replace("\r\n", "\n").removesuffix("\n")
    feature_names = np.array(names_text.split("\n") if names_text else [], dtype=object)
    n_tags = feature_names.size

    lengths, tag_ids = _read_count_prefixed_lines(item_tag_file, "tag")
    n_lines = lengths.size
    is_unknown = tag_ids >= n_tags
    if is_unknown.any():
        first = int(np.argmax(is_unknown))
        item = int(np.searchsorted(np.cumsum(lengths), first, side="right"))
        raise ValueError(
            f"{item_tag_file}, line {item + 1}: tag id {int(tag_ids[first])} is "
            f"out of range; {tags_file.name} names {n_tags} tags (ids 0 to "
            f"{n_tags - 1})."
        )
    if n_items is None:
        n_items = n_lines
    if n_items < n_lines:
        lengths = lengths[:n_items]
        tag_ids = tag_ids[: lengths.sum()]
    rows = np.repeat(np.arange(lengths.size), lengths)
    features = sp.csr_matrix(
        (np.ones(tag_ids.size, np.float32), (rows, tag_ids)), shape=(n_items, n_tags)
    )
    if features.nnz != tag_ids.size:  # duplicates were summed
        codes = rows * n_tags + tag_ids
        unique_codes, code_counts = np.unique(codes, return_counts=True)
        item, tag = divmod(int(unique_codes[np.argmax(code_counts > 1)]), n_tags)
        raise ValueError(
            f"{item_tag_file}, line {item + 1}: tag {tag} is listed more than once."
        )
    features.sort_indices()

    if n_items > n_lines:
        extent = (
            f"; n_items={n_items} is past the file's {n_lines} lines, so the "
            f"last {n_items - n_lines} rows are all-zero"
        )
    elif n_items < n_lines:
        extent = f"; lines past n_items={n_items} (of {n_lines}) were dropped"
    else:
        extent = ""
    n_untagged = int(np.count_nonzero(np.diff(features.indptr) == 0))
    descr = (
        f"CiteULike-a tags read from {item_tag_file.name} and {tags_file.name}: "
        f"{n_items} articles x {n_tags} tags, {features.nnz} article-tag pairs; "
        f"{n_untagged} articles have no tag{extent}.\n" + _CITEULIKE_TERMS
    )
    return Bunch(features=features, feature_names=feature_names, DESCR=descr)
