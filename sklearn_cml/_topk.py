"""Batched nearest-item search with masking of excluded items.

Squared distances come from ``|q|^2 - 2 q.v + |v|^2`` with one BLAS product
per batch of queries, so the memory in use stays at about
``_BATCH_ENTRIES`` floats whatever the number of queries.  Excluded items
(a user's seen items, an item itself) are set to +inf before selection.
Results are deterministic; among the returned items, equal distances are
ordered by item index.
"""

import numpy as np

# Distances computed at once: 4M float32 = 16 MiB per batch.
_BATCH_ENTRIES = 1 << 22


def top_k_nearest(queries, item_embeddings, k, exclude_indptr=None, exclude_indices=None):
    """The ``k`` items nearest to each query vector, excluded items removed.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_components), float32
    item_embeddings : ndarray of shape (n_items, n_components), float32
    k : int
        Number of items to return per query, at most ``n_items``: a larger
        ``k`` returns every item, so that memory is bounded by the data,
        not by the argument.  Queries with fewer eligible items than that
        are padded with index -1 and distance +inf.
    exclude_indptr, exclude_indices : ndarray, optional
        CSR structure (one row per query) of the items to leave out.

    Returns
    -------
    distances : ndarray of shape (n_queries, min(k, n_items)), float32
        Euclidean distances, ascending.
    indices : ndarray of shape (n_queries, min(k, n_items)), int64
    """
    n_queries = queries.shape[0]
    n_items = item_embeddings.shape[0]
    n_selected = min(k, n_items)
    distances = np.full((n_queries, n_selected), np.inf, dtype=np.float32)
    indices = np.full((n_queries, n_selected), -1, dtype=np.int64)
    item_sq_norms = np.einsum("ij,ij->i", item_embeddings, item_embeddings)
    batch_size = max(1, _BATCH_ENTRIES // max(n_items, 1))

    for start in range(0, n_queries, batch_size):
        stop = min(start + batch_size, n_queries)
        batch = queries[start:stop]
        sq_dist = batch @ item_embeddings.T
        sq_dist *= -2.0
        sq_dist += item_sq_norms
        sq_dist += np.einsum("ij,ij->i", batch, batch)[:, None]
        np.maximum(sq_dist, 0.0, out=sq_dist)
        if exclude_indptr is not None:
            _mask_excluded(sq_dist, start, stop, exclude_indptr, exclude_indices)

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
