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

__all__ = ["make_interactions", "load_movielens", "load_citeulike"]

# Rejection rounds before the exact-but-dense fallback takes over; with the
# oversampling below almost every user is served by the first one or two.
_MAX_REJECTION_ROUNDS = 4


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
        f"{shape[1]} movies, {interactions.nnz} {kept}.\n"
        "GroupLens Research, University of Minnesota. Research use only; not "
        "redistributable. Cite F. M. Harper and J. A. Konstan, The MovieLens "
        "Datasets: History and Context, ACM TiiS 5(4), 2015."
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
        "Collected from CiteULike; research use only, not shipped with "
        "sklearn-cml. Cite C. Wang and D. M. Blei, KDD 2011, and H. Wang, "
        "B. Chen and W.-J. Li, IJCAI 2013."
    )
    return Bunch(interactions=interactions, DESCR=descr)
