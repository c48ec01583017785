"""Approximate nearest items: an index of the item vectors, with the exact contract.

``search="nndescent"`` answers ``recommend``, ``predict`` and
``kneighbors_items`` from a k-nearest-neighbour graph of the item vectors
(pynndescent, Euclidean: CML's distance needs no transform), built on
first use and kept until the vectors change.  The contract is that of
``_topk.exact_top_k``: excluded items never come back, rows are sorted by
distance then item, and a row is padded with -1 only when fewer items are
eligible.  The graph knows nothing of exclusions, so each query asks for
``k`` plus its number of excluded items and drops them
(``approximate_top_k``); a query whose approximate list comes up short is
answered by the exact search instead.  Which queries a graph answers at all
is one rule, ``graph_answers``, that the query side (``_query``) applies.
"""

from importlib.util import find_spec
from numbers import Integral, Real

import numpy as np

from ._threads import thread_limits
from ._topk import BATCH_ENTRIES, exact_top_k

# A query that would ask the graph for more than this share of the items
# goes to the exact search: a graph query costs about linearly in the items
# asked for, an exact one in the catalogue's size, and they cost the same at
# 1.5% to 3% of the items (MovieLens-1M, 3,706 items; 100,000 synthetic items).
EXACT_SHARE = 0.02

# What installs every approximate search.
INSTALL_HINT = 'pip install "sklearn-cml[ann]"'

# Builds of more entries (items x dimensions) than this take over a second
# or two on two cores (hnswlib, 10,000 x 100: about 1.5 s): ``verbose`` says
# so before they start.
SLOW_BUILD_ENTRIES = 1_000_000


def build_notice(backend, item_embeddings):
    """The line ``verbose`` prints before ``backend`` builds an index of
    ``item_embeddings``, or None for a build too quick to mention."""
    n_items, n_components = item_embeddings.shape
    compiles = getattr(backend, "COMPILES", False)
    if not compiles and n_items * n_components < SLOW_BUILD_ENTRIES:
        return None
    name = getattr(backend, "NAME", backend.__name__)
    line = (f"Building the {name} index of {n_items} items x {n_components} dimensions "
            "(once per fitted model)")
    if compiles:
        line += ("; pynndescent compiles Numba functions first, tens of seconds in every "
                 "process: search='hnsw' needs no compilation")
    return line + "..."


def graph_width(n_asked):
    """Items a graph is asked for, for ``n_asked``: the power of two at or
    above it, so that queries share few calls at little over-asking."""
    return 2 ** np.ceil(np.log2(np.maximum(n_asked, 1))).astype(np.int64)


def graph_answers(n_asked, n_items):
    """Whether an approximate search answers a query that needs ``n_asked``
    items (its answer plus the items it excludes), else the exact search,
    cheaper for a wide query: the one rule between the two."""
    return graph_width(n_asked) <= EXACT_SHARE * n_items


class NNDescentIndex:
    """A pynndescent graph of ``item_embeddings``, queried as ``exact_top_k``.

    Parameters
    ----------
    item_embeddings : ndarray of shape (n_items, n_components), float32
        Kept by reference: the index answers for these vectors only.
    params : dict
        ``check_params``'s output: ``n_neighbors`` (the graph's degree) and
        ``epsilon`` (a query setting, passed again to ``top_k``).
    seed : int
        Seeds the random projection trees that start the graph.
    n_threads : int
        Threads that build the graph (queries run on one).
    """

    approximate = True
    # The graph's degree and the query's search breadth (pynndescent's
    # defaults), measured on MovieLens-1M in docs/performance.md.
    DEFAULT_PARAMS = {"n_neighbors": 30, "epsilon": 0.1}
    # Parameters of the graph itself: changing one builds a new graph.
    BUILD_PARAMS = ("n_neighbors",)
    NAME = "pynndescent"
    # Not all of pynndescent's Numba functions are cached on disk: every
    # process compiles them again (docs/performance.md, "Approximate top-k").
    COMPILES = True

    @classmethod
    def check_params(cls, search_params):
        """``search_params`` merged into the defaults; errors that name the fix.

        Raises ImportError when pynndescent is not installed, so that
        ``fit`` fails at once rather than after training.
        """
        params = dict(cls.DEFAULT_PARAMS)
        unknown = set(search_params or ()) - set(params)
        if unknown:
            raise ValueError(
                f"search_params has unknown keys {sorted(unknown)}; search='nndescent' takes "
                f"{sorted(params)}."
            )
        params.update(search_params or {})
        degree, epsilon = params["n_neighbors"], params["epsilon"]
        if isinstance(degree, bool) or not isinstance(degree, Integral) or degree < 2:
            raise ValueError(
                f"search_params['n_neighbors'] must be an int >= 2, got {degree!r}.")
        if isinstance(epsilon, bool) or not isinstance(epsilon, Real) or not 0 <= epsilon <= 10:
            raise ValueError(
                f"search_params['epsilon'] must be a number in [0, 10], got {epsilon!r}: "
                "larger searches more of the graph, slower and more accurate."
            )
        if find_spec("pynndescent") is None:
            raise ImportError(f"search='nndescent' needs pynndescent: {INSTALL_HINT} "
                              "(or pip install pynndescent).")
        return params

    def __init__(self, item_embeddings, params, seed, n_threads):
        import pynndescent

        self.item_embeddings = item_embeddings
        self.build_params = {name: params[name] for name in self.BUILD_PARAMS}
        # A graph cannot be wider than the catalogue.
        degree = max(1, min(params["n_neighbors"], item_embeddings.shape[0] - 1))
        with thread_limits(n_threads):
            self.graph = pynndescent.NNDescent(
                item_embeddings, metric="euclidean", n_neighbors=degree,
                random_state=seed, n_jobs=n_threads,
            )  # fmt: skip
            self.graph.prepare()

    def answers_for(self, item_embeddings, params):
        """Whether this index holds ``item_embeddings`` with these build parameters."""
        return item_embeddings is self.item_embeddings and all(
            params[name] == value for name, value in self.build_params.items())

    def top_k(self, queries, k, exclude, params):
        """``(distances, indices)`` as ``exact_top_k`` returns them."""

        def search(rows, width):
            return self.graph.query(queries[rows], k=width, epsilon=params["epsilon"])

        return approximate_top_k(search, queries, self.item_embeddings, k, exclude)


