"""Numba kernels of the embedding loss: the WARP-weighted triplet hinge.

Everything here is a plain function of arrays and scalars.  Embeddings are
C-contiguous float32 ``(n_rows, n_components)`` arrays; interactions arrive
as CSR ``indptr`` (int64) and ``indices`` (int32, sorted within each row).
One SGD step works on one (user, positive item) pair:

1. sample ``n_negatives`` items, uniformly or in proportion to a power of
   their popularity (``_sampling``);
2. count the impostors ``M`` (sampled items that are not the user's
   positives and are closer than ``d(u, pos)^2 + margin``) and keep the
   hardest one (the closest);
3. estimate the positive's rank as ``floor(n_items * M / n_negatives)``
   (each impostor importance-weighted when sampling is not uniform) and
   weight the hinge by ``log(rank + 1)`` (WARP);
4. take an AdaGrad step on the user, the positive and the hardest impostor,
   then project each back into the ball of radius ``max_norm``.

Squared distances are used throughout; square roots only appear in what
users see (``_topk``).
"""

import math

import numpy as np
from numba import njit, prange

from ._numba_config import FASTMATH, NUMBA_CACHE
from ._rng import random_below, splitmix64
from ._sampling import draw_item


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def squared_distance(a, b):
    """Squared Euclidean distance between two 1-d float32 vectors."""
    total = np.float32(0.0)
    for d in range(a.shape[0]):
        diff = a[d] - b[d]
        total += diff * diff
    return total


@njit(cache=NUMBA_CACHE, inline="always")
def contains_sorted(indices, start, end, value):
    """Whether ``value`` is in the sorted slice ``indices[start:end]``."""
    lo = start
    hi = end
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo < end and indices[lo] == value


@njit(cache=NUMBA_CACHE, inline="always")
def row_of_entry(indptr, position):
    """The CSR row holding entry ``position`` (binary search of ``indptr``).

    Finding it costs a few loads of the small ``indptr`` array instead of
    keeping a user index per interaction in memory.
    """
    lo = 0
    hi = indptr.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if indptr[mid] <= position:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=NUMBA_CACHE, inline="always")
