"""The fitted model: what a trained CMLRecommender answers queries with.

A ``FittedModel`` holds the vectors (the averaged ones where averaging is
on), the ids, the training matrix that ``recommend`` filters by, what
fold-in needs (the items' training counts, the seed, the training
statistics), the content model of item features, and the history of
training that the estimator publishes.  It holds nothing of the
optimiser (``_engine.TrainingState``), so that ``fit`` makes one,
``_persistence`` converts one to and from arrays, and the query side
(``_query``) reads one, without any of them reaching into the estimator.

Its caches (the id lookups, the search index, which for the exact search
keeps the items' squared norms) are rebuilt on first use, and never
pickled or saved.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ._ids import IdLookup


@dataclass(frozen=True)
class History:
    """How training went: what the estimator publishes besides the vectors."""

    n_iter: int = 0  # epochs run (fit and partial_fit)
    loss_curve: list = field(default_factory=list)  # mean embedding loss per pair, by epoch
    feature_loss_curve: list = field(default_factory=list)  # mean feature loss per item
    validation_scores: list = field(default_factory=list)  # early stopping's recalls
    best_epoch: int = None  # the epoch whose vectors were kept, with early stopping
    resolved: dict = field(default_factory=dict)  # what "auto" parameters resolved to


@dataclass(eq=False)
class FittedModel:
    """Everything a fitted model answers with, and nothing it trains with."""

    user_embeddings: np.ndarray  # float32 (n_users, K)
    item_embeddings: np.ndarray  # float32 (n_items, K)
    # int64 (n_items,): training pairs of each item, by whose popularity
    # fold-in draws negatives.
    item_counts: np.ndarray
    # The training interactions (ones), which recommend filters out; None in
    # a model loaded from a file saved without them.
    user_items: sp.csr_matrix
    seed: int  # the root of every random stream (``_rng.stream_seed``)
    median_user_count: float  # items of the median training user
    # Mean of each interaction_weight transform of the training values:
    # fold-in divides new users' values by it (``_weights.fold_in_weights``).
    value_scales: dict
    history: History = field(default_factory=History)
    user_ids: np.ndarray = None  # the original id of each row, from an encoded table
    item_ids: np.ndarray = None  # and of each column
    item_names: np.ndarray = None  # the columns' names, from a DataFrame
    # With item features: how items are placed from them ("neighbors" or
    # "network"), the TF-IDF content model (``_content.ItemContent``) and,
    # for "network", the feature MLP (``_features.Encoder``).
    cold_start: str = None
    content: object = None
    encoder: object = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_users(self):
        return self.user_embeddings.shape[0]

    @property
    def n_items(self):
        return self.item_embeddings.shape[0]

    @property
    def n_components(self):
        return self.item_embeddings.shape[1]

    @property
    def n_item_features(self):
        """Item-feature columns seen in fit; None without item features."""
        return None if self.content is None else self.content.tfidf.n_features_in_

    def cached(self, key, make, still_valid=None):
        """``make()``, computed on first use and kept (see the module
        docstring); made anew when ``still_valid(kept)`` says it is not."""
        if key not in self._cache or (still_valid and not still_valid(self._cache[key])):
            self._cache[key] = make()
        return self._cache[key]

    def lookup(self, kind):
        """The ``IdLookup`` of the user (``kind="user"``) or item ids."""
        ids = self.user_ids if kind == "user" else self.item_ids
        return self.cached(f"{kind} lookup", lambda: IdLookup(ids))

    def labels(self, kind, positions):
        """Ids of ``positions`` (rows for ``kind="user"``, columns for
        ``"item"``; -1: none) when fitted on an encoded table, else the
        positions themselves."""
        ids = self.user_ids if kind == "user" else self.item_ids
        return positions if ids is None else self.lookup(kind).labels(positions)

    def __getstate__(self):
        # The caches are rebuilt on first use.
        return {**self.__dict__, "_cache": {}}
