"""The query side of a fitted model: candidates, exclusions and the search that ranks them.

Every query that ranks the items of a ``_model.FittedModel``
(``recommend``, ``predict``, ``kneighbors_items``) goes through
``nearest_items``, which decides, by one rule (``_ann.graph_answers``),
which of its queries an approximate search answers and which the exact
one does, and keeps memory bounded whatever the number of queries.  The
searches are backends of one interface, registered in ``SEARCHES`` by the
name ``CMLRecommender(search=...)`` gives them (read live: a backend
registered from outside is accepted at once)::

    class Backend:
        approximate = True  # False: every query is answered by it as is

        @classmethod
        def check_params(cls, search_params): ...  # the parameters, checked

        def __init__(self, item_embeddings, params, seed, n_threads): ...
        def answers_for(self, item_embeddings, params): ...  # still valid?
        def top_k(self, queries, k, exclude, params): ...  # as _topk.exact_top_k

An index is built on the first query of a fitted model and kept in its
cache while the vectors and the build parameters stay the same.  An
approximate backend can answer through ``_ann.approximate_top_k``, which
turns any search of the k nearest items into ``exact_top_k``'s contract.
"""

from typing import NamedTuple

import numpy as np
from scipy import sparse

from ._ann import NNDescentIndex, build_notice, graph_answers, rows_of
from ._content import feature_matrix, place_by_neighbors, tfidf_rows, top_k_by_score
from ._features import embed_items
from ._hnsw import HNSWIndex
from ._rng import stream_seed
from ._threads import effective_n_threads, thread_limits
from ._topk import BATCH_ENTRIES, ExactSearch, exact_top_k

# Searches, by the name ``CMLRecommender(search=...)`` gives them.
SEARCHES = {"exact": ExactSearch, "nndescent": NNDescentIndex, "hnsw": HNSWIndex}


class Search(NamedTuple):
    """A search as the estimator's parameters name it (``search_settings``)."""

    name: str
    params: dict  # checked by the backend
    n_threads: int  # that build an index
    verbose: int = 0  # > 0: say so before a slow build


def check_search(name, search_params):
    """The parameters of search ``name``, checked by its backend."""
    if search_params is not None and not isinstance(search_params, dict):
        raise TypeError(f"search_params must be a dict or None, got {search_params!r}.")
    return SEARCHES[name].check_params(search_params)


def search_settings(name, search_params, n_jobs, verbose=0):
    """The ``Search`` of the estimator's parameters, checked."""
    return Search(name, check_search(name, search_params), effective_n_threads(n_jobs),
                  int(verbose))


def search_index(model, search):
    """The backend of ``search`` over ``model``'s item vectors, from the
    model's cache when it still answers for them."""
    backend = SEARCHES[search.name]

    def build():
        notice = build_notice(backend, model.item_embeddings) if backend.approximate else None
        if search.verbose and notice:
            print(notice, flush=True)
        return backend(model.item_embeddings, search.params,
                       stream_seed(model.seed, "search graph"), search.n_threads)

    return model.cached(
        "search index",
        build,
        lambda index: (isinstance(index, backend)
                       and index.answers_for(model.item_embeddings, search.params)),
    )


# -------------------------------------------------------- the nearest items


