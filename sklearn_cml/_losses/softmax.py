"""A sampled softmax over distances (``loss="softmax"``).

The alternative to the paper's WARP hinge (``hinge``).  With ``s(u, j) =
-|u - v_j|^2 / temperature``, each positive ``i`` of user ``u`` costs

    -log( exp(s_ui) / (exp(s_ui) + sum_k exp(s_uk + log c_k)) )

over sampled negatives ``k``, where ``c_k = n_items * inverse_probability[k]
/ n_draws`` is how many items draw ``k`` stands for (the "logQ"
correction), so that the sum estimates the sum over all items whatever the
sampling distribution.  Every negative gets a push in proportion to its
softmax probability: a smooth version of the hinge on the hardest impostor
with its rank weight, over many more negatives.

Many negatives make each step costly, so they are shared: a step works on a
*group* of up to ``GROUP_SIZE`` positives of one user, drawn at random
without replacement from the user's items each epoch, and its ``n_negatives
* GROUP_SIZE`` draws serve every positive of the group (a group of fewer
positives gets as many draws, so that every softmax is estimated as
well).  The distances to the negatives, their exponentials and the negatives' updates are then paid
once per group, not once per positive.  Draws that hit one of the user's
positives are skipped (their term is zero), as the hinge skips them.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .._numba_config import FASTMATH, NUMBA_CACHE
from .._sampling import draw, log_inverse_probability
from .._steps import adagrad_step, contains_sorted, squared_distance
from ._base import Loss

# Positives per step.  Larger groups share negatives among more positives
# (cheaper per positive) but take fewer steps on the user per epoch; the
# measurements behind 16 are in docs/benchmarks.md.
GROUP_SIZE = 16


class SoftmaxParameters(NamedTuple):
    n_negatives: int  # draws per positive: a group draws GROUP_SIZE times as many
    inv_temperature: np.float32
    temperature_exponent: np.float32
    reference_count: np.float32  # the median number of items per training user


class SoftmaxScratch(NamedTuple):
    negatives: np.ndarray  # int64 (n_slots, n_draws)
    log_counts: np.ndarray  # float32 (n_slots, n_draws)
    negative_terms: np.ndarray  # float32 (n_slots, n_draws)
    grad_user: np.ndarray  # float32 (n_slots, n_components)
    grad_items: np.ndarray  # float32 (n_slots, GROUP_SIZE + n_draws, n_components)


def _parameters(params, reference_count, fold_in):
    return SoftmaxParameters(params.n_negatives, np.float32(1.0 / params.temperature),
                             np.float32(params.temperature_exponent),
                             np.float32(reference_count))


def _scratch(n_slots, n_components, n_items, params):
    n_draws = params.n_negatives * GROUP_SIZE
    return SoftmaxScratch(
        np.empty((n_slots, n_draws), dtype=np.int64),
        np.empty((n_slots, n_draws), dtype=np.float32),
        np.empty((n_slots, n_draws), dtype=np.float32),
        np.empty((n_slots, n_components), dtype=np.float32),
        np.empty((n_slots, GROUP_SIZE + n_draws, n_components), dtype=np.float32),
    )


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def user_inv_temperature(inv_temperature, n_user_items, reference_count, exponent):
    """``1 / temperature_u``, with ``temperature_u = temperature * (n_user_items /
    reference_count) ** exponent``: exactly ``inv_temperature`` when ``exponent`` is 0."""
    if exponent == 0.0:
        return inv_temperature
    return inv_temperature * np.float32((n_user_items / reference_count) ** -exponent)


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def draw_negatives(rng_state, n_draws, n_items, seen_start, seen_end, indices, sampler, negatives,
                   log_counts):
    """Draw ``n_draws`` negatives into ``negatives[:n_draws]``.

    ``log_counts[k]`` receives ``log c_k`` (see the module docstring), or
    ``-inf`` when the draw is one of the user's positives
    ``indices[seen_start:seen_end]``, which removes it from the softmax.
    Returns the advanced random state.
    """
    log_uniform_count = math.log(n_items / n_draws)
    for k in range(n_draws):
        rng_state, candidate = draw(sampler, rng_state)
        negatives[k] = candidate
        if contains_sorted(indices, seen_start, seen_end, candidate):
            log_counts[k] = -np.inf
        else:
            log_counts[k] = log_uniform_count + log_inverse_probability(sampler, candidate)
    return rng_state


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def group_gradients(
    user,
    positives,
    weights,
    negatives,
    log_counts,
    n_draws,
    item_embeddings,
    inv_temperature,
    with_items,
    grad_user,
    grad_positives,
    grad_negatives,
    negative_terms,
):
    """Loss of one group and its gradients, from the current vectors.

    ``user`` is the user's vector, ``positives`` the group's item indices,
    ``weights`` their pair weights (each positive's term of the loss is
    multiplied by its weight), ``negatives[:n_draws]`` and
    ``log_counts[:n_draws]`` the draws.  Fills ``grad_user``; with
    ``with_items`` also ``grad_positives[g]`` (one row per positive) and
    ``grad_negatives[k]`` (one row per draw).
    ``negative_terms`` (one per draw) receives ``exp`` of each negative's
    term relative to the largest, 0 for skipped draws.  Returns the summed
    loss of the group's positives.

    With ``p_i`` the softmax probability of positive ``i`` and ``p_ik``
    that of negative ``k`` in ``i``'s softmax, the loss falls by
    ``w_i (1 - p_i)`` per unit of ``s_ui`` and rises by ``W_k = sum_i w_i
    p_ik`` per unit of ``s_uk`` (``w_i`` the pair weights); ``s = -d /
    temperature`` and ``d = |u - v|^2`` give the vector gradients ``(2 /
    temperature) * coefficient * (vector - other)``.
    """
    n_components = user.shape[0]
    n_positives = positives.shape[0]
    top_negative = -np.inf
    for k in range(n_draws):
        if log_counts[k] > -np.inf:
            negative_terms[k] = (
                log_counts[k]
                - squared_distance(user, item_embeddings[negatives[k]]) * inv_temperature
            )
        else:
            negative_terms[k] = -np.inf
        top_negative = max(top_negative, negative_terms[k])
    negative_sum = np.float32(0.0)
    for k in range(n_draws):
        if top_negative == -np.inf:  # every draw was one of the user's items
            negative_terms[k] = 0.0
        else:
            negative_terms[k] = math.exp(negative_terms[k] - top_negative)
        negative_sum += negative_terms[k]

    scale = np.float32(2.0) * inv_temperature
    grad_user[:] = 0.0
    loss = np.float32(0.0)
    # sum_i p_ik = negative_terms[k] * sum_i exp(top_negative - shift_i) / z_i:
    # one sum over the group, then one pass over the negatives.
    negative_share = np.float32(0.0)
    for g in range(n_positives):
        vector = item_embeddings[positives[g]]
        logit = -squared_distance(user, vector) * inv_temperature
        # Each positive's exponents are shifted by its own largest one, so
        # that none overflows and z (at least 1) never underflows to 0.
        shift = max(logit, top_negative)
        positive_term = math.exp(logit - shift)
        negative_scale = math.exp(top_negative - shift)
        z = positive_term + negative_sum * negative_scale
        weight = weights[g]
        loss += weight * (math.log(z) - (logit - shift))
        negative_share += weight * (negative_scale / z)
        coefficient = scale * weight * (np.float32(1.0) - positive_term / z)
        for d in range(n_components):
            step = coefficient * (user[d] - vector[d])
            grad_user[d] += step
            if with_items:
                grad_positives[g, d] = -step
    for k in range(n_draws):
        coefficient = scale * negative_terms[k] * negative_share
        vector = item_embeddings[negatives[k]]
        for d in range(n_components):
            step = coefficient * (user[d] - vector[d])
            grad_user[d] -= step
            if with_items:
                grad_negatives[k, d] = step
    return loss


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def softmax_group_step(parameters, sampler, user, positives, weights, position, interactions,
                       embeddings, optimizer, scratch, slot, rng_state, update_items):
    """The per-pair solver's step (``_solvers.hogwild.pair_step``) for the softmax.

    ``positives`` is a group of at most ``GROUP_SIZE`` of the user's items,
    each term weighted by its pair's entry of ``weights``;
    their ``n_negatives * GROUP_SIZE`` draws are shared.  AdaGrad steps on
    the positives, then on the negatives that got a push, then the user.
    The user's temperature is scaled by ``(n_u / reference_count) **
    temperature_exponent`` (``user_inv_temperature``).
    """
    indptr, indices = interactions.indptr, interactions.indices
    user_start = indptr[user]
    user_stop = indptr[user + 1]
    n_draws = parameters.n_negatives * GROUP_SIZE
    negatives = scratch.negatives[slot]
    log_counts = scratch.log_counts[slot]
    negative_terms = scratch.negative_terms[slot]
    grad_items = scratch.grad_items[slot]
    rng_state = draw_negatives(
        rng_state, n_draws, embeddings.items.shape[0], user_start, user_stop, indices, sampler,
        negatives, log_counts,
    )  # fmt: skip
    n_positives = positives.shape[0]
    inv_temperature = user_inv_temperature(
        parameters.inv_temperature, user_stop - user_start, parameters.reference_count,
        parameters.temperature_exponent,
    )  # fmt: skip
    loss = group_gradients(
        embeddings.users[user], positives, weights, negatives, log_counts, n_draws,
        embeddings.items, inv_temperature, update_items, scratch.grad_user[slot],
        grad_items[:n_positives], grad_items[n_positives:], negative_terms,
    )  # fmt: skip
    learning_rate, max_norm = optimizer.learning_rate, optimizer.max_norm
    if update_items:
        for g in range(n_positives):
            adagrad_step(embeddings.items[positives[g]], embeddings.item_grad_sq, positives[g],
                         grad_items[g], learning_rate, max_norm)
        for k in range(n_draws):
            # Skipped draws (positives) and negligible pushes cost nothing.
            if negative_terms[k] > 0.0:
                adagrad_step(embeddings.items[negatives[k]], embeddings.item_grad_sq,
                             negatives[k], grad_items[n_positives + k], learning_rate, max_norm)
    adagrad_step(embeddings.users[user], embeddings.user_grad_sq, user, scratch.grad_user[slot],
                 learning_rate, max_norm)
    return rng_state, loss


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
    total = np.float32(0.0)
    for n in range(n_values):
        e = values[n] * as_float[n]
        values[n] = e
        total += e
    return total


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def softmax_block_row(parameters, distances, scratch, bits, pool, user, indptr, user_vector,
                      pairs, pair_weights, item_embeddings, pair_coef, n_items):
    """The block solver's row (``_solvers.block.block_row``) for the softmax.

    Each pair's positive competes with every pool entry, whose logit is
    ``log c_n - D[n] / T`` (logQ-corrected; ``-inf`` for the user's own
    items).  The pool's normaliser is shared by the user's pairs, so a pair
    costs O(K) beyond the row's O(N), and the O(N) passes are branch-free.
    Each pair's term is multiplied by its weight ``pair_weights[b]``.
    """
    inv_temperature = user_inv_temperature(
        parameters.inv_temperature, indptr[user + 1] - indptr[user], parameters.reference_count,
        parameters.temperature_exponent,
    )  # fmt: skip
    n_pool = distances.shape[0]
    # The largest logit, as the largest integer key of the logits' bits: a
    # float max reduction does not vectorise (7x slower).
    logit_bits = distances.view(np.int32)
    top_key = np.int32(-2147483648)
    for n in range(n_pool):
        distances[n] = pool.log_counts[n] - distances[n] * inv_temperature
        top_key = max(top_key, float_order_key(logit_bits[n]))
    bits[0] = float_order_key(top_key)
    top = bits[:1].view(np.float32)[0]
    if top > -np.inf:
        pool_sum = exp_shifted(distances, top, bits)
    else:  # every pool entry is one of the user's items
        pool_sum = np.float32(0.0)
        distances[:] = 0.0
    share = np.float32(0.0)
    loss = np.float32(0.0)
    for b in range(pairs.shape[0]):
        logit = -squared_distance(user_vector, item_embeddings[pairs[b]]) * inv_temperature
        shift = max(logit, top)
        positive = math.exp(logit - shift)
        scale = math.exp(top - shift) if top > -np.inf else np.float32(0.0)
        z = positive + pool_sum * scale
        weight = pair_weights[b]
        loss += weight * (math.log(z) - (logit - shift))
        share += weight * (scale / z)
        pair_coef[b] = inv_temperature * weight * (np.float32(1.0) - positive / z)
    coefficient = -inv_temperature * share
    total = np.float32(0.0)
    for n in range(n_pool):
        weight = coefficient * distances[n]
        distances[n] = weight
        total += weight
    return total, loss


LOSS = Loss(
    name="softmax",
    group_size=GROUP_SIZE,
    parameters_type=SoftmaxParameters,
    parameters=_parameters,
    scratch=_scratch,
    pair_step=softmax_group_step,
    block_row=softmax_block_row,
)
