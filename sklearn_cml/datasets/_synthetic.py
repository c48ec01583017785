"""The synthetic generator: ``make_interactions`` and its sampler.

A user-item matrix with a Zipf-like long tail of item popularity and planted
user/item taste clusters, drawn by popularity-weighted successive sampling
(``_add_distinct_items``). It lives apart from the loaders because it reads no
file: its only shared helper is ``_csr_from_pairs`` from ``_parsing``.
"""

from itertools import pairwise
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ._parsing import _csr_from_pairs

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
        for row, (start, stop) in enumerate(pairwise(row_bounds)):
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