def rank_weight(n_items, n_impostors, n_negatives):
    """WARP weight ``log(floor(n_items * M / U) + 1)`` of a sampled rank."""
    rank = (n_items * n_impostors) // n_negatives
    return np.float32(math.log(rank + 1.0))


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def triplet_gradients(user, positive, negative, weight, grad_user, grad_positive, grad_negative):
    """Gradients of ``weight * (m + |u - p|^2 - |u - n|^2)``, written in place.

    The margin does not enter the gradient.  Computing all three from the
    old vectors first, into separate buffers, lets the loops vectorise.
    """
    scale = np.float32(2.0) * weight
    for d in range(user.shape[0]):
        grad_user[d] = scale * (negative[d] - positive[d])
        grad_positive[d] = scale * (positive[d] - user[d])
        grad_negative[d] = scale * (user[d] - negative[d])


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def adagrad_step(vector, grad_sq, row, gradient, learning_rate, max_norm):
    """Row-wise AdaGrad step on ``vector``, then projection into the ball.

    ``grad_sq[row]`` accumulates the mean squared gradient of the vector:
    ``G += mean(g^2); x -= learning_rate * g / sqrt(G)``.  One accumulator
    per vector instead of one per coordinate: an n_components-fold smaller
    optimiser state, one square root per step, and no second row to fetch
    from memory, which is what bounds the speed of a Hogwild epoch.  A step
    that overflows float32 sets ``grad_sq[row]`` to infinity.
    """
    n_components = vector.shape[0]
    sq_gradient = np.float32(0.0)
    for d in range(n_components):
        sq_gradient += gradient[d] * gradient[d]
    accumulated = grad_sq[row] + sq_gradient / n_components
    grad_sq[row] = accumulated
    step = np.float32(learning_rate / math.sqrt(accumulated))
    sq_norm = np.float32(0.0)
    for d in range(n_components):
        value = vector[d] - step * gradient[d]
        vector[d] = value
        sq_norm += value * value
    if sq_norm > max_norm * max_norm:
        if sq_norm == np.inf:
            # The step overflowed float32 and the projection is about to
            # zero the vector: an infinite accumulator marks the row (and
            # stops its steps) for the check after the epoch.
            grad_sq[row] = np.inf
        scale = np.float32(max_norm / math.sqrt(np.float64(sq_norm)))
        for d in range(n_components):
            vector[d] *= scale


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def sample_impostor(
    user,
    positive,
    seen_start,
    seen_end,
    indices,
    marks,
    stamp,
    item_embeddings,
    n_negatives,
    margin,
    use_rank_weight,
    rng_state,
    sampling,
):
    """Sample items for one (user, positive) pair; pick the impostor.

    ``n_negatives`` items are drawn from all items: uniformly when
    ``sampling`` is None, else from its alias tables ``(keep_threshold,
    alias, inverse_probability)`` (see ``_sampling``).  Numba compiles the
    None case separately, without the tables or a branch on them.  A draw that
    violates the margin is an impostor unless it is one of the user's
    positives, ``indices[seen_start:seen_end]`` (sorted): those are skipped,
    never used as negatives.  Membership is looked up in ``marks`` when
    ``stamp >= 0`` (``marks[j] == stamp`` for the user's positives), else
    by binary search, and only for violators.  Drawing from all items and
    skipping positives keeps ``n_items * M / n_negatives`` an unbiased
    estimate of the number of negatives ranked above the positive; with
    weighted sampling each impostor ``k`` counts ``inverse_probability[k]``
    in that estimate instead of 1, which keeps it unbiased.

    Returns ``(hardest_item, weight, loss, rng_state)``: the closest
    impostor, its WARP weight, the weighted hinge loss and the advanced
    random state; ``hardest_item`` is -1 (and the loss 0) when no draw is an
    impostor.
    """
    n_items = item_embeddings.shape[0]
    threshold = squared_distance(user, positive) + margin

    n_impostors = 0
    weighted_impostors = 0.0
    hardest_item = -1
    hardest_distance = np.float32(np.inf)
    for _ in range(n_negatives):
        if sampling is None:
            rng_state, candidate = random_below(rng_state, n_items)
        else:
            rng_state, candidate = draw_item(rng_state, sampling[0], sampling[1])
        distance = squared_distance(user, item_embeddings[candidate])
        if distance < threshold and not (
            marks[candidate] == stamp
            if stamp >= 0
            else contains_sorted(indices, seen_start, seen_end, candidate)
        ):
            n_impostors += 1
            if sampling is not None:
                weighted_impostors += sampling[2][candidate]
            if distance < hardest_distance:
                hardest_distance = distance
                hardest_item = candidate

    if n_impostors == 0:
        return -1, np.float32(0.0), np.float32(0.0), rng_state
    weight = np.float32(1.0)
    if use_rank_weight:
        if sampling is None:
            weight = rank_weight(n_items, n_impostors, n_negatives)
        else:
            rank = math.floor(n_items * weighted_impostors / n_negatives)
            weight = np.float32(math.log(rank + 1.0))
    return hardest_item, weight, weight * (threshold - hardest_distance), rng_state


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def update_triplet(
    user_embeddings,
    user_grad_sq,
    user,
    item_embeddings,
    item_grad_sq,
    positive,
    negative,
    weight,
    learning_rate,
    max_norm,
    gradients,
):
    """AdaGrad step on the three vectors of a triplet, each then projected.

    ``user``, ``positive`` and ``negative`` are row indices;
    ``gradients`` is a (3, n_components) scratch buffer.
    """
    triplet_gradients(
        user_embeddings[user], item_embeddings[positive], item_embeddings[negative],
        weight, gradients[0], gradients[1], gradients[2],
    )  # fmt: skip
    adagrad_step(
        user_embeddings[user], user_grad_sq, user, gradients[0], learning_rate, max_norm
    )
    adagrad_step(
        item_embeddings[positive], item_grad_sq, positive, gradients[1], learning_rate, max_norm
    )
    adagrad_step(
        item_embeddings[negative], item_grad_sq, negative, gradients[2], learning_rate, max_norm
    )


