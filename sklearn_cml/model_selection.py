"""Per-user splits of interaction matrices into train, validation and test.

A recommender is evaluated on items it has not seen for users it has seen:
every eligible user (row) keeps part of its items for training and holds out
the rest.  All splitters here work that way and share one implementation:

1. the input is validated like the estimator does it, then put in canonical
   CSR form (sorted indices, duplicates summed, explicit zeros dropped);
2. every interaction gets a random 64-bit key whose high bits are its row, so
   one stable ``argsort`` of the keys shuffles each row independently and
   uniformly; the entry's position in that order minus its row's start is its
   random rank within the row;
3. per-row counts of each part (from the splitter's rule) turn ranks into
   parts: the lowest ranks go to the first part, and so on.

No Python loop runs per user: MovieLens-1M (a million interactions) splits
in a few tens of milliseconds.  With the same ``random_state`` the split is
the same for any input format (CSR, CSC, COO, dense, sparse arrays), because
keys are drawn in the canonical order.
"""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, RealNotInt, validate_params

from ._sparse_checks import canonical_csr, check_matrix

__all__ = ["leave_k_out_split", "train_test_split", "train_validation_test_split"]


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "test_size": [
            Interval(RealNotInt, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "min_interactions": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def train_test_split(X, *, test_size=0.2, min_interactions=2, random_state=None):
    """Hold out part of each user's interactions, chosen uniformly at random.

    A user (row) with ``n_u`` interactions holds out ``n_test`` of them:

    - ``test_size`` a float in (0, 1): ``n_test = round(test_size * n_u)``
      (half to even, like Python's ``round``), raised to 1 and lowered to
      ``n_u - 1`` so that the user has items on both sides;
    - ``test_size`` an int >= 1: ``n_test = test_size``; users with fewer
      than ``test_size + 1`` interactions stay entirely in train.

    Users with fewer than ``min_interactions`` interactions, and users with a
    single one, stay entirely in train: there is too little to both learn
    from and test on.  Which items are held out is uniformly random within
    each user, independently across users.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_users, n_items)
        Interactions; any positive entry is one. Any scipy sparse format
        (matrix or array) or dense. Zeros, stored or not, are not
        interactions; negative values, NaN and inf are rejected.
    test_size : float or int, default=0.2
        Fraction of each user's interactions to hold out, in (0, 1), or the
        number of them, >= 1.
    min_interactions : int, default=2
        Users with fewer interactions stay entirely in train.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible splits.

    Returns
    -------
    X_train : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Interactions kept for training.
    X_test : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Held-out interactions.

        Both keep the values of ``X`` (float64 if ``X`` is float64, float32
        otherwise), have sorted indices and no explicit zeros, share no
        entry, and add up to the positive entries of ``X``.

    Raises
    ------
    ValueError
        If ``X`` is empty, not 2-d, non-numeric, or holds NaN, inf or
        negative values, or if a parameter is out of range.

    See Also
    --------
    leave_k_out_split : Hold out a fixed number of items per user.
    train_validation_test_split : The CML paper's 60/20/20 per-user split.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cml.datasets import make_interactions
    >>> from sklearn_cml.model_selection import train_test_split
    >>> X = make_interactions(n_users=100, n_items=50, random_state=0)
    >>> X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
    >>> X_train.shape, X_test.shape
    ((100, 50), (100, 50))
    >>> X_train.nnz + X_test.nnz == X.nnz
    True
    >>> X_train.multiply(X_test).nnz  # no interaction on both sides
    0
    >>> n_u = X.getnnz(axis=1)
    >>> # users with 10 interactions hold out round(0.2 * 10) = 2 each
    >>> bool(np.all(X_test.getnnz(axis=1)[n_u == 10] == 2))
    True
    >>> # users with a single interaction stay in train
    >>> bool(np.all(X_test.getnnz(axis=1)[n_u == 1] == 0))
    True
    """
    _reject_bool(test_size, "test_size", "a float in (0, 1) or an int >= 1")
    if isinstance(test_size, Integral):
        return _holdout_split(X, int(test_size), None, min_interactions, random_state)
    return _holdout_split(X, None, float(test_size), min_interactions, random_state)


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "k": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def leave_k_out_split(X, *, k=1, random_state=None):
    """Hold out ``k`` random interactions of every user that has more than ``k``.

    Users with ``k`` interactions or fewer stay entirely in train, so every
    user with held-out items still has at least one to learn from.  This is
    ``train_test_split(X, test_size=k, min_interactions=1)``; with ``k=1`` it
    is the usual leave-one-out protocol.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_users, n_items)
        Interactions; any positive entry is one (see ``train_test_split``).
    k : int, default=1
        Number of interactions to hold out per user, >= 1.
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible splits.

    Returns
    -------
    X_train : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Interactions kept for training.
    X_test : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Held-out interactions: ``k`` per user with more than ``k``, none for
        the others. Values and format as in ``train_test_split``.

    Raises
    ------
    ValueError
        If ``X`` is invalid (see ``train_test_split``) or ``k < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cml.datasets import make_interactions
    >>> from sklearn_cml.model_selection import leave_k_out_split
    >>> X = make_interactions(n_users=100, n_items=50, random_state=0)
    >>> X_train, X_test = leave_k_out_split(X, k=1, random_state=0)
    >>> n_u = X.getnnz(axis=1)
    >>> bool(np.all(X_test.getnnz(axis=1) == (n_u > 1)))
    True
    >>> int(X_train.getnnz(axis=1).min())  # nobody loses all its items
    1
    """
    _reject_bool(k, "k", "an int >= 1")
    return _holdout_split(X, int(k), None, 1, random_state)


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "sizes": ["array-like"],
        "min_interactions": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def train_validation_test_split(X, *, sizes=(0.6, 0.2, 0.2), min_interactions=5,
                                random_state=None):
    """Split each user's interactions into train, validation and test (CML paper).

    This is the evaluation protocol of Hsieh et al. (WWW 2017): each user's
    items are shuffled uniformly and cut 60% / 20% / 20%.  A user with ``n``
    interactions, ``n >= min_interactions``, gets

    - ``n_train = round(sizes[0] * n)`` in train,
    - ``n_validation = round(sizes[1] * n)`` in validation,
    - ``n_test = n - n_train - n_validation`` in test,

    rounding half to even like Python's ``round``: exactly the sizes up to
    rounding.  Users with fewer than ``min_interactions`` interactions stay
    entirely in train.  With the defaults every eligible user has at least
    three items in train and one each in validation and test; with small
    ``min_interactions`` or small fractions a part may be empty for users
    with few items.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_users, n_items)
        Interactions; any positive entry is one (see ``train_test_split``).
    sizes : tuple of three floats, default=(0.6, 0.2, 0.2)
        Fractions of each user's interactions in train, validation and test:
        positive, summing to 1.
    min_interactions : int, default=5
        Users with fewer interactions stay entirely in train (the paper keeps
        users with at least 5).
    random_state : int, RandomState instance or None, default=None
        Seed or generator for reproducible splits.

    Returns
    -------
    X_train : scipy.sparse.csr_matrix of shape (n_users, n_items)
    X_validation : scipy.sparse.csr_matrix of shape (n_users, n_items)
    X_test : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Pairwise disjoint, adding up to the positive entries of ``X``; values
        and format as in ``train_test_split``.

    Raises
    ------
    ValueError
        If ``X`` is invalid (see ``train_test_split``), if ``sizes`` is not
        three positive numbers summing to 1, or if ``min_interactions < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cml.datasets import make_interactions
    >>> from sklearn_cml.model_selection import train_validation_test_split
    >>> X = make_interactions(n_users=100, n_items=50, random_state=0)
    >>> X_train, X_val, X_test = train_validation_test_split(X, random_state=0)
    >>> X_train.nnz + X_val.nnz + X_test.nnz == X.nnz
    True
    >>> # a user with 10 interactions: 6 train, 2 validation, 2 test
    >>> user = int(np.flatnonzero(X.getnnz(axis=1) == 10)[0])
    >>> X_train[user].nnz, X_val[user].nnz, X_test[user].nnz
    (6, 2, 2)
    >>> # a user with fewer than 5 stays in train
    >>> user = int(np.flatnonzero(X.getnnz(axis=1) == 3)[0])
    >>> X_train[user].nnz, X_val[user].nnz, X_test[user].nnz
    (3, 0, 0)
    """
    fractions = _check_sizes(sizes)
    csr = _check_interactions(X)
    n_u = np.diff(csr.indptr).astype(np.int64)
    eligible = n_u >= min_interactions
    n_train = np.where(eligible, np.rint(fractions[0] * n_u).astype(np.int64), n_u)
    n_validation = np.where(eligible, np.rint(fractions[1] * n_u).astype(np.int64), 0)
    n_test = n_u - n_train - n_validation
    return _split_by_rank(csr, [n_train, n_validation, n_test], random_state)


def _holdout_split(X, n_held_out, fraction, min_interactions, random_state):
    """Two-way split: a count (``n_held_out``) or a ``fraction`` per user."""
    csr = _check_interactions(X)
    n_u = np.diff(csr.indptr).astype(np.int64)
    if fraction is None:
        eligible = n_u >= max(min_interactions, n_held_out + 1)
        n_test = np.where(eligible, n_held_out, 0)
    else:
        eligible = n_u >= max(min_interactions, 2)
        n_test = np.clip(np.rint(fraction * n_u).astype(np.int64), 1, n_u - 1)
        n_test[~eligible] = 0
    return _split_by_rank(csr, [n_u - n_test, n_test], random_state)


def _split_by_rank(csr, part_sizes, random_state):
    """Split ``csr``'s entries into parts of the given sizes per row.

    ``part_sizes`` is a list of int arrays of shape (n_users,) adding up to
    the row counts.  Each row's entries are shuffled uniformly; the first
    ``part_sizes[0][u]`` go to part 0, the next ``part_sizes[1][u]`` to
    part 1, and so on.  Returns one CSR matrix per part, each keeping the
    row's (sorted) index order.
    """
    n_users, n_items = csr.shape
    indptr = csr.indptr.astype(np.int64)
    n_u = np.diff(indptr)
    nnz = int(indptr[-1])
    rng = check_random_state(random_state)

    # Random rank of each entry within its row: row id in the high bits,
    # random bits below, so one sort shuffles every row (rows stay in order).
    row_bits = max(1, (n_users - 1).bit_length())
    rows = np.repeat(np.arange(n_users, dtype=np.uint64), n_u)
    keys = rng.randint(0, 2**64, size=nnz, dtype=np.uint64) >> np.uint64(row_bits)
    keys |= rows << np.uint64(64 - row_bits)
    order = np.argsort(keys, kind="stable")  # ties (2**-50 per pair) break by position
    del keys
    rows = rows.astype(np.intp)
    ranks = np.empty(nnz, dtype=np.int64)
    ranks[order] = np.arange(nnz, dtype=np.int64) - indptr[rows]
    del order

    part = np.zeros(nnz, dtype=np.int8)
    boundary = np.zeros(n_users, dtype=np.int64)
    for sizes in part_sizes[:-1]:  # one pass per part, not per user
        boundary += sizes
        part += ranks >= boundary[rows]

    outputs = []
    for p, sizes in enumerate(part_sizes):
        mask = part == p
        part_indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(sizes, out=part_indptr[1:])
        matrix = sp.csr_matrix(
            (csr.data[mask], csr.indices[mask], part_indptr), shape=(n_users, n_items)
        )
        matrix.has_sorted_indices = True
        outputs.append(matrix)
    return tuple(outputs)


def _check_interactions(X):
    """Validated, canonical CSR copy of ``X`` with only positive entries.

    Same rules as the estimator: numeric, finite, 2-d, at least one row and
    one column, no negative values.  Values become float64 if ``X`` is
    float64, float32 otherwise.  ``X`` itself is never modified.
    """
    X = check_matrix(X, "X")
    dtype = np.float64 if X.dtype == np.float64 else np.float32
    # A private copy, canonical whatever scipy's cached flags say.
    csr = canonical_csr(sp.csr_matrix(X, dtype=dtype, copy=True), "X")
    if csr.data.size and csr.data.min() < 0:
        raise ValueError(
            "Negative values in data passed to X. An interaction matrix holds "
            "implicit feedback where any positive entry is an interaction; "
            "binarize or threshold the data first, for example with "
            "sklearn.preprocessing.Binarizer(threshold=...)."
        )
    csr.eliminate_zeros()  # explicit zeros are not interactions
    return csr


def _reject_bool(value, name, expected):
    """scikit-learn's ``Interval(Integral, ...)`` lets True through as 1."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be {expected}, got {value!r}.")


def _check_sizes(sizes):
    """``sizes`` as a float array of three positive fractions summing to 1."""
    message = (
        "sizes must be three positive numbers summing to 1: the fractions of "
        "each user's interactions in train, validation and test, for example "
        f"(0.6, 0.2, 0.2); got {sizes!r}."
    )
    try:
        fractions = np.asarray(sizes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if (
        fractions.shape != (3,)
        or not np.all(np.isfinite(fractions))
        or np.any(fractions <= 0)
        or not np.isclose(fractions.sum(), 1.0, rtol=0, atol=1e-8)
    ):
        raise ValueError(message)
    return fractions
