"""Ranking metrics for recommenders, and scorers for model selection.

Every metric ranks, for each user, **all** items except the excluded ones
(pass the training interactions as ``exclude``, or items the user has
already seen stay in the ranking and crowd out the held-out ones).  Users
without test items are skipped, not counted as zero, and the metric is the
plain mean over the remaining users.  Items with equal scores are treated
as in random order: each metric is its expected value over those orders,
so no item is favoured by its index.

Definitions, for a user with test items T, k the cut-off, and hits the
number of test items among the k best-ranked candidates:

- ``recall@k`` = hits / |T| (the CML paper's definition; note that it is
  below 1 whenever |T| > k);
- ``precision@k`` = hits / k;
- ``hit_rate@k`` = 1 if hits > 0 else 0;
- ``ndcg@k`` = DCG@k / IDCG@k with binary gains and ``1 / log2(rank + 1)``
  discounts, IDCG@k the DCG of a ranking with min(k, |T|) test items first;
- ``map@k`` = mean over users of AP@k = (sum over ranks r <= k holding a test
  item of precision@r) / min(k, |T|);
- ``auc`` = the fraction of (test item, candidate non-test item) pairs in
  the right order, ties counting one half; users without any candidate
  non-test item are skipped for it.

Scores can be a dense array (users x items, higher is better), a fitted
``CMLRecommender`` (its training users are ranked, by negative distance), or
a function of an array of user indices returning their scores.  With the
last two, scores are computed for a batch of users at a time, so memory
stays bounded (about 16 MiB of scores at once) whatever the number of users
and items.
"""

import inspect
import re
import warnings
from numbers import Integral

import numba
import numpy as np
import scipy.sparse as sp
from sklearn.pipeline import Pipeline
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ._interactions import Interactions, check_interactions, validate_interactions
from ._progress import announce_compilation
from ._ranking import (
    AP_SUM,
    AUC,
    DCG,
    HIT_PROBABILITY,
    HITS,
    N_STATS,
    N_TEST,
    ranking_stats,
)
from ._rng import holdout_mask
from ._threads import thread_limits
from ._topk import queries_per_batch, squared_distances, squared_norms

#: Names of the metrics that :func:`ranking_metrics` computes (all of them by
#: default) and that :func:`make_ranking_scorer` accepts.
METRICS = ("recall", "precision", "ndcg", "map", "hit_rate", "auc")


__all__ = [
    "METRICS",
    "auc_score",
    "embedding_scores",
    "hit_rate_at_k",
    "make_ranking_scorer",
    "map_at_k",
    "ndcg_at_k",
    "popularity_scores",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]


def ranking_metrics(y_true, y_score, *, k=10, exclude=None, metrics=METRICS):
    """Several ranking metrics at once, in one pass over the users.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_users, n_items)
        Test interactions: positive entries are the relevant items.
    y_score : array-like of shape (n_users, n_items), fitted CMLRecommender or callable
        Scores, higher is better.  A fitted ``CMLRecommender`` scores its
        training users (rows of its ``fit`` matrix) by negative squared
        distance.  A callable takes an int array of user indices and returns
        their (n, n_items) scores.
    k : int, default=10
        Cut-off of the ranking (not used by ``auc``).
    exclude : {array-like, sparse matrix} of shape (n_users, n_items), default=None
        Items left out of each user's ranking, typically the training
        interactions.  Must not overlap ``y_true``.
    metrics : sequence of str, default=METRICS
        Names among ``"recall", "precision", "ndcg", "map", "hit_rate",
        "auc"``.

    Returns
    -------
    scores : dict
        Metric name -> mean over users with test items.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cml.metrics import ranking_metrics
    >>> y_true = np.array([[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]])
    >>> y_score = np.array([[0.1, 0.9, 0.2, 0.4], [0.5, 0.1, 0.3, 0.2], [0.3, 0.3, 0.3, 0.3]])
    >>> result = ranking_metrics(y_true, y_score, k=2, metrics=("recall", "precision"))
    >>> {name: round(value, 3) for name, value in result.items()}
    {'recall': 0.75, 'precision': 0.625}

    User 0 has both test items in its top 2 (recall 1); user 1 has no test
    item and is skipped; user 2 scores all four items equally, so its test
    item is in the top 2 with probability 1/2.
    """
    names = _check_metric_names(metrics)
    k = _check_k(k)
    stats = _ranking_statistics(y_true, y_score, k=k, exclude=exclude, metrics=names)
    return {name: _metric_from_stats(stats, name, k) for name in names}