@njit(cache=NUMBA_CACHE, parallel=True, fastmath=FASTMATH, error_model="numpy")
def warp_epoch_chunk(
    pair_order,
    chunk_start,
    chunk_stop,
    indptr,
    indices,
    user_embeddings,
    user_grad_sq,
    item_embeddings,
    item_grad_sq,
    n_negatives,
    margin,
    use_rank_weight,
    learning_rate,
    max_norm,
    rng_states,
    block_losses,
    gradients,
    seen_marks,
    mark_limit,
    sampling,
):
    """Hogwild SGD over the pairs ``pair_order[chunk_start:chunk_stop]``.

    A pair is a position ``p`` in the CSR arrays: positive item
    ``indices[p]`` of the user whose row holds ``p``.  The chunk is cut into
    ``len(rng_states)`` contiguous blocks, each with its own RNG state.  The
    blocks are dealt to ``len(seen_marks)`` parallel slots (one per thread),
    slot ``s`` running blocks ``s, s + n_slots, ...`` in order: the block
    count is fixed, so with one thread the result is bitwise reproducible
    whatever the machine.  Each block adds its summed loss to
    ``block_losses[block]``.

    Scratch buffers: ``gradients`` (n_blocks, 3, n_components) float32 and
    ``seen_marks`` (n_slots, n_items) int32.  Users with at most
    ``mark_limit`` positives have them marked in ``seen_marks`` before each
    step, so that membership is one load; heavier users, whose marking
    would cost more than the binary searches it saves, are searched.
    ``sampling`` is as in ``sample_impostor``.
    """
    n_blocks = rng_states.shape[0]
    n_slots = seen_marks.shape[0]
    n_pairs = chunk_stop - chunk_start
    for slot in prange(n_slots):
        marks = seen_marks[slot]
        marks[:] = -1
        for block in range(slot, n_blocks, n_slots):
            block_start = chunk_start + (n_pairs * block) // n_blocks
            block_stop = chunk_start + (n_pairs * (block + 1)) // n_blocks
            block_losses[block] += _sgd_block(
                pair_order, block_start, block_stop, indptr, indices,
                user_embeddings, user_grad_sq, item_embeddings, item_grad_sq,
                n_negatives, margin, use_rank_weight, learning_rate, max_norm,
                rng_states, block, gradients[block], marks, mark_limit,
                sampling,
            )  # fmt: skip


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def _sgd_block(
    pair_order,
    block_start,
    block_stop,
    indptr,
    indices,
    user_embeddings,
    user_grad_sq,
    item_embeddings,
    item_grad_sq,
    n_negatives,
    margin,
    use_rank_weight,
    learning_rate,
    max_norm,
    rng_states,
    block,
    gradients,
    marks,
    mark_limit,
    sampling,
):
    """SGD steps on the pairs at positions ``block_start:block_stop``.

    Returns the block's summed loss; advances ``rng_states[block]``.
    """
    rng_state = rng_states[block]
    loss = np.float32(0.0)
    for position in range(block_start, block_stop):
        pair = pair_order[position]
        user_index = row_of_entry(indptr, pair)
        positive_item = indices[pair]
        user_start = indptr[user_index]
        user_stop = indptr[user_index + 1]
        stamp = -1
        if user_stop - user_start <= mark_limit:
            # The position is unique within the chunk: marks[j] == stamp
            # then means that j is a positive of this user.
            stamp = position
            for seen in range(user_start, user_stop):
                marks[indices[seen]] = stamp
        hardest_item, weight, pair_loss, rng_state = sample_impostor(
            user_embeddings[user_index],
            item_embeddings[positive_item],
            user_start,
            user_stop,
            indices,
            marks,
            stamp,
            item_embeddings,
            n_negatives,
            margin,
            use_rank_weight,
            rng_state,
            sampling,
        )
        if hardest_item < 0:
            continue
        loss += pair_loss
        update_triplet(
            user_embeddings,
            user_grad_sq,
            user_index,
            item_embeddings,
            item_grad_sq,
            positive_item,
            hardest_item,
            weight,
            learning_rate,
            max_norm,
            gradients,
        )
    rng_states[block] = rng_state
    return loss


@njit(cache=NUMBA_CACHE, parallel=True, fastmath=FASTMATH, error_model="numpy")
def fold_in_users(
    indptr,
    indices,
    item_embeddings,
    user_embeddings,
    user_grad_sq,
    n_epochs,
    n_negatives,
    margin,
    use_rank_weight,
    learning_rate,
    max_norm,
    rng_states,
    gradients,
    sampling,
):
    """Optimise new users' vectors against frozen item vectors.

    Row ``r`` of the CSR arrays is a new user's history; ``user_embeddings``
    holds each user's starting point and is updated in place, with its
    AdaGrad state in ``user_grad_sq``.  Each epoch takes one step per
    positive, drawn with replacement from the row with the row's own RNG
    state ``rng_states[r]``, so a row's result depends only on its content
    and seed, never on the other rows or on the thread count.  ``gradients``
    is an (n_rows, n_components) scratch buffer; ``sampling`` is as in
    ``sample_impostor``.
    """
    n_rows = indptr.shape[0] - 1
    for row in prange(n_rows):
        start = indptr[row]
        stop = indptr[row + 1]
        n_positives = stop - start
        if n_positives == 0:
            continue
        rng_state = rng_states[row]
        for _ in range(n_epochs * n_positives):
            rng_state, offset = random_below(rng_state, n_positives)
            position = start + offset
            positive = item_embeddings[indices[position]]
            hardest_item, weight, _, rng_state = sample_impostor(
                user_embeddings[row],
                positive,
                start,
                stop,
                indices,
                indices,  # no marks: binary search
                -1,
                item_embeddings,
                n_negatives,
                margin,
                use_rank_weight,
                rng_state,
                sampling,
            )
            if hardest_item >= 0:
                # The user's part of triplet_gradients: items are frozen.
                negative = item_embeddings[hardest_item]
                gradient = gradients[row]
                scale = np.float32(2.0) * weight
                for d in range(gradient.shape[0]):
                    gradient[d] = scale * (negative[d] - positive[d])
                adagrad_step(
                    user_embeddings[row], user_grad_sq, row, gradient, learning_rate, max_norm
                )


