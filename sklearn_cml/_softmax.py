"""Numba kernels of the sampled-softmax loss over distances (``loss="softmax"``).

The alternative to the WARP hinge of ``_kernels``.  With ``s(u, j) =
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
positives gets as many draws, so that every softmax is estimated as well).  The distances to
the negatives, their exponentials and the negatives' updates are then paid
once per group, not once per positive.  Draws that hit one of the user's
positives are skipped (their term is zero), as the hinge skips them.
"""

import math

import numpy as np
from numba import njit, prange

from ._kernels import adagrad_step, contains_sorted, squared_distance
from ._numba_config import FASTMATH, NUMBA_CACHE
from ._rng import random_below, splitmix64
from ._sampling import draw_item

# Positives per step.  Larger groups share negatives among more positives
# (cheaper per positive) but take fewer steps on the user per epoch.  On
# MovieLens-1M, groups of 16 sharing 160 draws came within 0.0015 of the
# validation recall of 100 draws for every single positive, at a fifth to
# a tenth of the time (docs/benchmarks.md).
GROUP_SIZE = 16


@njit(cache=NUMBA_CACHE)
def user_groups(indptr, group_size):
    """``(starts, users)`` of the groups: each row cut into runs of ``group_size``."""
    n_rows = indptr.shape[0] - 1
    n_groups = 0
    for row in range(n_rows):
        n_groups += (indptr[row + 1] - indptr[row] + group_size - 1) // group_size
    starts = np.empty(n_groups, dtype=np.int64)
    users = np.empty(n_groups, dtype=np.int32)
    group = 0
    for row in range(n_rows):
        for start in range(indptr[row], indptr[row + 1], group_size):
            starts[group] = start
            users[group] = row
            group += 1
    return starts, users


@njit(cache=NUMBA_CACHE, inline="always")
def shuffle_row(state, indices, shuffled, start, stop):
    """Copy ``indices[start:stop]`` into ``shuffled[start:stop]`` in a random
    order (inside-out Fisher-Yates); returns the advanced random state."""
    for offset in range(stop - start):
        state, other = random_below(state, offset + 1)
        shuffled[start + offset] = shuffled[start + other]
        shuffled[start + other] = indices[start + offset]
    return state