def _parameters_of_ranking_metrics(function):
    """Write ``function``'s Parameters section from those of :func:`ranking_metrics`.

    The single-metric functions take a subset of its parameters, which keep
    one description, here; ``{parameters}`` in their docstring marks where.
    """
    section = ranking_metrics.__doc__.split("----------\n", 1)[1].split("\n\n", 1)[0]
    entries = re.split(r"\n(?=    \w)", section)
    names = inspect.signature(function).parameters
    kept = [entry for entry in entries if entry.split(" : ")[0].strip() in names]
    function.__doc__ = function.__doc__.replace(
        "{parameters}", "Parameters\n    ----------\n" + "\n".join(kept).rstrip()
    )
    return function


@_parameters_of_ranking_metrics
def recall_at_k(y_true, y_score, *, k=10, exclude=None):
    """Mean recall@k: test items among the k best / number of test items.

    Conventions as in :func:`ranking_metrics`.

    {parameters}

    Returns
    -------
    recall : float

    Examples
    --------
    >>> from sklearn_cml.metrics import recall_at_k
    >>> recall_at_k([[1, 0, 1]], [[0.9, 0.5, 0.1]], k=2)
    0.5
    >>> recall_at_k([[1, 0, 1]], [[0.9, 0.5, 0.1]], k=2, exclude=[[0, 1, 0]])
    1.0
    """
    return ranking_metrics(y_true, y_score, k=k, exclude=exclude, metrics=("recall",))["recall"]


@_parameters_of_ranking_metrics
def precision_at_k(y_true, y_score, *, k=10, exclude=None):
    """Mean precision@k: test items among the k best / k.

    Conventions as in :func:`ranking_metrics`.

    {parameters}

    Returns
    -------
    precision : float

    Examples
    --------
    >>> from sklearn_cml.metrics import precision_at_k
    >>> precision_at_k([[1, 0, 1, 0]], [[0.9, 0.5, 0.1, 0.0]], k=2)
    0.5
    """
    metric = ranking_metrics(y_true, y_score, k=k, exclude=exclude, metrics=("precision",))
    return metric["precision"]


@_parameters_of_ranking_metrics
def ndcg_at_k(y_true, y_score, *, k=10, exclude=None):
    """Mean normalised discounted cumulative gain at k (binary gains).

    Conventions as in :func:`ranking_metrics`.

    {parameters}

    Returns
    -------
    ndcg : float

    Examples
    --------
    >>> from sklearn_cml.metrics import ndcg_at_k
    >>> round(ndcg_at_k([[0, 1, 0]], [[0.9, 0.5, 0.1]], k=2), 4)  # 1/log2(3)
    0.6309
    """
    return ranking_metrics(y_true, y_score, k=k, exclude=exclude, metrics=("ndcg",))["ndcg"]


@_parameters_of_ranking_metrics
def map_at_k(y_true, y_score, *, k=10, exclude=None):
    """Mean average precision at k.

    Conventions as in :func:`ranking_metrics`.

    {parameters}

    Returns
    -------
    map : float

    Examples
    --------
    >>> from sklearn_cml.metrics import map_at_k
    >>> map_at_k([[1, 0, 1]], [[0.9, 0.5, 0.1]], k=3)  # (1/1 + 2/3) / 2
    0.8333333333333333
    """
    return ranking_metrics(y_true, y_score, k=k, exclude=exclude, metrics=("map",))["map"]


@_parameters_of_ranking_metrics
def hit_rate_at_k(y_true, y_score, *, k=10, exclude=None):
    """Fraction of users with at least one test item among their k best.

    Conventions as in :func:`ranking_metrics`.

    {parameters}

    Returns
    -------
    hit_rate : float

    Examples
    --------
    >>> from sklearn_cml.metrics import hit_rate_at_k
    >>> hit_rate_at_k([[1, 0, 0], [0, 0, 1]], [[0.9, 0.5, 0.1], [0.9, 0.5, 0.1]], k=1)
    0.5
    """
    return ranking_metrics(y_true, y_score, k=k, exclude=exclude, metrics=("hit_rate",))[
        "hit_rate"
    ]


@_parameters_of_ranking_metrics
def auc_score(y_true, y_score, *, exclude=None):
    """Mean per-user AUC of test items against the other candidate items.

    Conventions as in :func:`ranking_metrics`; there is no cut-off.

    {parameters}

    Returns
    -------
    auc : float

    Examples
    --------
    >>> from sklearn_cml.metrics import auc_score
    >>> auc_score([[1, 0, 0, 1]], [[0.9, 0.5, 0.1, 0.5]])  # 3 pairs right, 1 tied
    0.875
    """
    return ranking_metrics(y_true, y_score, k=1, exclude=exclude, metrics=("auc",))["auc"]


