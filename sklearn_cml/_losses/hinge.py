"""The paper's loss: the triplet hinge on sampled impostors, WARP-weighted.

For each positive ``p`` of a row, the *impostors* are the negatives closer
to the user than ``d(u, p) + margin`` (never the user's own items, which
arrive at ``+inf``).  With ``M`` impostors among ``N`` draws, the
positive's rank is estimated as ``floor(sum_n c_n)`` over the impostors,
``c_n`` being how many items of the catalogue draw ``n`` stands for
(``n_items * M / N`` for uniform draws: the rank estimate uses the number
of draws through them), and the pair's hinge is weighted by
``w = log(rank + 1)`` (WARP; 1 without ``rank_weight``) times the pair's
weight.

Which impostors are pushed depends on where the negatives come from:

- drawn for the pair alone (the per-pair solver, the paper's algorithm):
  the hardest impostor, the closest, with weight ``w``;
- a pool shared by many pairs (the block solver): every impostor, each with
  ``w / M``.  Pushing only the hardest one ranked far worse with a shared
  pool (validation Recall@50 0.237 against 0.413 on MovieLens-1M;
  docs/algorithm.md).
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .._numba_config import FASTMATH, NUMBA_CACHE
from .._steps import FLOAT32_HEADROOM
from ._base import Loss


class HingeParameters(NamedTuple):
    margin: np.float32
    use_rank_weight: bool
    hardest_only: bool  # push the hardest impostor only (negatives drawn per pair)


def _parameters(config, reference_count, shared_negatives):
    return HingeParameters(np.float32(config.margin), bool(config.rank_weight),
                           not shared_negatives)


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def rank_weight(parameters, rank_sum, n_items):
    """The WARP weight ``log(floor(rank_sum) + 1)`` (1 without rank weight);
    the rank is at most the catalogue's size."""
    if parameters.use_rank_weight:
        return np.float32(math.log(math.floor(min(rank_sum, n_items)) + 1.0))
    return np.float32(1.0)


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def hinge_weights(parameters, row, pair_coef, scratch):
    """The hinge's weights of a row (``_losses.weigh_row``).

    The distances are copied to ``scratch.values`` first, so that the
    weights can be summed into ``row.distances`` in place.  (Loops rather
    than slice assignments: Numba copies the right side of ``a[:] = b`` to
    a new array when it cannot tell that they do not overlap.)
    """
    distances = row.distances
    n_negatives = distances.shape[0]
    original = scratch.values
    for n in range(n_negatives):
        original[n] = distances[n]
        distances[n] = 0.0
    if parameters.hardest_only:
        loss = _push_hardest(parameters, row, original, pair_coef)
    else:
        loss = _push_all(parameters, row, original, pair_coef)
    total = np.float32(0.0)
    for n in range(n_negatives):
        total += distances[n]
    return total, loss


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def _push_all(parameters, row, original, pair_coef):
    """Each pair's impostors share its weight: ``dL/dD_n -= w / M``."""
    distances = row.distances
    n_negatives = distances.shape[0]
    loss = np.float32(0.0)
    for b in range(row.positive_distances.shape[0]):
        if row.pair_weights[b] == 0.0:
            pair_coef[b] = 0.0
            continue
        threshold = row.positive_distances[b] + parameters.margin
        n_impostors = 0
        rank_sum = np.float32(0.0)
        violation_sum = np.float32(0.0)
        for n in range(n_negatives):
            violation = threshold - original[n]
            hit = original[n] < threshold
            n_impostors += 1 if hit else 0
            rank_sum += row.counts[n] if hit else np.float32(0.0)
            violation_sum += violation if hit else np.float32(0.0)
        if n_impostors == 0:
            pair_coef[b] = 0.0
            continue
        weight = rank_weight(parameters, rank_sum, row.n_items) * row.pair_weights[b]
        pair_coef[b] = weight
        share = weight / np.float32(n_impostors)
        loss += share * violation_sum  # summed above, in a loop that stores nothing
        for n in range(n_negatives):
            if original[n] < threshold:
                distances[n] -= share
    return loss


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def _push_hardest(parameters, row, original, pair_coef):
    """Each pair's closest impostor takes its whole weight: ``dL/dD_n -= w``."""
    distances = row.distances
    loss = np.float32(0.0)
    for b in range(row.positive_distances.shape[0]):
        pair_coef[b] = 0.0
        if row.pair_weights[b] == 0.0:
            continue
        threshold = row.positive_distances[b] + parameters.margin
        rank_sum = np.float32(0.0)
        hardest = -1
        hardest_distance = np.float32(np.inf)
        for n in range(distances.shape[0]):
            distance = original[n]
            if distance < threshold:
                rank_sum += row.counts[n]
                if distance < hardest_distance:
                    hardest_distance = distance
                    hardest = n
        if hardest < 0:
            continue
        weight = rank_weight(parameters, rank_sum, row.n_items) * row.pair_weights[b]
        pair_coef[b] = weight
        distances[hardest] -= weight
        loss += weight * (threshold - hardest_distance)
    return loss


def _overflow_causes(config):
    ball = 4.0 * config.max_norm**2
    if config.margin > FLOAT32_HEADROOM * ball:
        return [f"margin={config.margin}, far above the squared distances in the ball "
                f"(at most 4 * max_norm**2 = {ball:g})"]
    return []


LOSS = Loss(
    name="hinge",
    parameters_type=HingeParameters,
    parameters=_parameters,
    weights=hinge_weights,
    overflow_causes=_overflow_causes,
)