def nearest_items(model, search, queries, k, exclude=None, excluded_for_all=None):
    """The ``k`` items of ``model`` nearest to each query vector.

    Parameters
    ----------
    model : FittedModel
    search : Search
    queries : ndarray of shape (n_queries, n_components), float32
    k : int
        Items per query, at most the number of candidates (the items not
        in ``excluded_for_all``).
    exclude : tuple of ndarray, optional
        ``(indptr, indices)``: CSR structure (one row per query) of items
        to leave out of each query's answer.
    excluded_for_all : ndarray, optional
        Sorted distinct items left out of every answer.

    Returns
    -------
    distances, indices : as ``_topk.exact_top_k`` returns them
        Of width ``min(k, number of candidates)``.

    A query goes to an approximate backend when ``_ann.graph_answers``
    says so for its width plus every item it excludes; the others, and
    every query of the exact backend, are answered exactly.
    """
    n_queries, n_items = queries.shape[0], model.n_items
    n_shared = 0 if excluded_for_all is None else excluded_for_all.size
    width = min(k, n_items - n_shared)
    index = search_index(model, search)
    n_excluded = np.zeros(n_queries, np.int64) if exclude is None else np.diff(exclude[0])
    approximate = np.zeros(n_queries, bool)
    if index.approximate:
        approximate = graph_answers(width + n_excluded + n_shared, n_items)
    if not approximate.any():
        return _exact(model, index, queries, width, exclude, excluded_for_all)
    distances = np.full((n_queries, width), np.inf, dtype=np.float32)
    indices = np.full((n_queries, width), -1, dtype=np.int64)
    exact_rows = np.flatnonzero(~approximate)
    if exact_rows.size:
        distances[exact_rows], indices[exact_rows] = _exact(
            model, index, queries[exact_rows], width, rows_of(exclude, exact_rows),
            excluded_for_all,
        )  # fmt: skip
    graph_rows = np.flatnonzero(approximate)
    # The graph holds every item, so the items excluded for all join each
    # query's: an entry per query and item, so queries go a chunk at a time.
    step = max(1, BATCH_ENTRIES // max(n_shared, 1))
    for start in range(0, graph_rows.size, step):
        rows = graph_rows[start:start + step]
        excluded = rows_of(exclude, rows)
        if excluded_for_all is not None:
            excluded = _plus_columns(excluded, rows.size, excluded_for_all, n_items)
        distances[rows], indices[rows] = index.top_k(queries[rows], width, excluded,
                                                     search.params)
    return distances, indices


def _exact(model, index, queries, k, exclude, excluded_for_all):
    """The exact answer; with ``excluded_for_all``, among the other items only."""
    if excluded_for_all is None:
        if not index.approximate:  # the exact backend keeps the items' norms
            return index.top_k(queries, k, exclude, {})
        return exact_top_k(queries, model.item_embeddings, k, exclude)
    candidates = np.setdiff1d(np.arange(model.n_items), excluded_for_all, assume_unique=True)
    if exclude is not None:
        exclude = _columns_of(exclude, queries.shape[0], model.n_items, candidates)
    distances, found = exact_top_k(queries, model.item_embeddings[candidates], k, exclude)
    # Positions among the candidates back to items.
    return distances, np.where(found >= 0, candidates[np.maximum(found, 0)], -1)


def _as_csr(structure, n_rows, n_columns):
    indptr, indices = structure
    return sparse.csr_matrix((np.ones(indices.size, np.float32), indices, indptr),
                             shape=(n_rows, n_columns))


def _columns_of(exclude, n_rows, n_items, columns):
    """The CSR structure ``exclude`` restricted to ``columns``, renumbered."""
    restricted = _as_csr(exclude, n_rows, n_items)[:, columns].tocsr()
    restricted.sort_indices()
    return restricted.indptr, restricted.indices


def _plus_columns(exclude, n_rows, columns, n_items):
    """The CSR structure ``exclude`` (None: empty) with ``columns`` added to
    every row."""
    n_columns = columns.size
    added = sparse.csr_matrix(
        (np.ones(n_rows * n_columns, np.float32), np.tile(columns, n_rows),
         np.arange(0, n_rows * n_columns + 1, n_columns)), shape=(n_rows, n_items))
    union = added if exclude is None else (_as_csr(exclude, n_rows, n_items) + added).tocsr()
    return union.indptr, union.indices


# ----------------------------------------------------------- the queries


def recommend(model, search, users, n_items, *, filter_seen=True, items=None,
              filter_items=None, user_items=None):
    """``(distances, items)`` recommended to known ``users`` (rows).

    ``items`` and ``filter_items`` are columns (or None) that limit the
    candidates; ``user_items`` (``Interactions``, one row per user, or
    None) replaces the training matrix as the items ``filter_seen`` leaves
    out.  Items come back as ids when the model has them.
    """
    excluded_for_all = _excluded_columns(model.n_items, items, filter_items)
    current = None if user_items is None else user_items.to_csr()
    n_users = users.shape[0]
    step = users_per_chunk(model.n_components, n_items)
    distances = found = None
    # A chunk of users at a time: beyond the answer, memory holds one
    # chunk's vectors, seen items and search temporaries, whatever n_users.
    for start in range(0, max(n_users, 1), step):
        rows = users[start:start + step]
        seen = _seen_items(model, rows, filter_seen,
                           None if current is None else current[start:start + step])
        chunk_distances, chunk_found = nearest_items(
            model, search, model.user_embeddings[rows], n_items, (seen.indptr, seen.indices),
            excluded_for_all)
        chunk_found = model.labels("item", chunk_found)
        if distances is None:
            distances = np.empty((n_users, chunk_distances.shape[1]), np.float32)
            found = np.empty((n_users, chunk_found.shape[1]), chunk_found.dtype)
        distances[start:start + step], found[start:start + step] = chunk_distances, chunk_found
    return distances, found


def users_per_chunk(n_components, n_items):
    """Users ``recommend`` ranks at once: their vectors and answers take
    about ``BATCH_ENTRIES`` numbers."""
    return max(1, BATCH_ENTRIES // (n_components + 3 * min(n_items, BATCH_ENTRIES)))


def recommend_new_items(model, users, n_items, placed, new_rows, content_weight, max_norm):
    """``(distances, rows)``: the new items (``placed`` vectors, unit TF-IDF
    ``new_rows``) recommended to known ``users``, ranked by distance and,
    with ``content_weight``, content together (``_content.top_k_by_score``)."""
    user_vectors = model.user_embeddings[users]
    if content_weight > 0:
        trained_on = training_matrix(
            model, "the content term (content_weight > 0) needs to profile each user by "
            "their items. Set content_weight=0 to rank the new items by distance alone"
        )
        return top_k_by_score(user_vectors, trained_on[users], placed, new_rows,
                              model.content, content_weight, max_norm, n_items)
    return exact_top_k(user_vectors, placed, n_items)


def predict(model, search, vectors, n_items, data):
    """Items recommended to new users placed at ``vectors``, never their own
    (``data``, their ``Interactions``): ids when the model has them."""
    _, found = nearest_items(model, search, vectors, n_items, (data.indptr, data.indices))
    return model.labels("item", found)


def item_neighbors(model, search, n_neighbors, items=None, vectors=None):
    """``(distances, neighbors)``: the known items nearest to the known
    ``items`` (columns; never themselves) or to new items placed at
    ``vectors``."""
    if vectors is not None:
        distances, neighbors = nearest_items(model, search, vectors, n_neighbors)
    else:
        distances, neighbors = nearest_items(model, search, model.item_embeddings[items],
                                             n_neighbors, _themselves(items))
    return distances, model.labels("item", neighbors)


def similar_users(model, users, n_users):
    """``(distances, neighbors)``: the known users nearest to the known
    ``users`` (rows), never themselves, exactly."""
    vectors = model.user_embeddings
    distances, neighbors = exact_top_k(vectors[users], vectors, n_users, _themselves(users))
    return distances, model.labels("user", neighbors)


def pair_distances(model, users, items):
    """Euclidean distance of each (user row, item column) pair."""
    difference = model.user_embeddings[users] - model.item_embeddings[items]
    return np.sqrt(np.einsum("ij,ij->i", difference, difference))


def place_items(model, features, cold_start_neighbors, max_norm, n_jobs):
    """``(vectors, unit TF-IDF rows)`` of new items given by their
    ``features`` (``FeatureRows``), as the model's cold start places them."""
    new_rows = tfidf_rows(model.content, feature_matrix(features))
    if model.cold_start == "network":
        vectors = np.empty((features.indptr.shape[0] - 1, model.n_components), np.float32)
        n_threads = effective_n_threads(n_jobs)
        with thread_limits(n_threads):
            embed_items(features, model.encoder, np.float32(max_norm), vectors)
        return vectors, new_rows
    return place_by_neighbors(model.content, new_rows, model.item_embeddings,
                              cold_start_neighbors), new_rows


# ---------------------------------------------------------------- helpers


def training_matrix(model, why_and_fix):
    """The training matrix; when the model was loaded from a file saved
    without it, a ValueError that says what needs it and what to do instead."""
    if model.user_items is None:
        raise ValueError(
            f"This model was saved without its training matrix (user_items_), which "
            f"{why_and_fix}; or save the model with include_training_matrix=True."
        )
    return model.user_items


def _seen_items(model, users, filter_seen, user_items):
    """CSR (one row per user) of the items ``filter_seen`` leaves out;
    ``user_items`` (a CSR matrix of those users' rows, or None) replaces
    the training matrix."""
    if not filter_seen:
        return sparse.csr_matrix((users.shape[0], model.n_items), dtype=np.float32)
    if user_items is None:
        return training_matrix(
            model, "filter_seen needs to leave out the items each user has seen. Pass the "
            "users' current items as user_items=, or filter_seen=False"
        )[users]
    return user_items


def _excluded_columns(n_items, items, filter_items):
    """Sorted items that ``items`` (the candidates) and ``filter_items``
    (never recommended) leave out, or None when they leave out none."""
    if items is None and filter_items is None:
        return None
    allowed = np.ones(n_items, bool)
    if items is not None:
        allowed[:] = False
        allowed[items] = True
    if filter_items is not None:
        allowed[filter_items] = False
    excluded = np.flatnonzero(~allowed)
    return excluded if excluded.size else None


def _themselves(rows):
    """CSR structure that excludes, for the query of each of ``rows``, that row."""
    return np.arange(rows.shape[0] + 1, dtype=np.int64), rows.astype(np.int32)