@njit(cache=NUMBA_CACHE)
def shuffle_pairs(order, seed):
    """Fill ``order`` with a uniform random permutation of ``0..len - 1``.

    Inside-out Fisher-Yates in place (no temporary), driven by a state
    derived from ``seed`` alone, so the order of an epoch depends only on
    the seed it is given.
    """
    state = splitmix64(np.uint64(seed)) | np.uint64(1)
    for i in range(order.shape[0]):
        state, j = random_below(state, i + 1)
        order[i] = order[j]
        order[j] = i


@njit(cache=NUMBA_CACHE)
def row_hash_states(indptr, indices, seed):
    """One RNG state per CSR row, a hash of ``seed`` and the row's items.

    Two rows with the same items get the same state, wherever they sit in a
    matrix: results computed from them do not depend on row order or on
    which other rows are in the batch.
    """
    n_rows = indptr.shape[0] - 1
    states = np.empty(n_rows, dtype=np.uint64)
    for row in range(n_rows):
        state = splitmix64(np.uint64(seed))
        for position in range(indptr[row], indptr[row + 1]):
            state = splitmix64(state ^ np.uint64(indices[position]))
        states[row] = state if state != np.uint64(0) else np.uint64(1)
    return states


@njit(cache=NUMBA_CACHE)
def holdout_mask(indptr, indices, seed, fraction):
    """Mark a deterministic ``fraction`` of each row's entries as held out.

    Rows with at least two entries hold out ``max(1, round(fraction * n))``
    entries, keeping at least one; the choice (the entries with the smallest
    hash of ``(row state, item)``) depends only on the row's items.
    """
    states = row_hash_states(indptr, indices, seed)
    held_out = np.zeros(indices.shape[0], dtype=np.bool_)
    max_entries = 0
    for row in range(indptr.shape[0] - 1):
        max_entries = max(max_entries, indptr[row + 1] - indptr[row])
    keys = np.empty(max_entries, dtype=np.uint64)
    for row in range(indptr.shape[0] - 1):
        start = indptr[row]
        n_entries = indptr[row + 1] - start
        if n_entries < 2:
            continue
        n_held = min(max(1, int(round(fraction * n_entries))), n_entries - 1)
        for offset in range(n_entries):
            keys[offset] = splitmix64(states[row] ^ np.uint64(indices[start + offset]))
        for offset in np.argsort(keys[:n_entries])[:n_held]:
            held_out[start + offset] = True
    return held_out


@njit(cache=NUMBA_CACHE, parallel=True)
def broken_rows(array):
    """``(non_finite, zero)``: rows of a 2-d array holding NaN or infinity,
    and rows that are exactly zero (no temporary array).

    A vector trained from a random start is never exactly zero: a zero row
    means that a step overflowed float32, and the projection into the ball
    then scaled the vector by 0.
    """
    n_non_finite = 0
    n_zero = 0
    for row in prange(array.shape[0]):
        finite = True
        zero = True
        for d in range(array.shape[1]):
            value = array[row, d]
            finite = finite and np.isfinite(value)
            zero = zero and value == 0.0
        n_non_finite += not finite
        n_zero += zero
    return n_non_finite, n_zero


@njit(cache=NUMBA_CACHE, parallel=True, fastmath=FASTMATH)
def update_running_mean(mean, vectors, count):
    """Fold ``vectors``, the ``count``-th sample, into their running ``mean``, in place.

    ``mean += (vectors - mean) / count``, without a temporary array.
    """
    weight = np.float32(1.0 / count)
    for row in prange(mean.shape[0]):
        for d in range(mean.shape[1]):
            mean[row, d] += weight * (vectors[row, d] - mean[row, d])