class _RankingScorer:
    """``scorer(estimator, X, y=None)`` for ``GridSearchCV(scoring=...)``.

    It uses the estimator's public methods only: ``transform`` places each
    row from its known items, and the held-out ones are ranked.  A Pipeline
    transforms ``X`` with its first steps and is scored by its last.
    """

    def __init__(self, metric, k):
        self.metric = metric
        self.k = k

    def __call__(self, estimator, X, y=None):
        check_is_fitted(estimator)
        if isinstance(estimator, Pipeline):  # e.g. a table encoder, then the recommender
            X = estimator[:-1].transform(X)
            estimator = estimator[-1]
        known, test, known_values = _held_out_split(estimator, X, y)
        with warnings.catch_warnings():
            # X's feature names were checked above; the known part, a matrix
            # of X's columns, has none of its own.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            # With X's values, which the estimator may weigh its pairs by.
            vectors = estimator.transform(sp.csr_matrix(
                (known_values, known.indices, known.indptr), shape=(known.n_users, known.n_items)))
        scores = embedding_scores(vectors, estimator.item_embeddings_)
        stats = _statistics_of(test, scores, self.k, known, (self.metric,))
        return _metric_from_stats(stats, self.metric, self.k)

    def __repr__(self):
        return f"make_ranking_scorer({self.metric!r}, k={self.k})"


def make_ranking_scorer(metric="recall", *, k=50):
    """A scorer for ``GridSearchCV``, ``cross_val_score`` and the like.

    The scorer takes ``(estimator, X, y=None)`` where ``X`` holds users the
    estimator did not see in ``fit`` (a cross-validation fold of users).
    Each row is folded in from part of its items and ranked against the
    rest, exactly as ``CMLRecommender.score`` does: with ``y``, the rows of
    ``y`` are the held-out items; without, a deterministic
    ``estimator.score_holdout`` fraction of each row is held out.

    Parameters
    ----------
    metric : str, default="recall"
        One of ``"recall", "precision", "ndcg", "map", "hit_rate", "auc"``.
    k : int, default=50
        Cut-off of the ranking.

    Returns
    -------
    scorer : callable

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_cml import CMLRecommender
    >>> from sklearn_cml.datasets import make_interactions
    >>> from sklearn_cml.metrics import make_ranking_scorer
    >>> X = make_interactions(n_users=300, n_items=100, random_state=0)
    >>> search = GridSearchCV(
    ...     CMLRecommender(n_components=8, n_epochs=5, random_state=0),
    ...     {"margin": [0.5, 1.0]},
    ...     scoring={"recall": make_ranking_scorer("recall", k=20),
    ...              "ndcg": make_ranking_scorer("ndcg", k=20)},
    ...     refit="recall", cv=3).fit(X)
    >>> sorted(name for name in search.cv_results_ if name.startswith("mean_test"))
    ['mean_test_ndcg', 'mean_test_recall']
    """
    (metric,) = _check_metric_names((metric,))
    return _RankingScorer(metric, _check_k(k))


def embedding_scores(user_vectors, item_vectors):
    """A score function for embeddings: ``-|u - v|^2`` for every item.

    Use it as ``y_score`` to evaluate any model that embeds users and items
    in one Euclidean space, for instance folded-in users.

    Parameters
    ----------
    user_vectors : ndarray of shape (n_users, n_components)
    item_vectors : ndarray of shape (n_items, n_components)

    Returns
    -------
    scores : callable
        Maps an int array of user indices to their (n, n_items) scores.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cml.metrics import embedding_scores, recall_at_k
    >>> users = np.array([[0.0, 0.0]]); items = np.array([[1.0, 0.0], [0.1, 0.0]])
    >>> embedding_scores(users, items)(np.array([0]))
    array([[-1.  , -0.01]])
    >>> recall_at_k([[0, 1]], embedding_scores(users, items), k=1)
    1.0
    """
    item_sq_norms = squared_norms(item_vectors)

    def scores(user_indices):
        distances = squared_distances(user_vectors[user_indices], item_vectors, item_sq_norms)
        return np.negative(distances, out=distances)

    return scores


