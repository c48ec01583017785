"""A sampled softmax over distances (``loss="softmax"``).

The alternative to the paper's WARP hinge (``hinge``).  With ``s(u, j) =
-|u - v_j|^2 / temperature``, each positive ``i`` of user ``u`` costs

    -log( exp(s_ui) / (exp(s_ui) + sum_n exp(s_un + log c_n)) )

over the row's negatives ``n``, where ``c_n`` is how many items of the
catalogue draw ``n`` stands for (the "logQ" correction), so that the sum
estimates the sum over all items whatever the sampling distribution.
Every negative gets a push in proportion to its softmax probability: a
smooth version of the hinge on the hardest impostor with its rank weight,
over many more negatives.  The user's own items, at distance ``+inf``,
have no term.

The negatives' normaliser is shared by the row's positives, so a positive
costs O(1) beyond the row's O(N), and the O(N) passes are branch-free.
The per-pair solver groups ``GROUP_SIZE`` positives of a user per row, so
that its ``n_negatives * GROUP_SIZE`` draws serve them all.

Each user's temperature is ``temperature * (n_u / n_median) **
temperature_exponent`` (``user_inv_temperature``).
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .._numba_config import FASTMATH, NUMBA_CACHE
from .._steps import FLOAT32_HEADROOM
from ._base import Loss

# Positives per row with the per-pair solver.  Larger groups share negatives
# among more positives (cheaper per positive) but take fewer steps on the
# user per epoch; the measurements behind 16 are in docs/benchmarks.md.
GROUP_SIZE = 16


class SoftmaxParameters(NamedTuple):
    inv_temperature: np.float32
    temperature_exponent: np.float32
    reference_count: np.float32  # the median number of items per training user


def _parameters(config, reference_count, shared_negatives):
    return SoftmaxParameters(np.float32(1.0 / config.temperature),
                             np.float32(config.temperature_exponent),
                             np.float32(reference_count))


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def user_inv_temperature(inv_temperature, n_user_items, reference_count, exponent):
    """``1 / temperature_u``, with ``temperature_u = temperature * (n_user_items /
    reference_count) ** exponent``: exactly ``inv_temperature`` when ``exponent`` is 0."""
    if exponent == 0.0:
        return inv_temperature
    return inv_temperature * np.float32((n_user_items / reference_count) ** -exponent)


@njit(cache=NUMBA_CACHE, inline="always")
def float_order_key(bits):
    """An int32 that orders as the float32 whose bits are ``bits`` does
    (its own inverse)."""
    return bits ^ ((bits >> np.int32(31)) & np.int32(0x7FFFFFFF))


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def exp_shifted(values, top, bits):
    """``values[n] = exp(values[n] - top)`` in place (``values <= top``); returns the sum.

    A branch-free float32 exp that LLVM vectorises (Numba has no vector exp
    without Intel's SVML): ``2^t = 2^floor(t) p(t - floor(t))`` with a
    degree-6 polynomial ``p`` (relative error below 1e-5), and ``2^floor(t)``
    built from its exponent bits in ``bits`` (an int32 scratch); 0 below
    2^-126, so ``-inf`` (a masked entry) gives exactly 0.
    """
    n_values = values.shape[0]
    as_float = bits[:n_values].view(np.float32)
    for n in range(n_values):
        t = max(values[n] - top, np.float32(-88.0)) * np.float32(1.4426950408889634)
        whole = np.floor(t)  # float32: math.floor's int64 halves the vector width
        f = t - whole
        p = np.float32(1.5353362e-4)
        p = p * f + np.float32(1.3398874e-3)
        p = p * f + np.float32(9.6181291e-3)
        p = p * f + np.float32(5.5504109e-2)
        p = p * f + np.float32(2.4022651e-1)
        p = p * f + np.float32(6.9314718e-1)
        p = p * f + np.float32(1.0)
        exponent = np.int32(whole) + np.int32(127)
        bits[n] = (exponent << np.int32(23)) if exponent > 0 else np.int32(0)
        values[n] = p
    for n in range(n_values):
        values[n] *= as_float[n]
    # Summed in a loop that stores nothing (see _numba_config).
    total = np.float32(0.0)
    for n in range(n_values):
        total += values[n]
    return total


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def _positive_term(distance, inv_temperature, top, negative_sum):
    """``(logit - shift, positive, scale, z)`` of a positive at squared
    ``distance``: with ``shift`` the larger of its logit and the negatives'
    ``top``, ``positive = exp(logit - shift)``, ``scale = exp(top - shift)``
    (0 when ``top`` is -inf) and ``z = positive + negative_sum * scale``.
    One of the two exps is of 0: one call computes the other."""
    above = -distance * inv_temperature - top
    smaller = math.exp(-abs(above))
    positive = np.float32(1.0) if above >= 0.0 else smaller
    scale = smaller if above >= 0.0 else np.float32(1.0)
    return min(above, np.float32(0.0)), positive, scale, positive + negative_sum * scale


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def softmax_weights(parameters, row, pair_coef, scratch):
    """The softmax's weights of a row (``_losses.weigh_row``).

    Each pair's positive competes with every negative, whose logit is
    ``log c_n - D[n] / T`` (``-inf`` for the user's own items).  Each
    pair's term is multiplied by its weight.
    """
    inv_temperature = user_inv_temperature(
        parameters.inv_temperature, row.n_user_items, parameters.reference_count,
        parameters.temperature_exponent,
    )  # fmt: skip
    distances, bits = row.distances, scratch.bits
    n_negatives = distances.shape[0]
    # The largest logit, as the largest integer key of the logits' bits: a
    # float max reduction does not vectorise (7x slower).
    logit_bits = distances.view(np.int32)
    top_key = np.int32(-2147483648)
    for n in range(n_negatives):
        distances[n] = row.log_counts[n] - distances[n] * inv_temperature
        top_key = max(top_key, float_order_key(logit_bits[n]))
    bits[0] = float_order_key(top_key)
    top = bits[:1].view(np.float32)[0]
    if top > -np.inf:
        negative_sum = exp_shifted(distances, top, bits)
    else:  # every negative is one of the user's items
        negative_sum = np.float32(0.0)
        distances[:] = 0.0
    # The pairs' sums in a loop that stores nothing, their coefficients in
    # one that sums nothing (see _numba_config).
    share = np.float32(0.0)
    loss = np.float32(0.0)
    for b in range(row.positive_distances.shape[0]):
        shifted, positive, scale, z = _positive_term(row.positive_distances[b],
                                                     inv_temperature, top, negative_sum)
        weight = row.pair_weights[b]
        loss += weight * (math.log(z) - shifted)
        share += weight * (scale / z)
    for b in range(row.positive_distances.shape[0]):
        _, positive, _, z = _positive_term(row.positive_distances[b], inv_temperature, top,
                                           negative_sum)
        pair_coef[b] = inv_temperature * row.pair_weights[b] * (np.float32(1.0) - positive / z)
    coefficient = -inv_temperature * share
    total = np.float32(0.0)
    for n in range(n_negatives):
        weight = coefficient * distances[n]
        distances[n] = weight
        total += weight
    return total, loss


def _overflow_causes(config):
    ball = 4.0 * config.max_norm**2
    if config.temperature * FLOAT32_HEADROOM < ball:
        return [f"temperature={config.temperature}, far below the squared distances it "
                f"divides (up to 4 * max_norm**2 = {ball:g}): use a temperature of about "
                f"{0.1 * ball:g} to {ball:g}"]
    return []


LOSS = Loss(
    name="softmax",
    parameters_type=SoftmaxParameters,
    parameters=_parameters,
    weights=softmax_weights,
    group_size=GROUP_SIZE,
    overflow_causes=_overflow_causes,
)
