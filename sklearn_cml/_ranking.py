"""Numba kernel of tie-aware ranking statistics, one user per row of scores.

For each user the ranking is over the *candidate* items: every item except
the excluded ones (typically the user's training items).  Items with equal
scores are in random order, and each statistic is its expected value over
those orders (McSherry and Najork, ECIR 2008), so no item is favoured by its
index.  Only the items scoring at least the k-th best score are sorted; the
k-th best score itself is found by quickselect, so a user costs O(n_items)
plus a sort of about k items.
"""

import math

import numpy as np
from numba import njit, prange

from ._numba_config import FASTMATH, NUMBA_CACHE

# Columns of the statistics array, one row per user.
N_TEST, HITS, HIT_PROBABILITY, DCG, AP_SUM, AUC = range(6)
N_STATS = 6

_CANDIDATE, _TEST, _EXCLUDED = 0, 1, 2


@njit(cache=NUMBA_CACHE)
def kth_largest(values, n, kth):
    """The ``kth`` largest (1-based) of ``values[:n]``, reordering them.

    Quickselect with Hoare partitioning and a median-of-three pivot.
    """
    target = n - kth  # its index in ascending order
    lo = 0
    hi = n - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        a, b, c = values[lo], values[mid], values[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        i = lo
        j = hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            return values[target]
    return values[target]


@njit(cache=NUMBA_CACHE, fastmath=FASTMATH, error_model="numpy")
def _user_stats(scores, flags, buffer, test_items, k, with_ranks, with_auc, out):
    """Expected statistics of one user; ``flags`` marks test and excluded.

    Hits always; DCG and the precision sum (``with_ranks``) and AUC
    (``with_auc``) only when asked: each is another pass over the items.
    """
    n_items = scores.shape[0]
    n_test = test_items.shape[0]
    out[N_TEST] = n_test
    n_candidates = 0
    for item in range(n_items):
        if flags[item] != _EXCLUDED:
            buffer[n_candidates] = scores[item]
            n_candidates += 1
    if n_test == 0 or n_candidates == 0:
        return
    cutoff = min(k, n_candidates)
    threshold = kth_largest(buffer, n_candidates, cutoff)
    n_top = _hits(scores, flags, threshold, cutoff, out)
    if with_ranks:
        _dcg_and_precision_sum(scores, flags, threshold, n_top, cutoff, out)
    if with_auc:
        _auc(scores, flags, test_items, n_candidates - n_test, out)


@njit(cache=NUMBA_CACHE, inline="always")
def _hits(scores, flags, threshold, cutoff, out):
    """Expected hits and hit probability in the top ``cutoff``; returns the
    number of candidates scoring at least ``threshold``, the cutoff's score."""
    # Items above the threshold are all in the top k; the tied ones share
    # the remaining slots.
    n_above = n_tied = test_above = test_tied = 0
    for item in range(scores.shape[0]):
        if flags[item] == _EXCLUDED:
            continue
        if scores[item] > threshold:
            n_above += 1
            test_above += flags[item] == _TEST
        elif scores[item] == threshold:
            n_tied += 1
            test_tied += flags[item] == _TEST
    slots = cutoff - n_above
    out[HITS] = test_above + test_tied * slots / n_tied
    if test_above > 0:
        out[HIT_PROBABILITY] = 1.0
    elif test_tied > 0:
        # 1 - P(no test item among the `slots` drawn from the tied ones).
        miss = 1.0
        for drawn in range(slots):
            miss *= max(0.0, (n_tied - test_tied - drawn) / (n_tied - drawn))
        out[HIT_PROBABILITY] = 1.0 - miss
    return n_above + n_tied


@njit(cache=NUMBA_CACHE, inline="always")
def _dcg_and_precision_sum(scores, flags, threshold, n_top, cutoff, out):
    """Expected DCG and sum of precisions at the test items' ranks, walking
    the groups of equal scores from the best."""
    top_scores = np.empty(n_top, dtype=scores.dtype)
    top_is_test = np.empty(n_top, dtype=np.bool_)
    position = 0
    for item in range(scores.shape[0]):
        if flags[item] != _EXCLUDED and scores[item] >= threshold:
            top_scores[position] = scores[item]
            top_is_test[position] = flags[item] == _TEST
            position += 1
    order = np.argsort(-top_scores)
    dcg = 0.0
    ap_sum = 0.0
    relevant_before = 0
    start = 0  # 0-based index in `order` of the group's first item
    while start < n_top and start < cutoff:
        stop = start + 1
        while stop < n_top and top_scores[order[stop]] == top_scores[order[start]]:
            stop += 1
        size = stop - start
        relevant = 0
        for index in range(start, stop):
            relevant += top_is_test[order[index]]
        if relevant > 0:
            share = relevant / size  # P(a given position holds a test item)
            pair = (relevant - 1) / (size - 1) if size > 1 else 0.0
            for rank in range(start + 1, min(stop, cutoff) + 1):  # 1-based
                dcg += share / math.log2(rank + 1.0)
                expected_precision = (relevant_before + 1.0 + (rank - start - 1) * pair) / rank
                ap_sum += share * expected_precision
        relevant_before += relevant
        start = stop
    out[DCG] = dcg
    out[AP_SUM] = ap_sum


@njit(cache=NUMBA_CACHE, inline="always")
def _auc(scores, flags, test_items, n_negatives, out):
    """AUC: each (test, candidate negative) pair ordered right counts 1, tied 1/2."""
    if n_negatives == 0:
        out[AUC] = np.nan
        return
    n_test = test_items.shape[0]
    test_scores = np.sort(scores[test_items])
    misordered = 0.0
    for item in range(scores.shape[0]):
        if flags[item] == _CANDIDATE:
            below = np.searchsorted(test_scores, scores[item], side="left")
            not_above = np.searchsorted(test_scores, scores[item], side="right")
            misordered += below + 0.5 * (not_above - below)
    out[AUC] = 1.0 - misordered / (n_test * n_negatives)


@njit(cache=NUMBA_CACHE, parallel=True)
def ranking_stats(
    scores, test_indptr, test_indices, exclude_indptr, exclude_indices, k, with_ranks,
    with_auc, n_blocks, out
):
    """Statistics of the user of each row of ``scores`` (``_user_stats``).

    ``test_*`` and ``exclude_*`` are CSR structures with one row per row of
    ``scores`` (sorted, disjoint per row); ``out`` is an (n_rows, N_STATS)
    float64 array.  Rows
    are cut into ``n_blocks`` blocks run in parallel, each with its own
    scratch arrays; each row's result depends only on that row.
    """
    n_rows, n_items = scores.shape
    for block in prange(n_blocks):
        flags = np.zeros(n_items, dtype=np.int8)
        buffer = np.empty(n_items, dtype=scores.dtype)
        for row in range(n_rows * block // n_blocks, n_rows * (block + 1) // n_blocks):
            test = test_indices[test_indptr[row] : test_indptr[row + 1]]
            excluded = exclude_indices[exclude_indptr[row] : exclude_indptr[row + 1]]
            for item in test:
                flags[item] = _TEST
            for item in excluded:
                flags[item] = _EXCLUDED
            out[row, :] = 0.0
            _user_stats(scores[row], flags, buffer, test, k, with_ranks, with_auc, out[row])
            for item in test:
                flags[item] = _CANDIDATE
            for item in excluded:
                flags[item] = _CANDIDATE