def popularity_scores(X):
    """The popularity baseline as a score function: items ranked by their users.

    Every user scores each item by the number of rows of ``X`` that hold
    it, so all users get the same ranking.  A recommender that does not
    beat it has learnt nothing personal.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_users, n_items)
        Training interactions (positive entries).

    Returns
    -------
    scores : callable
        Maps an int array of user indices to their (n, n_items) scores (a
        read-only view, the same row for every user).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cml.metrics import popularity_scores, recall_at_k
    >>> train = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    >>> popularity_scores(train)(np.array([2]))
    array([[1., 2., 0.]], dtype=float32)
    >>> recall_at_k([[0, 0, 1], [1, 0, 0], [1, 0, 0]], popularity_scores(train), k=1,
    ...             exclude=train)
    0.6666666666666666
    """
    data = check_interactions(X, "X")
    counts = np.bincount(data.indices, minlength=data.n_items).astype(np.float32)
    return lambda users: np.broadcast_to(counts, (len(users), counts.size))


# ----------------------------------------------------------------- internals

# Seed of the entries that scoring holds out when no ``y`` is given: fixed,
# so that models with different ``random_state`` are scored on the same items.
HOLDOUT_SEED = 20170403


def _held_out_split(estimator, X, y):
    """``(known, held_out, known_values)`` of the rows of ``X``, for scoring.

    Without ``y``, a deterministic ``estimator.score_holdout`` fraction of
    each row with at least two items is held out; with ``y``, ``y`` holds
    the held-out items of each row.  ``known_values`` are X's values of
    the known interactions.
    """
    data, values = validate_interactions(estimator, X, reset=False, with_values=True)
    announce_compilation(getattr(estimator, "verbose", 0), (holdout_mask, ranking_stats),
                         "the scoring kernels", "about 20 s")
    if y is None:
        held_out = holdout_mask(data.indptr, data.indices, HOLDOUT_SEED, estimator.score_holdout)
        (known, test), values = _split_entries(data, held_out), values[~held_out]
    else:
        known, test = data, _check_held_out(y, data)
    if not np.any(np.diff(test.indptr)):
        raise ValueError(
            "No row has held-out items to score: give y, or rows with at "
            "least two interactions so that part of each can be held out."
        )
    return known, test, values


def _check_held_out(y, data):
    test = check_interactions(y, "y")
    if (test.n_users, test.n_items) != (data.n_users, data.n_items):
        raise ValueError(
            f"y has shape {(test.n_users, test.n_items)}, but must hold the held-out "
            f"items of each row of X, with shape {(data.n_users, data.n_items)}."
        )
    overlap = data.to_csr().multiply(test.to_csr()).nnz
    if overlap:
        raise ValueError(
            f"y shares {overlap} interactions with X. Held-out items must not be "
            "in X, which the user's recommendations exclude."
        )
    return test


def _split_entries(data, held_out):
    """Split a matrix's entries into (kept, held out) by a boolean mask."""
    row_of_entry = np.repeat(np.arange(data.n_users), np.diff(data.indptr))

    def select(mask):
        indptr = np.zeros(data.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of_entry[mask], minlength=data.n_users), out=indptr[1:])
        return Interactions(indptr, data.indices[mask], data.n_items)

    return select(~held_out), select(held_out)



def _check_k(k):
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    return int(k)


def _check_metric_names(metrics):
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [name for name in metrics if name not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"Unknown metric(s) {unknown}; choose among {list(METRICS)}.")
    return tuple(metrics)


def _ranking_statistics(y_true, y_score, *, k, exclude, metrics=METRICS):
    """Validate the inputs, then compute the per-user statistics that
    ``metrics`` need."""
    test = check_interactions(y_true, "y_true")
    shape = (test.n_users, test.n_items)
    if exclude is None:
        excluded = Interactions(np.zeros(test.n_users + 1, np.int64), np.zeros(0, np.int32),
                                test.n_items)
    else:
        excluded = check_interactions(exclude, "exclude", shape)
        overlap = test.to_csr().multiply(excluded.to_csr()).nnz
        if overlap:
            raise ValueError(
                f"y_true and exclude share {overlap} interactions. Test items must not "
                "be excluded from the ranking: split train and test without overlap."
            )
    return _statistics_of(test, _score_source(y_score, shape), k, excluded, metrics)


def _score_source(y_score, shape):
    """A function of user indices returning their scores, checked for shape."""
    if hasattr(y_score, "user_embeddings_") and hasattr(y_score, "item_embeddings_"):
        users, items = y_score.user_embeddings_, y_score.item_embeddings_
        if (users.shape[0], items.shape[0]) != shape:
            raise ValueError(
                f"The model was fitted on {users.shape[0]} users x {items.shape[0]} items, "
                f"but y_true has shape {shape}: rank the model's own users, or fold new "
                "users in with transform."
            )
        return embedding_scores(users, items)
    if callable(y_score):
        def checked(user_indices):
            scores = np.asarray(y_score(user_indices))
            if scores.shape != (len(user_indices), shape[1]):
                raise ValueError(
                    f"The score function returned shape {scores.shape} for "
                    f"{len(user_indices)} users; expected {(len(user_indices), shape[1])}."
                )
            return _finite_scores(scores)

        return checked
    scores = check_array(y_score, dtype=(np.float64, np.float32), input_name="y_score")
    if scores.shape != shape:
        raise ValueError(f"y_score has shape {scores.shape}, but y_true has shape {shape}.")
    return lambda user_indices: scores[user_indices]


