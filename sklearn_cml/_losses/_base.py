"""What a loss provides to the solvers: the weights of a row of squared distances.

A solver hands a loss one user's *row*: the squared distances from the user
to some of the user's items (the positives, each with its pair's weight)
and to items drawn from the sampler (the negatives, each with how many items
of the catalogue its draw stands for).  The loss's weights function returns
``dL/dD`` for every entry and the loss value; nothing else.  The solver
does the rest once for every loss: drawing the negatives, telling which
draws are the user's own items (their distance arrives as ``+inf``),
turning the weights into gradients (``dD/du = 2 (u - v)``), the
optimiser's step and the projection into the ball.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class LossRow(NamedTuple):
    """One user's row, as a loss's weights function reads and writes it."""

    positive_distances: np.ndarray  # float32 (n_pairs,): |u - p_b|^2
    # float32 (n_pairs,): each pair's weight (mean 1 over the training
    # pairs; all 1 without weights), which multiplies the pair's term.
    pair_weights: np.ndarray
    # float32 (n_negatives,): in, |u - v_n|^2, +inf for the user's own items
    # (never negatives); out, the weights dL/dD_n.
    distances: np.ndarray
    # float32 (n_negatives,): how many items of the catalogue a draw stands
    # for, n_items / (n_draws * q_n) for draws of probability q_n: summed
    # over the draws they estimate sums over the catalogue (the hinge's
    # rank, the softmax's normaliser).
    counts: np.ndarray
    log_counts: np.ndarray  # float32 (n_negatives,): their logarithms
    n_user_items: int  # the user's number of training items
    n_items: int  # the catalogue's


class RowScratch(NamedTuple):
    """Buffers a weights function may overwrite, one entry per negative."""

    values: np.ndarray  # float32
    bits: np.ndarray  # int32


def _no_causes(config):
    return []


@dataclass(frozen=True)
class Loss:
    """An embedding loss: its weights function and its hyperparameters.

    Attributes
    ----------
    name : str
        The value of ``CMLRecommender(loss=...)``.
    parameters_type : type
        The NamedTuple class of the hyperparameters the weights function
        reads; it selects the function at compile time.
    parameters : callable
        ``parameters(config, reference_count, shared_negatives)`` returns a
        ``parameters_type`` from the ``_config.Config``, the median number
        of items per training user, and whether a row's negatives are
        shared by many pairs (a pool) rather than drawn for its pairs
        alone.
    weights : numba function
        ``weights(parameters, row, pair_coef, scratch)``, as
        ``_losses.weigh_row`` documents.
    group_size : int, default=1
        Positives of one user that share one row of draws in the per-pair
        solver (which draws ``group_size * n_negatives`` items per row).
    overflow_causes : callable, default: none
        ``overflow_causes(config)``: phrases naming the loss's
        hyperparameters that are far enough off their scale to overflow
        float32, for the message of a training breakdown.
    """

    name: str
    parameters_type: type
    parameters: Callable
    weights: Callable
    group_size: int = 1
    overflow_causes: Callable = _no_causes