@njit(cache=NUMBA_CACHE)
def shuffle_within_rows(indptr, indices, shuffled, seed):
    """Copy ``indices`` into ``shuffled``, each row in a random order.

    Driven by ``seed`` alone: consecutive runs of a row are then random
    groups drawn without replacement.
    """
    state = splitmix64(np.uint64(seed)) | np.uint64(1)
    for row in range(indptr.shape[0] - 1):
        state = shuffle_row(state, indices, shuffled, indptr[row], indptr[row + 1])


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def user_inv_temperature(inv_temperature, n_user_items, reference_count, exponent):
    """``1 / temperature_u``, with ``temperature_u = temperature * (n_user_items /
    reference_count) ** exponent``: exactly ``inv_temperature`` when ``exponent`` is 0."""
    if exponent == 0.0:
        return inv_temperature
    return inv_temperature * np.float32((n_user_items / reference_count) ** -exponent)


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def draw_negatives(
    rng_state, n_draws, n_items, seen_start, seen_end, indices, sampling, negatives, log_counts
):
    """Draw ``n_draws`` negatives into ``negatives[:n_draws]``.

    ``log_counts[k]`` receives ``log c_k`` (see the module docstring), or
    ``-inf`` when the draw is one of the user's positives
    ``indices[seen_start:seen_end]``, which removes it from the softmax.
    ``sampling`` is None (uniform) or alias tables, as in ``_kernels``.
    Returns the advanced random state.
    """
    log_uniform_count = math.log(n_items / n_draws)
    for k in range(n_draws):
        if sampling is None:
            rng_state, candidate = random_below(rng_state, n_items)
        else:
            rng_state, candidate = draw_item(rng_state, sampling[0], sampling[1])
        negatives[k] = candidate
        if contains_sorted(indices, seen_start, seen_end, candidate):
            log_counts[k] = -np.inf
        elif sampling is None:
            log_counts[k] = log_uniform_count
        else:
            log_counts[k] = log_uniform_count + math.log(sampling[2][candidate])
    return rng_state


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def group_gradients(
    user,
    positives,
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
    ``negatives[:n_draws]`` and ``log_counts[:n_draws]`` the draws.  Fills
    ``grad_user``; with ``with_items`` also ``grad_positives[g]`` (one row
    per positive) and ``grad_negatives[k]`` (one row per draw).
    ``negative_terms`` (one per draw) receives ``exp`` of each negative's
    term relative to the largest, 0 for skipped draws.  Returns the summed
    loss of the group's positives.

    With ``p_i`` the softmax probability of positive ``i`` and ``p_ik``
    that of negative ``k`` in ``i``'s softmax, the loss falls by
    ``(1 - p_i)`` per unit of ``s_ui`` and rises by ``W_k = sum_i p_ik`` per
    unit of ``s_uk``; ``s = -d / temperature`` and ``d = |u - v|^2`` give
    the vector gradients ``(2 / temperature) * coefficient * (vector -
    other)``.
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
        loss += math.log(z) - (logit - shift)
        negative_share += negative_scale / z
        coefficient = scale * (np.float32(1.0) - positive_term / z)
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


@njit(cache=NUMBA_CACHE, parallel=True, fastmath=FASTMATH, error_model="numpy")
def softmax_epoch_chunk(
    group_order,
    chunk_start,
    chunk_stop,
    group_starts,
    group_users,
    indptr,
    indices,
    shuffled,
    user_embeddings,
    user_grad_sq,
    item_embeddings,
    item_grad_sq,
    n_negatives,
    inv_temperature,
    temperature_exponent,
    reference_count,
    learning_rate,
    max_norm,
    rng_states,
    block_losses,
    n_slots,
    scratch,
    sampling,
):
    """Hogwild SGD over the groups ``group_order[chunk_start:chunk_stop]``.

    Group ``g`` is the positives ``shuffled[group_starts[g]:...]`` (at most
    ``GROUP_SIZE``, within row ``group_users[g]``); ``indices`` (sorted per
    row) tells a user's positives apart from negatives.  Blocks, RNG states
    and slots work as in ``_kernels.warp_epoch_chunk``: a fixed number of
    blocks, dealt to ``n_slots`` threads, so that one thread is bitwise
    reproducible.  ``scratch`` is the tuple made by ``softmax_scratch``.
    Each user's temperature is scaled by ``(n_u / reference_count) **
    temperature_exponent`` (``user_inv_temperature``).
    """
    negatives, log_counts, negative_terms, grad_user, grad_items = scratch
    n_blocks = rng_states.shape[0]
    n_groups = chunk_stop - chunk_start
    n_items = item_embeddings.shape[0]
    for slot in prange(n_slots):
        for block in range(slot, n_blocks, n_slots):
            rng_state = rng_states[block]
            loss = np.float32(0.0)
            block_start = chunk_start + (n_groups * block) // n_blocks
            block_stop = chunk_start + (n_groups * (block + 1)) // n_blocks
            for position in range(block_start, block_stop):
                group = group_order[position]
                user = group_users[group]
                start = group_starts[group]
                stop = min(start + GROUP_SIZE, indptr[user + 1])
                n_draws = n_negatives * GROUP_SIZE
                rng_state = draw_negatives(
                    rng_state, n_draws, n_items, indptr[user], indptr[user + 1], indices,
                    sampling, negatives[slot], log_counts[slot],
                )  # fmt: skip
                positives = shuffled[start:stop]
                n_positives = stop - start
                inv_temperature_user = user_inv_temperature(
                    inv_temperature, indptr[user + 1] - indptr[user], reference_count,
                    temperature_exponent,
                )  # fmt: skip
                loss += group_gradients(
                    user_embeddings[user], positives, negatives[slot], log_counts[slot],
                    n_draws, item_embeddings, inv_temperature_user, True, grad_user[slot],
                    grad_items[slot][:n_positives], grad_items[slot][n_positives:],
                    negative_terms[slot],
                )  # fmt: skip
                for g in range(n_positives):
                    adagrad_step(
                        item_embeddings[positives[g]], item_grad_sq, positives[g],
                        grad_items[slot][g], learning_rate, max_norm,
                    )  # fmt: skip
                for k in range(n_draws):
                    # Skipped draws (positives) and negligible pushes cost nothing.
                    if negative_terms[slot][k] > 0.0:
                        adagrad_step(
                            item_embeddings[negatives[slot][k]], item_grad_sq,
                            negatives[slot][k], grad_items[slot][n_positives + k],
                            learning_rate, max_norm,
                        )  # fmt: skip
                adagrad_step(
                    user_embeddings[user], user_grad_sq, user, grad_user[slot],
                    learning_rate, max_norm,
                )  # fmt: skip
            rng_states[block] = rng_state
            block_losses[block] += loss


def softmax_scratch(n_slots, n_negatives, n_components):
    """Per-thread buffers of ``softmax_epoch_chunk`` and ``softmax_fold_in``."""
    n_draws = n_negatives * GROUP_SIZE
    return (
        np.empty((n_slots, n_draws), dtype=np.int64),  # negatives
        np.empty((n_slots, n_draws), dtype=np.float32),  # log counts
        np.empty((n_slots, n_draws), dtype=np.float32),  # negative terms
        np.empty((n_slots, n_components), dtype=np.float32),  # user gradient
        np.empty((n_slots, GROUP_SIZE + n_draws, n_components), dtype=np.float32),
    )


@njit(cache=NUMBA_CACHE, parallel=True, fastmath=FASTMATH, error_model="numpy")
def softmax_fold_in(
    indptr,
    indices,
    item_embeddings,
    user_embeddings,
    user_grad_sq,
    n_epochs,
    n_negatives,
    inv_temperature,
    temperature_exponent,
    reference_count,
    learning_rate,
    max_norm,
    rng_states,
    shuffled,
    n_slots,
    scratch,
    sampling,
):
    """Optimise new users' vectors against frozen item vectors.

    As ``_kernels.fold_in_users``, with the softmax loss: each epoch cuts
    row ``r``'s positives, in a random order drawn with the row's own state
    ``rng_states[r]``, into groups and takes one step on the user per group.
    A row's result depends only on its content and seed.  ``shuffled`` is a
    scratch copy of ``indices``; ``scratch`` is made by ``softmax_scratch``.
    A row's temperature is scaled as in training, from its number of items.
    """
    negatives, log_counts, negative_terms, grad_user, grad_items = scratch
    n_rows = indptr.shape[0] - 1
    n_items = item_embeddings.shape[0]
    for slot in prange(n_slots):
        for row in range(slot, n_rows, n_slots):
            start = indptr[row]
            stop = indptr[row + 1]
            rng_state = rng_states[row]
            inv_temperature_row = user_inv_temperature(
                inv_temperature, stop - start, reference_count, temperature_exponent
            )
            for _ in range(n_epochs):
                rng_state = shuffle_row(rng_state, indices, shuffled, start, stop)
                for group_start in range(start, stop, GROUP_SIZE):
                    group_stop = min(group_start + GROUP_SIZE, stop)
                    n_draws = n_negatives * GROUP_SIZE
                    rng_state = draw_negatives(
                        rng_state, n_draws, n_items, start, stop, indices, sampling,
                        negatives[slot], log_counts[slot],
                    )  # fmt: skip
                    group_gradients(
                        user_embeddings[row], shuffled[group_start:group_stop],
                        negatives[slot], log_counts[slot], n_draws, item_embeddings,
                        inv_temperature_row, False, grad_user[slot], grad_items[slot],
                        grad_items[slot], negative_terms[slot],
                    )  # fmt: skip
                    adagrad_step(
                        user_embeddings[row], user_grad_sq, row, grad_user[slot],
                        learning_rate, max_norm,
                    )  # fmt: skip
