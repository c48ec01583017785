"""The small internal holdout that ``fit`` measures itself on.

``fit`` holds out one interaction of each of a few users and trains on the
rest: ``temperature="auto"`` (the default) measures the temperature on
those pairs after its first epochs (``_temperature``), and
``early_stopping="auto"`` watches their recall to tell when training has
stopped paying (``_engine.PlateauStopping``).  The holdout is kept small,
so that the model loses next to nothing to it: at most ``MAX_USERS``
pairs and ``MAX_SHARE`` of the interactions, drawn from users with at
least ``MIN_USER_ITEMS`` (so that each keeps two or more to learn from).
Below ``MIN_PAIRS`` pairs it is too coarse to measure on: the temperature
stays at its start and the fit runs its ``n_epochs``.
"""

import numpy as np

from ._interactions import Interactions
from ._rng import stream_seed

MAX_USERS = 2000
MAX_SHARE = 0.02
MIN_USER_ITEMS = 3
MIN_PAIRS = 200
# Training is done when the mean recall of the last ``n_iter_no_change``
# validations gains less than this (relative) on the ``n_iter_no_change``
# before: 0.25% per 5 epochs (docs/ref_parameters.md, "When fit stops").
PLATEAU_GAIN = 0.0025


def holdout_size(data):
    """Pairs the holdout of ``data`` (``Interactions``) would take; 0 if too few."""
    n_eligible = int(np.count_nonzero(np.diff(data.indptr) >= MIN_USER_ITEMS))
    size = min(n_eligible, MAX_USERS, int(MAX_SHARE * data.n_interactions))
    return size if size >= MIN_PAIRS else 0


def split_holdout(data, weights, seed):
    """``(train, holdout, train_weights)``: one pair of each of a few users held out.

    ``weights`` (aligned with ``data.indices``, or None) are cut to the
    training pairs.  ``seed`` (an int) picks the users and their pair.
    Returns None when ``holdout_size(data)`` is 0.
    """
    size = holdout_size(data)
    if size == 0:
        return None
    rng = np.random.default_rng(stream_seed(seed, "holdout"))
    counts = np.diff(data.indptr)
    users = np.sort(rng.choice(np.flatnonzero(counts >= MIN_USER_ITEMS), size, replace=False))
    positions = data.indptr[users] + rng.integers(0, counts[users])
    kept = np.ones(data.n_interactions, dtype=bool)
    kept[positions] = False

    held_per_user = np.zeros(data.n_users, dtype=np.int64)
    held_per_user[users] = 1
    train_indptr = np.concatenate(([0], np.cumsum(counts - held_per_user)))
    holdout_indptr = np.concatenate(([0], np.cumsum(held_per_user)))
    train = Interactions(train_indptr, np.ascontiguousarray(data.indices[kept]), data.n_items)
    holdout = Interactions(holdout_indptr, np.ascontiguousarray(data.indices[positions]),
                           data.n_items)
    train_weights = None if weights is None else np.ascontiguousarray(weights[kept])
    return train, holdout, train_weights
