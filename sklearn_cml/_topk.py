"""Nearest items, exactly: squared distances by batches, then a partial sort.

Squared distances come from ``|q|^2 - 2 q.v + |v|^2`` with one BLAS product
per batch of queries, so the memory in use stays at about
``BATCH_ENTRIES`` floats whatever the number of queries.  The ranking
metrics score with the same function (``metrics.embedding_scores``).

``ExactSearch`` is the default search of ``_query.SEARCHES``; the
approximate ones (``_ann``) answer with the contract of ``exact_top_k``,
and fall back on it.  Evaluation never goes through an approximate one
(the metrics rank every item, exactly).
"""

import numpy as np

# Distances computed at once: 4M float32 = 16 MiB per batch.
BATCH_ENTRIES = 1 << 22


def queries_per_batch(n_items):
    """Queries per batch, so that a batch holds about ``BATCH_ENTRIES`` distances."""
    return max(1, BATCH_ENTRIES // max(n_items, 1))


def squared_distances(queries, item_embeddings, item_sq_norms):
    """``|q - v|^2`` of each query and item, ``(n_queries, n_items)``.

    ``item_sq_norms`` is ``|v|^2`` of each item, computed once by the
    caller for all batches.  Rounding can make a distance slightly
    negative.
    """
    distances = queries @ item_embeddings.T
    distances *= -2.0
    distances += item_sq_norms
    distances += np.einsum("ij,ij->i", queries, queries)[:, None]
    return distances


def squared_norms(vectors):
    """``|v|^2`` of each row."""
    return np.einsum("ij,ij->i", vectors, vectors)


def exact_top_k(queries, item_embeddings, k, exclude=None, item_sq_norms=None):
    """The ``k`` items nearest to each query vector, excluded items removed.

    Every distance, then a partial sort.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_components), float32
    item_embeddings : ndarray of shape (n_items, n_components), float32
    k : int
        Number of items to return per query, at most ``n_items``: a larger
        ``k`` returns every item, so that memory is bounded by the data,
        not by the argument.  Queries with fewer eligible items than that
        are padded with index -1 and distance +inf.
    exclude : tuple of ndarray, optional
        ``(indptr, indices)``: CSR structure (one row per query) of the
        items to leave out.
    item_sq_norms : ndarray of shape (n_items,), optional
        ``squared_norms(item_embeddings)``, when the caller keeps it.

    Returns
    -------
    distances : ndarray of shape (n_queries, min(k, n_items)), float32
        Euclidean distances, ascending; equal distances in item order.
    indices : ndarray of shape (n_queries, min(k, n_items)), int64
    """
    n_queries = queries.shape[0]
    n_items = item_embeddings.shape[0]
    n_selected = min(k, n_items)
    distances = np.full((n_queries, n_selected), np.inf, dtype=np.float32)
    indices = np.full((n_queries, n_selected), -1, dtype=np.int64)
    if item_sq_norms is None:
        item_sq_norms = squared_norms(item_embeddings)
    step = queries_per_batch(n_items)

    for start in range(0, n_queries, step):
        stop = min(start + step, n_queries)
        sq_dist = squared_distances(queries[start:stop], item_embeddings, item_sq_norms)
        np.maximum(sq_dist, 0.0, out=sq_dist)
        if exclude is not None:
            _mask_excluded(sq_dist, start, stop, *exclude)

        if n_selected < n_items:
            candidates = np.argpartition(sq_dist, n_selected - 1, axis=1)[:, :n_selected]
        else:
            candidates = np.broadcast_to(np.arange(n_items), sq_dist.shape)
        candidate_dist = np.take_along_axis(sq_dist, candidates, axis=1)
        # Sort by distance, then by item index among equal distances.
        order = np.lexsort((candidates, candidate_dist), axis=1)
        best = np.take_along_axis(candidates, order, axis=1)
        best_dist = np.take_along_axis(candidate_dist, order, axis=1)
        eligible = np.isfinite(best_dist)
        indices[start:stop] = np.where(eligible, best, -1)
        distances[start:stop] = np.sqrt(best_dist)
    return distances, indices


def _mask_excluded(sq_dist, start, stop, indptr, indices):
    """Set the excluded entries of rows ``start:stop`` of a batch to +inf."""
    lo, hi = indptr[start], indptr[stop]
    rows = np.repeat(np.arange(stop - start), np.diff(indptr[start : stop + 1]))
    sq_dist[rows, indices[lo:hi]] = np.inf


class ExactSearch:
    """The exact search, with the interface of a search backend (``_query``).

    It keeps the items' squared norms, so that they are computed once per
    fitted model rather than once per query.
    """

    approximate = False

    @classmethod
    def check_params(cls, search_params):
        """The exact search takes no parameters: ``search_params`` is ignored."""
        return {}

    def __init__(self, item_embeddings, params, seed, n_threads):
        self.item_embeddings = item_embeddings
        self.item_sq_norms = squared_norms(item_embeddings)

    def answers_for(self, item_embeddings, params):
        """Whether this search holds ``item_embeddings``."""
        return item_embeddings is self.item_embeddings

    def top_k(self, queries, k, exclude, params):
        """``(distances, indices)`` as ``exact_top_k`` returns them."""
        return exact_top_k(queries, self.item_embeddings, k, exclude, self.item_sq_norms)
