"""``search="hnsw"``: approximate nearest items from an hnswlib graph.

hnswlib is compiled ahead of time (C++), so a new process answers its first
query after the build alone, where pynndescent compiles Numba functions
that it does not all cache on disk (tens of seconds in every process).  The
exclusions, sorting, padding and fallback are ``_ann.approximate_top_k``'s,
as for ``search="nndescent"``.
"""

from importlib.util import find_spec
from numbers import Integral

import numpy as np

from ._ann import INSTALL_HINT, approximate_top_k

# hnswlib's own names: the graph's degree ("M"), the breadth of the search
# that builds it and that of a query (raised to the items asked for).
# Measured in docs/performance.md, "Approximate top-k".
DEFAULT_PARAMS = {"M": 16, "ef_construction": 100, "ef": 64}
LIMITS = {"M": (2, 1024), "ef_construction": (1, 1 << 20), "ef": (1, 1 << 20)}
WHAT = {
    "M": "the graph's degree: larger is slower to build and finds more",
    "ef_construction": "the breadth of the build's search: larger is slower and finds more",
    "ef": "the breadth of a query's search: larger is slower and finds more",
}


class HNSWIndex:
    """An hnswlib graph of ``item_embeddings``, queried as ``exact_top_k``.

    Parameters
    ----------
    item_embeddings : ndarray of shape (n_items, n_components), float32
        Kept by reference: the index answers for these vectors only.
    params : dict
        ``check_params``'s output: ``M`` and ``ef_construction`` (the
        graph), ``ef`` (a query setting, passed again to ``top_k``).
    seed : int
        Seeds the levels of the items in the graph.
    n_threads : int
        Threads that build the graph (queries run on one).  With one
        thread the same seed builds the same graph; with more, the order in
        which items join it varies from run to run.
    """

    approximate = True
    DEFAULT_PARAMS = DEFAULT_PARAMS
    BUILD_PARAMS = ("M", "ef_construction")
    NAME = "hnswlib"

    @classmethod
    def check_params(cls, search_params):
        """``search_params`` merged into the defaults; errors that name the fix.

        Raises ImportError when hnswlib is not installed, so that ``fit``
        fails at once rather than after training.
        """
        params = dict(DEFAULT_PARAMS)
        unknown = set(search_params or ()) - set(params)
        if unknown:
            raise ValueError(
                f"search_params has unknown keys {sorted(unknown)}; search='hnsw' takes "
                f"{sorted(params)}."
            )
        params.update(search_params or {})
        for name, (low, high) in LIMITS.items():
            value = params[name]
            if isinstance(value, bool) or not isinstance(value, Integral) or not (
                    low <= value <= high):
                raise ValueError(
                    f"search_params[{name!r}] must be an int in [{low}, {high}], got "
                    f"{value!r}: {WHAT[name]}.")
        if find_spec("hnswlib") is None:
            raise ImportError(f"search='hnsw' needs hnswlib: {INSTALL_HINT}.")
        return params

    def __init__(self, item_embeddings, params, seed, n_threads):
        import hnswlib

        self.item_embeddings = item_embeddings
        self.build_params = {name: params[name] for name in self.BUILD_PARAMS}
        n_items, n_components = item_embeddings.shape
        self.graph = hnswlib.Index(space="l2", dim=n_components)
        self.graph.init_index(max_elements=max(n_items, 1), M=params["M"],
                              ef_construction=params["ef_construction"],
                              random_seed=int(seed) % 2**31)
        if n_items:
            self.graph.add_items(item_embeddings, np.arange(n_items), num_threads=n_threads)

    def answers_for(self, item_embeddings, params):
        """Whether this index holds ``item_embeddings`` with these build parameters."""
        return item_embeddings is self.item_embeddings and all(
            params[name] == value for name, value in self.build_params.items())

    def top_k(self, queries, k, exclude, params):
        """``(distances, indices)`` as ``exact_top_k`` returns them."""
        return approximate_top_k(lambda rows, width: self.search(queries[rows], width, params),
                                 queries, self.item_embeddings, k, exclude)

    def search(self, queries, width, params):
        """``width`` items per query (-1 where too few are found) and their
        Euclidean distances, nearest first."""
        n_items = self.item_embeddings.shape[0]
        asked = min(width, n_items)
        found = np.full((queries.shape[0], width), -1, np.int64)
        distances = np.full((queries.shape[0], width), np.inf, np.float32)
        # hnswlib searches max(ef, k) candidates.
        self.graph.set_ef(max(params["ef"], asked))
        try:
            labels, squared = self.graph.knn_query(queries, k=asked, num_threads=1)
        except RuntimeError:  # fewer than ``asked`` found: the exact search answers
            return found, distances
        found[:, :asked] = labels
        # hnswlib returns squared distances; the exact search, their root.
        distances[:, :asked] = np.sqrt(np.maximum(squared, 0))
        return found, distances