def approximate_top_k(search, queries, item_embeddings, k, exclude):
    """``exact_top_k``'s answer from an approximate ``search(rows, width)``.

    ``search`` returns, for the queries of ``rows``, ``width`` item indices
    (-1 where it found fewer) and their distances, nearest first; it knows
    nothing of ``exclude``.  So each query asks for ``k`` plus its excluded
    items (rounded up by ``graph_width``) and drops them; a query whose
    answer comes up short is answered by ``exact_top_k``.
    """
    n_queries, n_items = queries.shape[0], item_embeddings.shape[0]
    n_selected = min(k, n_items)
    distances = np.full((n_queries, n_selected), np.inf, dtype=np.float32)
    indices = np.full((n_queries, n_selected), -1, dtype=np.int64)
    if n_queries == 0:
        return distances, indices
    n_excluded = np.zeros(n_queries, np.int64) if exclude is None else np.diff(exclude[0])
    widths = graph_width(n_selected + n_excluded)
    short = []
    for width in np.unique(widths):
        same_width = np.flatnonzero(widths == width)
        # Chunks of about BATCH_ENTRIES answers, as the exact search's batches.
        step = max(1, BATCH_ENTRIES // int(width))
        for start in range(0, same_width.size, step):
            rows = same_width[start : start + step]
            found, found_dist = search(rows, int(width))
            best, best_dist = _drop_excluded(found, found_dist, rows, exclude, n_items,
                                             n_selected)
            eligible = np.minimum(n_selected, n_items - n_excluded[rows])
            complete = np.isfinite(best_dist).sum(axis=1) >= eligible
            indices[rows[complete]] = best[complete]
            distances[rows[complete]] = best_dist[complete]
            short.append(rows[~complete])
    fallback = np.concatenate(short)
    if fallback.size:
        distances[fallback], indices[fallback] = exact_top_k(
            queries[fallback], item_embeddings, k, rows_of(exclude, fallback)
        )
    return distances, indices


def _drop_excluded(found, found_dist, rows, exclude, n_items, n_selected):
    """The ``n_selected`` nearest of the graph's answers that are not excluded,
    sorted by distance then item (-1 and inf where too few remain)."""
    found = found.astype(np.int64, copy=False)
    found_dist = found_dist.astype(np.float32, copy=True)
    found_dist[found < 0] = np.inf
    if exclude is not None:
        indptr, excluded = rows_of(exclude, rows)
        local = np.repeat(np.arange(rows.size, dtype=np.int64), np.diff(indptr))
        excluded_keys = np.unique(local * n_items + excluded)
        found_keys = np.arange(rows.size, dtype=np.int64)[:, None] * n_items + found
        found_dist[np.isin(found_keys, excluded_keys)] = np.inf
    order = np.lexsort((found, found_dist), axis=1)[:, :n_selected]
    best = np.take_along_axis(found, order, axis=1)
    best_dist = np.take_along_axis(found_dist, order, axis=1)
    return np.where(np.isfinite(best_dist), best, -1), best_dist


def rows_of(exclude, rows):
    """The CSR structure ``exclude`` restricted to ``rows``, or None."""
    if exclude is None:
        return None
    indptr, excluded = exclude
    counts = indptr[rows + 1] - indptr[rows]
    sub_indptr = np.zeros(rows.size + 1, np.int64)
    np.cumsum(counts, out=sub_indptr[1:])
    return sub_indptr, excluded[_positions(indptr[rows], counts)]


def _positions(starts, counts):
    """Concatenated ``arange(start, start + count)`` of each row, without a loop."""
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(ends[-1] if ends.size else 0)
