"""Growing a fitted model with new users and new items (``partial_fit``).

``partial_fit`` may be given more rows and columns than the model has:
the first are its users and items, the others new.  An encoded matrix
names them instead: its columns must start with the model's items, in
order (what a grown ``InteractionEncoder`` gives), and its rows are
matched to the model's users by id.  This module turns such an ``X`` into
the training matrix in the grown model's order (``match_ids``,
``move_rows``), and places the new items and users in the optimiser's
state before training goes on (``grow``):

- a new item goes where its features put it (the model's cold start),
  else to the mean of the known users who took it, else to a fresh random
  vector, as ``_engine.initial_state`` draws them;
- a new user is then folded in against every item, as ``transform``
  places users.

Known users and items keep their rows and vectors: growing only appends.
"""

import dataclasses
from typing import NamedTuple

import numpy as np

from . import _engine
from ._features import FeatureRows
from ._ids import IdLookup, append_ids
from ._interactions import Interactions
from ._rng import stream_seed
from ._steps import clip_rows


class FoldInBasis(NamedTuple):
    """What fold-in reads of a model, taken from a training state being grown."""

    user_embeddings: np.ndarray  # the known users: an empty row goes to their mean
    item_embeddings: np.ndarray  # every item, new ones placed
    item_counts: np.ndarray  # pairs per item, by whose popularity negatives are drawn
    seed: int
    median_user_count: float


def check_not_shrunk(n_users, n_items, fitted_users, fitted_items, estimator="CMLRecommender"):
    """Refuse an ``X`` with fewer rows or columns than the model has."""
    if n_users < fitted_users or n_items < fitted_items:
        # Fewer columns are first said in scikit-learn's words, which its
        # estimator checks look for.
        columns = (f"X has {n_items} features, but {estimator} is expecting {fitted_items} "
                   "features as input. " if n_items < fitted_items else "")
        raise ValueError(
            f"{columns}X has shape ({n_users}, {n_items}) but the model was fitted on "
            f"({fitted_users}, {fitted_items}). partial_fit continues training on the same "
            "users and items and adds new ones after them: give X at least the model's "
            f"{fitted_users} rows and {fitted_items} columns, its own users and items first "
            "in their order (extra rows and columns are new users and items). Use fit to "
            "start again, or transform to place users without training."
        )


def match_ids(fitted_user_ids, fitted_item_ids, user_ids, item_ids):
    """``(rows, grown_user_ids, grown_item_ids)`` of an encoded ``X``.

    ``rows[r]`` is the model's row of X's row ``r``: its own row for a
    known user, a new row after the model's for a new one (in X's order).
    X's items must start with the model's, in order.  The ids are checked
    for repeats beforehand (``_estimator._ids_of``).
    """
    n_items = fitted_item_ids.shape[0]
    if item_ids.shape[0] < n_items or not np.array_equal(item_ids[:n_items], fitted_item_ids):
        missing = IdLookup(item_ids).find(fitted_item_ids) < 0
        what = (f"lacks {int(missing.sum())} of the model's items, such as "
                f"{fitted_item_ids[missing][0]!r}" if missing.any()
                else "has the model's items in another order")
        raise ValueError(
            f"X's columns must start with the items the model was fitted on, in their "
            f"order, but X {what}. Encode tables with the model's InteractionEncoder, grown "
            "with InteractionEncoder.partial_fit (RecommenderPipeline.partial_fit does both)."
        )
    rows = IdLookup(fitted_user_ids).find(user_ids)
    new = rows < 0
    n_users = fitted_user_ids.shape[0]
    rows[new] = n_users + np.arange(int(new.sum()))
    return rows, append_ids(fitted_user_ids, user_ids[new]), item_ids