def _finite_scores(scores):
    scores = np.ascontiguousarray(scores, dtype=np.float64 if scores.dtype == np.float64
                                  else np.float32)
    if not np.isfinite(scores).all():
        raise ValueError("The scores contain NaN or infinity.")
    return scores


# The metrics that need each optional statistic of ``_ranking.ranking_stats``.
_NEED_RANKS, _NEED_AUC = frozenset({"ndcg", "map"}), frozenset({"auc"})


def _statistics_of(test, scores, k, excluded, metrics=METRICS):
    """Per-user statistics (n_users, N_STATS), scores computed in batches;
    those no metric of ``metrics`` needs are left at 0."""
    needs = (bool(_NEED_RANKS.intersection(metrics)), bool(_NEED_AUC.intersection(metrics)))
    n_users, n_items = test.n_users, test.n_items
    stats = np.zeros((n_users, N_STATS), dtype=np.float64)
    step = queries_per_batch(n_items)
    # Only users with test items need scores.
    with_test = np.flatnonzero(np.diff(test.indptr) > 0)
    for start in range(0, with_test.shape[0], step):
        users = with_test[start : start + step]
        batch_scores = np.ascontiguousarray(scores(users))
        batch_stats = np.zeros((users.shape[0], N_STATS), dtype=np.float64)
        _rows_stats(batch_scores, users, test, excluded, k, needs, batch_stats)
        stats[users] = batch_stats
    return stats


def _rows_stats(batch_scores, users, test, excluded, k, needs, out):
    """Statistics of a batch of (not necessarily contiguous) users;
    ``needs``: (with_ranks, with_auc) of ``ranking_stats``."""
    # Re-index the two CSR structures to the batch's users, in order.
    test_indptr, test_indices = _rows_of(test, users)
    exclude_indptr, exclude_indices = _rows_of(excluded, users)
    # One dtype for the kernel, whatever the scores' (float32 to float64 is
    # exact, ties stay ties): one compiled version serves every caller.
    batch_scores = np.ascontiguousarray(batch_scores, dtype=np.float64)
    n_threads = numba.get_num_threads()
    with thread_limits(n_threads):
        ranking_stats(
            batch_scores, test_indptr, test_indices, exclude_indptr, exclude_indices, k,
            *needs, min(users.shape[0], 4 * n_threads), out,
        )  # fmt: skip


def _rows_of(data, users):
    counts = data.indptr[users + 1] - data.indptr[users]
    indptr = np.zeros(users.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    if indptr[-1] == 0:
        return indptr, np.zeros(0, dtype=np.int32)
    starts = np.repeat(data.indptr[users] - indptr[:-1], counts)
    indices = data.indices[np.arange(indptr[-1]) + starts]
    return indptr, indices


def _ideal_dcg(n_relevant, k):
    """DCG@k of a ranking with min(k, n_relevant) relevant items first.

    The discounts are summed up to the largest such count, never up to
    ``k`` itself: memory stays bounded by the data whatever ``k``.
    """
    n_first = np.minimum(n_relevant, k).astype(np.int64)
    longest = int(n_first.max()) if n_first.size else 0
    discounts = 1.0 / np.log2(np.arange(2, longest + 2))
    cumulative = np.concatenate(([0.0], np.cumsum(discounts)))
    return cumulative[n_first]


def _metric_from_stats(stats, name, k):
    """Mean of one metric over the users with test items."""
    scored = stats[stats[:, N_TEST] > 0]
    n_test = scored[:, N_TEST]
    if name == "recall":
        values = scored[:, HITS] / n_test
    elif name == "precision":
        values = scored[:, HITS] / k
    elif name == "hit_rate":
        values = scored[:, HIT_PROBABILITY]
    elif name == "ndcg":
        values = scored[:, DCG] / _ideal_dcg(n_test, k)
    elif name == "map":
        values = scored[:, AP_SUM] / np.minimum(n_test, k)
    else:  # auc: users with no candidate outside the test items are skipped
        values = scored[~np.isnan(scored[:, AUC]), AUC]
    if values.shape[0] == 0:
        raise ValueError(
            "No user has test items (or, for auc, both test items and other candidate "
            "items): the metric is undefined."
        )
    return float(np.mean(values))