def move_rows(data, weights, rows, n_users):
    """``data``'s row ``r`` moved to row ``rows[r]`` of a matrix of ``n_users``
    rows (the others empty), and ``weights`` (aligned with ``data.indices``)
    moved with its pairs."""
    counts = np.diff(data.indptr)
    new_counts = np.zeros(n_users, np.int64)
    new_counts[rows] = counts
    indptr = np.concatenate(([0], np.cumsum(new_counts))).astype(np.int64)
    row_of_pair = np.repeat(np.arange(data.n_users), counts)
    destination = (indptr[rows[row_of_pair]] + np.arange(data.n_interactions)
                   - data.indptr[row_of_pair])
    indices = np.empty_like(data.indices)
    indices[destination] = data.indices
    moved_weights = np.empty_like(weights)
    moved_weights[destination] = weights
    return Interactions(indptr, indices, data.n_items), moved_weights


def feature_rows_from(features, start):
    """The rows of ``features`` (``FeatureRows``) from item ``start`` on."""
    first = features.indptr[start]
    return FeatureRows(features.indptr[start:] - first, features.indices[first:],
                       features.values[first:], features.n_features)


def grow(state, data, config, item_vectors=None, weights=None):
    """A copy of ``state`` with rows for the new users and items of ``data``.

    ``data`` is the training matrix in the grown model's order: its first
    rows and columns are the state's users and items.  ``item_vectors``
    places the new items (from their features); without it, see
    ``place_new_items``.  New users are then folded in against every item,
    their pairs weighted by ``weights`` (aligned with ``data.indices``;
    None: all 1).  New AdaGrad sums start at ``INITIAL_GRAD_SQ``; the
    running means, if any, take the new vectors as their rows.  The
    state's own arrays are not changed.
    """
    n_users, n_items = state.user_embeddings.shape[0], state.item_embeddings.shape[0]
    grown = dataclasses.replace(state)
    if data.n_items > n_items:
        if item_vectors is None:
            item_vectors = place_new_items(state, data, config)
        _append(grown, "item", item_vectors)
    if data.n_users > n_users:
        start = data.indptr[n_users]
        new_rows = Interactions(data.indptr[n_users:] - start, data.indices[start:],
                                data.n_items)
        basis = FoldInBasis(state.user_embeddings, grown.item_embeddings,
                            np.bincount(data.indices, minlength=data.n_items),
                            state.seed, state.median_user_count)
        new_weights = None if weights is None else weights[start:]
        _append(grown, "user", _engine.fold_in(basis, new_rows, config, new_weights))
    return grown


def place_new_items(state, data, config):
    """Vectors of the new items of ``data`` (its columns past the state's).

    Each goes to the mean of the vectors of the known users who took it,
    clipped into the ball; one that no known user took, to a fresh random
    vector drawn as ``_engine.initial_state`` draws them, from a stream of
    the model's seed and epoch count (so a run is reproducible).
    """
    n_users, n_items = state.user_embeddings.shape[0], state.item_embeddings.shape[0]
    known_users = data.to_csr()[:n_users, n_items:].T.tocsr()
    takers = np.diff(known_users.indptr)
    vectors = np.asarray(known_users @ state.user_embeddings, dtype=np.float32)
    taken = takers > 0
    vectors[taken] /= takers[taken, None].astype(np.float32)
    clip_rows(vectors, config.max_norm)
    if not taken.all():
        rng = np.random.default_rng(stream_seed(state.seed, "new vectors", state.n_iter))
        vectors[~taken] = _engine.initial_vectors(rng, int((~taken).sum()), config)
    return vectors


def _append(state, kind, vectors):
    """Append rows for new users (``kind="user"``) or items to ``state``, in place."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    embeddings, grad_sq, average = (f"{kind}_embeddings", f"{kind}_grad_sq", f"{kind}_average")
    setattr(state, embeddings, np.concatenate((getattr(state, embeddings), vectors)))
    new_sums = np.full(vectors.shape[0], _engine.INITIAL_GRAD_SQ, np.float32)
    setattr(state, grad_sq, np.concatenate((getattr(state, grad_sq), new_sums)))
    if getattr(state, average) is not None:
        setattr(state, average, np.concatenate((getattr(state, average), vectors)))
