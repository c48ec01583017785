"""The block solver: a user's pairs in dense blocks against one shared pool of negatives.

A step works on a *block* of about ``block_size`` training pairs and one
*pool* of ``pool_size`` items drawn from the sampler, shared by the whole
block.  The block's pairs are merged by user into *slots* (one per distinct
user), so what depends only on (user, pool item) is computed once per slot:

    D[s, n] = |u_s|^2 + |v_n|^2 - 2 (U V^T)[s, n]          (BLAS, S x N x K)

The solver masks each slot's own training items (``D = +inf``), computes
the distances ``d_b = |u - p_b|^2`` to the slot's positives, and the loss's
weights function (``_losses.weigh_row``, one slot at a time) turns the row
of distances, in place, into the weights ``W[s, n] = dL/dD[s, n]``, and
fills, for each pair ``b`` of the slot, ``pair_coef[b] = dL/dd_b``.
With ``dD/du = 2 (u - v)`` the gradients are then

    grad u_s = 2 [(sum_n W[s, n] + sum_b c_b) u_s - (W V)[s] - sum_b c_b p_b]
    grad v_n = 2 [(sum_s W[s, n]) v_n - (W^T U)[n]]            (pool role)
    grad p_b = 2 c_b (p_b - u_s)                                 (positive role)

two more BLAS products.  Users take their AdaGrad steps first (reading the
items' old vectors), then each distinct item of the block takes one step
with all its contributions summed in a fixed order.

Threads: the user side runs by row chunks of the block (``U V^T``, the loss
rows, ``W V``, the users' steps), ``W^T U`` by column chunks (pool entries,
with all the block's slots as the inner dimension), and the items' steps by
item chunks; each chunk calls BLAS on one thread.  The chunks depend on the
block's shape, never on the threads, and no two threads write the same
number, so training is bitwise reproducible for a fixed ``random_state``,
whatever the number of threads.

Masking a user's items costs ``deg(u) + N`` per slot: an inverse map of the
pool (item -> its pool entries) is built once per block, valid while the
item's stamp is the block's, so nothing is ever cleared.

Each pair carries its weight (mean 1 over the training pairs; all ones
without weights) from the plan to the loss's row, which multiplies the
pair's term by it: ``c_b`` and the pair's share of ``W`` scale with it.

Fold-in (``_fold_in``) places a new user by the same step on a block of one
slot, against a fresh pool per step, with the items frozen.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .._losses import LossRow, RowScratch, weigh_row
from .._numba_config import FASTMATH, NUMBA_CACHE
from .._rng import random_below, shuffle_row_weighted, splitmix64, stream_seed
from .._sampling import draw, inverse_probability
from .._steps import Optimizer, adagrad_step, squared_distance
from ._base import Solver, compiled_for
from .hogwild import user_groups

# Chunks of a block: the units of parallel work.  Sized from the block, never
# from the threads, so that results do not depend on the number of threads.
# A row chunk holds at least MIN_CHUNK_ROWS slots: BLAS runs small products
# far below its peak (8 chunks of 9 rows took 2.7x the time of one of 72).
N_CHUNKS = 8
MIN_CHUNK_ROWS = 32


class BlockPlan(NamedTuple):
    """How one epoch's pairs are cut into blocks and slots (``make_plan``)."""

    block_ptr: np.ndarray  # int64: block k holds slots block_ptr[k]:block_ptr[k + 1]
    slot_user: np.ndarray  # int32: the user of each slot
    slot_ptr: np.ndarray  # int64: slot s holds pairs slot_ptr[s]:slot_ptr[s + 1]
    pair_item: np.ndarray  # int32: the positive item of each pair
    pair_weight: np.ndarray  # float32: the weight of each pair


class Pool(NamedTuple):
    """One block's negatives, and where each item sits among them."""

    items: np.ndarray  # int32 (pool_size,)
    counts: np.ndarray  # float32: how many catalogue items an entry stands for
    log_counts: np.ndarray  # float32: their logarithms (the logQ correction)
    head: np.ndarray  # int32 (n_items,): an item's first entry (valid when stamped)
    next: np.ndarray  # int32 (pool_size,): the item's next entry, -1 at the end
    stamp: np.ndarray  # int64 (n_items,): the block that last stamped the item


class Workspace(NamedTuple):
    """Buffers of a step, sized for the largest block."""

    products: np.ndarray  # float32 (max_slots * pool_size,): U V^T, then D, then W
    users: np.ndarray  # float32 (max_slots, K): the slots' user vectors
    user_sq: np.ndarray  # float32 (max_slots,)
    pool_vectors: np.ndarray  # float32 (pool_size, K)
    pool_sq: np.ndarray  # float32 (pool_size,)
    weighted_pool: np.ndarray  # float32 (max_slots, K): W V
    weighted_users: np.ndarray  # float32 (pool_size, K): W^T U
    column_sums: np.ndarray  # float32 (pool_size,): sum_s W
    columns: np.ndarray  # float32 (max_slots * pool_size,): W by column chunk
    row_sums: np.ndarray  # float32 (max_slots,)
    slot_losses: np.ndarray  # float32 (max_slots,)
    row_scratch: np.ndarray  # float32 (N_CHUNKS, pool_size): a loss row's scratch
    bits: np.ndarray  # int32 (N_CHUNKS, pool_size): a loss row's integer scratch
    gradients: np.ndarray  # float32 (N_CHUNKS, K)
    pair_distances: np.ndarray  # float32 (N_CHUNKS, largest slot): |u - p_b|^2


class ItemPlan(NamedTuple):
    """A block's distinct items and, for each, its pairs (``plan_items``)."""

    pair_head: np.ndarray  # int64 (n_items,): an item's first pair (valid when stamped)
    pair_next: np.ndarray  # int64 (max_pairs,)
    pair_stamp: np.ndarray  # int64 (n_items,)
    pair_slot: np.ndarray  # int64 (max_pairs,): the block-local slot of each pair
    unique_items: np.ndarray  # int64 (pool_size + max_pairs,)


# ------------------------------------------------------------------ the plan


@njit(cache=NUMBA_CACHE)
def _shuffled_groups(indptr, indices, weights, group_size, seed):
    """Each user's items shuffled and cut into groups of ``group_size``;
    returns the shuffled items and their weights, each group's first pair
    and user, and a random order of the groups."""
    state = splitmix64(np.uint64(seed)) | np.uint64(1)
    shuffled = np.empty(indices.shape[0], dtype=np.int32)
    shuffled_weights = np.empty(indices.shape[0], dtype=np.float32)
    for row in range(indptr.shape[0] - 1):
        state = shuffle_row_weighted(state, indices, weights, shuffled, shuffled_weights,
                                     indptr[row], indptr[row + 1])
    group_start, group_user = user_groups(indptr, group_size)
    n_groups = group_start.shape[0]
    order = np.empty(n_groups, dtype=np.int64)
    for i in range(n_groups):
        state, j = random_below(state, i + 1)
        order[i] = order[j]
        order[j] = i
    return shuffled, shuffled_weights, group_start, group_user, order


@njit(cache=NUMBA_CACHE)
def make_plan(indptr, indices, weights, group_size, block_size, seed):
    """Cut one epoch's pairs into blocks of slots, at random (``BlockPlan``).

    Each user's items are shuffled and cut into groups of ``group_size``
    (``group_size=0``: all of them in one group); the groups are shuffled
    and dealt in order into blocks of at least ``block_size`` pairs (the
    last one may be smaller).  Within a block, the groups of one user are
    merged into one slot.  Each pair keeps its weight (``weights``,
    aligned with ``indices``).  Everything depends on ``seed`` alone.
    """
    n_users = indptr.shape[0] - 1
    n_pairs = indices.shape[0]
    if group_size <= 0:
        group_size = n_pairs + 1
    shuffled, shuffled_weights, group_start, group_user, order = _shuffled_groups(
        indptr, indices, weights, group_size, seed)
    n_groups = order.shape[0]
    block_ptr = np.zeros(n_groups + 1, dtype=np.int64)
    slot_user = np.empty(n_groups, dtype=np.int32)
    slot_ptr = np.zeros(n_groups + 1, dtype=np.int64)
    pair_item = np.empty(n_pairs, dtype=np.int32)
    pair_weight = np.empty(n_pairs, dtype=np.float32)
    slot_of_user = np.full(n_users, -1, dtype=np.int64)
    block_of_user = np.full(n_users, -1, dtype=np.int64)
    cursor = np.empty(n_groups, dtype=np.int64)
    n_blocks = 0
    n_slots = 0
    first = 0
    while first < n_groups:
        size = 0
        last = first
        while last < n_groups and size < block_size:
            g = order[last]
            size += min(group_start[g] + group_size, indptr[group_user[g] + 1]) - group_start[g]
            last += 1
        slot_base = n_slots
        for i in range(first, last):
            g = order[i]
            user = group_user[g]
            if block_of_user[user] != n_blocks:
                block_of_user[user] = n_blocks
                slot_of_user[user] = n_slots
                slot_user[n_slots] = user
                slot_ptr[n_slots + 1] = 0
                n_slots += 1
            stop = min(group_start[g] + group_size, indptr[user + 1])
            slot_ptr[slot_of_user[user] + 1] += stop - group_start[g]
        for s in range(slot_base, n_slots):
            slot_ptr[s + 1] += slot_ptr[s]
            cursor[s] = slot_ptr[s]
        for i in range(first, last):
            g = order[i]
            user = group_user[g]
            s = slot_of_user[user]
            for p in range(group_start[g], min(group_start[g] + group_size, indptr[user + 1])):
                pair_item[cursor[s]] = shuffled[p]
                pair_weight[cursor[s]] = shuffled_weights[p]
                cursor[s] += 1
        n_blocks += 1
        block_ptr[n_blocks] = n_slots
        first = last
    return BlockPlan(block_ptr[: n_blocks + 1].copy(), slot_user[:n_slots].copy(),
                     slot_ptr[: n_slots + 1].copy(), pair_item, pair_weight)


# ------------------------------------------------------------------ the pool


@njit(cache=NUMBA_CACHE, fastmath=FASTMATH, error_model="numpy")
def draw_pool(rng_state, sampler, n_items, pool, block_stamp):
    """Fill ``pool`` with draws from ``sampler``; returns the advanced state.

    ``counts[n] = n_items * inverse_probability / pool_size``: how many items
    of the catalogue entry ``n`` stands for (the softmax's logQ correction
    and the hinge's rank estimate).  Also builds the pool's inverse map.
    """
    n_pool = pool.items.shape[0]
    for n in range(n_pool):
        rng_state, item = draw(sampler, rng_state)
        pool.items[n] = item
    for n in range(n_pool - 1, -1, -1):
        item = pool.items[n]
        count = n_items * inverse_probability(sampler, item) / n_pool
        pool.counts[n] = count
        pool.log_counts[n] = math.log(count)
        if pool.stamp[item] != block_stamp:
            pool.stamp[item] = block_stamp
            pool.head[item] = -1
        pool.next[n] = pool.head[item]
        pool.head[item] = n
    return rng_state


@njit(cache=NUMBA_CACHE, fastmath=FASTMATH, error_model="numpy")
def gather_rows(embeddings, rows, out, sq_norms):
    """``out[n] = embeddings[rows[n]]`` and its squared norm, for each row."""
    for n in range(rows.shape[0]):
        source, target = embeddings[rows[n]], out[n]
        for d in range(source.shape[0]):
            target[d] = source[d]
        # Summed in a loop that stores nothing (see _numba_config).
        total = np.float32(0.0)
        for d in range(target.shape[0]):
            total += target[d] * target[d]
        sq_norms[n] = total


@njit(cache=NUMBA_CACHE, inline="always")
def mask_user(row, user, indptr, indices, pool, block_stamp):
    """``row[n] = +inf`` for the pool entries that are the user's own items."""
    for p in range(indptr[user], indptr[user + 1]):
        item = indices[p]
        if pool.stamp[item] == block_stamp:
            n = pool.head[item]
            while n >= 0:
                row[n] = np.inf
                n = pool.next[n]


# ------------------------------------------------------------ the loss rows


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def slot_weights(parameters, row, user_sq, pool_sq, user, user_vector, interactions, pool,
                 block_stamp, pairs, pair_weights, item_embeddings, pair_distances, pair_coef,
                 scratch):
    """The loss's weights of one slot: ``row`` holds ``U V^T`` of the slot's
    user against the pool on entry, ``W = dL/dD`` on return, and
    ``pair_coef`` receives ``dL/dd_b``; returns ``(sum of W, loss)``.

    The products become squared distances, ``|u|^2 + |v|^2 - 2 u.v``; the
    user's own items are masked; ``pair_distances`` receives the distances
    to the slot's positives.
    """
    for n in range(row.shape[0]):
        row[n] = user_sq + pool_sq[n] - np.float32(2.0) * row[n]
    indptr = interactions.indptr
    mask_user(row, user, indptr, interactions.indices, pool, block_stamp)
    n_pairs = pairs.shape[0]
    for b in range(n_pairs):
        pair_distances[b] = squared_distance(user_vector, item_embeddings[pairs[b]])
    loss_row = LossRow(pair_distances[:n_pairs], pair_weights, row, pool.counts, pool.log_counts,
                       indptr[user + 1] - indptr[user], item_embeddings.shape[0])
    return weigh_row(parameters, loss_row, pair_coef, scratch)


# ------------------------------------------------------------ the user side


@njit(cache=NUMBA_CACHE, inline="always")
def row_chunks(n_slots):
    """Row chunks of a block of ``n_slots`` slots (at least MIN_CHUNK_ROWS
    rows each, at most N_CHUNKS chunks)."""
    return max(1, min(N_CHUNKS, n_slots // MIN_CHUNK_ROWS))


@njit(cache=NUMBA_CACHE, parallel=True)
def user_side(parameters, n_slots, slot_base, plan, pool, n_pool, interactions, embeddings,
              optimizer, workspace, pair_coef, block_stamp):
    """Products, loss rows and the users' steps of one block.

    Per row chunk of the block's slots: ``U V^T`` (BLAS), the distances,
    the masking and the loss rows (``W`` in place), ``W V`` and the AdaGrad
    step of each slot's user (the users of a block are distinct).  Then per
    column chunk: the column sums of ``W`` and ``W^T U`` (BLAS, from the
    users' vectors before their steps).
    """
    n_rows = row_chunks(n_slots)
    for chunk in prange(n_rows):
        _user_chunk(np.int64(chunk), n_rows, parameters, n_slots, slot_base, plan, pool, n_pool,
                    interactions, embeddings, optimizer, workspace, pair_coef, block_stamp)
    for chunk in prange(N_CHUNKS):
        _column_chunk(np.int64(chunk), n_slots, n_pool, workspace)


@njit(cache=NUMBA_CACHE, fastmath=FASTMATH, error_model="numpy")
def _user_chunk(chunk, n_chunks, parameters, n_slots, slot_base, plan, pool, n_pool,
                interactions, embeddings, optimizer, workspace, pair_coef, block_stamp):
    """One row chunk of ``user_side`` (a plain function: see hogwild.py)."""
    first = chunk * n_slots // n_chunks
    last = (chunk + 1) * n_slots // n_chunks
    products = workspace.products[: n_slots * n_pool].reshape(n_slots, n_pool)[first:last]
    users = workspace.users[first:last]
    pool_vectors = workspace.pool_vectors[:n_pool]
    np.dot(users, pool_vectors.T, products)
    for s in range(first, last):
        slot = slot_base + s
        pair_start, pair_stop = plan.slot_ptr[slot], plan.slot_ptr[slot + 1]
        total, loss = slot_weights(
            parameters, products[s - first], workspace.user_sq[s], workspace.pool_sq,
            plan.slot_user[slot], workspace.users[s], interactions, pool, block_stamp,
            plan.pair_item[pair_start:pair_stop], plan.pair_weight[pair_start:pair_stop],
            embeddings.items, workspace.pair_distances[chunk], pair_coef[pair_start:pair_stop],
            RowScratch(workspace.row_scratch[chunk], workspace.bits[chunk]),
        )  # fmt: skip
        workspace.row_sums[s] = total
        workspace.slot_losses[s] = loss
    np.dot(products, pool_vectors, workspace.weighted_pool[first:last])
    for s in range(first, last):
        slot = slot_base + s
        pair_start, pair_stop = plan.slot_ptr[slot], plan.slot_ptr[slot + 1]
        _user_step(embeddings, plan.slot_user[slot], workspace.users[s],
                   workspace.weighted_pool[s], workspace.row_sums[s],
                   plan.pair_item[pair_start:pair_stop], pair_coef[pair_start:pair_stop],
                   optimizer)


@njit(cache=NUMBA_CACHE, fastmath=FASTMATH, error_model="numpy")
def _column_chunk(chunk, n_slots, n_pool, workspace):
    """One column chunk of ``user_side``: ``W[:, first:last]`` copied into a
    contiguous block (BLAS takes no strided matrix), its column sums and
    ``(W^T U)[first:last]``, with every slot as the inner dimension."""
    first = chunk * n_pool // N_CHUNKS
    last = (chunk + 1) * n_pool // N_CHUNKS
    width = last - first
    if width == 0:
        return
    weights = workspace.products[: n_slots * n_pool].reshape(n_slots, n_pool)
    columns = workspace.columns[n_slots * first: n_slots * last].reshape(n_slots, width)
    sums = workspace.column_sums[first:last]
    sums[:] = 0.0
    # Two loops over 1-d slices: fused into one, LLVM does not vectorise
    # them (4x slower).
    for s in range(n_slots):
        source, target = weights[s, first:last], columns[s]
        for n in range(width):
            target[n] = source[n]
        for n in range(width):
            sums[n] += source[n]
    np.dot(columns.T, workspace.users[:n_slots], workspace.weighted_users[first:last])


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def _user_step(embeddings, user, u, weighted, row_sum, pairs, coefs, optimizer):
    """AdaGrad step of one slot's user; ``weighted`` (its ``W V`` row) is
    overwritten with the gradient ``2 [(sum_n W + sum_b c_b) u - W V -
    sum_b c_b p_b]``.  Reads the positives' old vectors."""
    coef_sum = np.float32(0.0)
    for d in range(u.shape[0]):
        weighted[d] = -weighted[d]
    for b in range(pairs.shape[0]):
        c = coefs[b]
        if c != 0.0:
            coef_sum += c
            p = embeddings.items[pairs[b]]
            for d in range(u.shape[0]):
                weighted[d] -= c * p[d]
    total = row_sum + coef_sum
    for d in range(u.shape[0]):
        weighted[d] = np.float32(2.0) * (weighted[d] + total * u[d])
    adagrad_step(embeddings.users[user], embeddings.user_grad_sq, user, weighted,
                 optimizer.learning_rate, optimizer.max_norm)


# ------------------------------------------------------------ the item side


@njit(cache=NUMBA_CACHE)
def plan_items(pool, n_pool, plan, slot_first, slot_last, item_plan, block_stamp):
    """The block's distinct items (pool entries first, then positives, by
    first appearance) and the inverse map of its pairs; returns their number."""
    pair_start = plan.slot_ptr[slot_first]
    pair_stop = plan.slot_ptr[slot_last]
    for s in range(slot_first, slot_last):
        for b in range(plan.slot_ptr[s], plan.slot_ptr[s + 1]):
            item_plan.pair_slot[b - pair_start] = s - slot_first
    n_unique = 0
    for n in range(n_pool):
        item = pool.items[n]
        if item_plan.pair_stamp[item] != block_stamp:
            item_plan.pair_stamp[item] = block_stamp
            item_plan.pair_head[item] = -1
            item_plan.unique_items[n_unique] = item
            n_unique += 1
    for b in range(pair_stop - 1, pair_start - 1, -1):
        item = plan.pair_item[b]
        if item_plan.pair_stamp[item] != block_stamp:
            item_plan.pair_stamp[item] = block_stamp
            item_plan.pair_head[item] = -1
        item_plan.pair_next[b - pair_start] = item_plan.pair_head[item]
        item_plan.pair_head[item] = b
    for b in range(pair_start, pair_stop):
        item = plan.pair_item[b]
        if pool.stamp[item] != block_stamp and item_plan.pair_head[item] == b:
            item_plan.unique_items[n_unique] = item  # a positive that is not in the pool
            n_unique += 1
    return n_unique


@njit(cache=NUMBA_CACHE, parallel=True)
def item_side(n_unique, pair_start, pool, plan, item_plan, workspace, pair_coef, embeddings,
              optimizer, block_stamp):
    """One AdaGrad step per distinct item of the block, items in parallel.

    An item's gradient sums its pool entries' ``2 (colsum_n v_n - (W^T U)[n])``
    and its pairs' ``2 c_b (p_b - u_s)``,
    each list walked in block order: the result does not depend on the
    threads.  Items with no contribution are not stepped.
    """
    for chunk in prange(N_CHUNKS):
        _item_chunk(np.int64(chunk), n_unique, pair_start, pool, plan, item_plan, workspace,
                    pair_coef, embeddings, optimizer, block_stamp)


@njit(cache=NUMBA_CACHE, fastmath=FASTMATH, error_model="numpy")
def _item_chunk(chunk, n_unique, pair_start, pool, plan, item_plan, workspace, pair_coef,
                embeddings, optimizer, block_stamp):
    """The items of one chunk of ``item_side`` (a plain function: see hogwild.py)."""
    gradient = workspace.gradients[chunk]
    items = embeddings.items
    for k in range(chunk * n_unique // N_CHUNKS, (chunk + 1) * n_unique // N_CHUNKS):
        item = item_plan.unique_items[k]
        gradient[:] = 0.0
        touched = False
        if pool.stamp[item] == block_stamp:
            n = pool.head[item]
            while n >= 0:
                column_sum = workspace.column_sums[n]
                if column_sum != 0.0:
                    touched = True
                    v = workspace.pool_vectors[n]
                    weighted = workspace.weighted_users[n]
                    for d in range(gradient.shape[0]):
                        gradient[d] += np.float32(2.0) * (column_sum * v[d] - weighted[d])
                n = pool.next[n]
        if item_plan.pair_stamp[item] == block_stamp:
            p = items[item]
            b = item_plan.pair_head[item]
            while b >= 0:
                coef = pair_coef[b]
                if coef != 0.0:
                    touched = True
                    u = workspace.users[item_plan.pair_slot[b - pair_start]]
                    scale = np.float32(2.0) * coef
                    for d in range(gradient.shape[0]):
                        gradient[d] += scale * (p[d] - u[d])
                b = item_plan.pair_next[b - pair_start]
        if touched:
            adagrad_step(items[item], embeddings.item_grad_sq, item, gradient,
                         optimizer.learning_rate, optimizer.max_norm)


# ------------------------------------------------------------------ fold-in


class BlockStepper(NamedTuple):
    """Per-thread buffers of the step that places new users (``_fold_in``)."""

    # Each slot's pool, field by field (a NamedTuple within one cannot be
    # passed to a parallel loop): the fields of ``Pool``, one row per slot.
    pool_items: np.ndarray
    pool_counts: np.ndarray
    pool_log_counts: np.ndarray
    pool_head: np.ndarray
    pool_next: np.ndarray
    pool_stamp: np.ndarray
    stamps: np.ndarray  # int64 (n_slots,): each slot's last pool stamp
    distances: np.ndarray  # float32 (n_slots, pool_size): U V^T, then W
    pool_vectors: np.ndarray  # float32 (n_slots, pool_size, K)
    pool_sq: np.ndarray  # float32 (n_slots, pool_size)
    row_scratch: np.ndarray  # float32 (n_slots, pool_size)
    bits: np.ndarray  # int32 (n_slots, pool_size)
    pair_distances: np.ndarray  # float32 (n_slots, largest row)
    pair_coef: np.ndarray  # float32 (n_slots, largest row)
    gradient: np.ndarray  # float32 (n_slots, K)


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def frozen_block_step(stepper, slot, parameters, sampler, user, pairs, pair_weights,
                      interactions, embeddings, optimizer, rng_state):
    """``_fold_in.frozen_step`` for this solver: a block of one slot against
    a fresh pool (the products are matrix-vector ones), items frozen."""
    pool = Pool(stepper.pool_items[slot], stepper.pool_counts[slot],
                stepper.pool_log_counts[slot], stepper.pool_head[slot],
                stepper.pool_next[slot], stepper.pool_stamp[slot])
    stepper.stamps[slot] += 1
    stamp = stepper.stamps[slot]
    items = embeddings.items
    rng_state = draw_pool(rng_state, sampler, items.shape[0], pool, stamp)
    pool_vectors, pool_sq = stepper.pool_vectors[slot], stepper.pool_sq[slot]
    gather_rows(items, pool.items, pool_vectors, pool_sq)
    user_vector = embeddings.users[user]
    user_sq = np.float32(0.0)
    for d in range(user_vector.shape[0]):
        user_sq += user_vector[d] * user_vector[d]
    row = stepper.distances[slot]
    np.dot(pool_vectors, user_vector, row)
    coefs = stepper.pair_coef[slot][: pairs.shape[0]]
    total, _ = slot_weights(
        parameters, row, user_sq, pool_sq, user, user_vector, interactions, pool, stamp,
        pairs, pair_weights, items, stepper.pair_distances[slot], coefs,
        RowScratch(stepper.row_scratch[slot], stepper.bits[slot]),
    )  # fmt: skip
    weighted = stepper.gradient[slot]
    np.dot(row, pool_vectors, weighted)
    _user_step(embeddings, user, user_vector, weighted, total, pairs, coefs, optimizer)
    return rng_state


# --------------------------------------------------------------- Python side

# The block's positives are grouped by user: a group shares its user's row of
# distances and the user's step.  0: all of a user's items form one group,
# so each user takes one step per epoch.
GROUP_SIZE = 0


def _largest_group(indptr):
    """The most pairs one group can hold (one user's items when GROUP_SIZE is 0)."""
    largest_row = int(np.diff(indptr).max()) if indptr.shape[0] > 1 else 0
    return largest_row if GROUP_SIZE <= 0 else min(GROUP_SIZE, largest_row)


def _empty_pool(pool_size, n_items, leading=()):
    return Pool(np.empty((*leading, pool_size), np.int32),
                np.empty((*leading, pool_size), np.float32),
                np.empty((*leading, pool_size), np.float32),
                np.full((*leading, n_items), -1, np.int32),
                np.empty((*leading, pool_size), np.int32),
                np.full((*leading, n_items), -1, np.int64))


def _workspace(max_slots, pool_size, n_components, largest_group):
    """A step's buffers for blocks of up to ``max_slots`` slots, of at most
    ``largest_group`` pairs each: two ``max_slots x pool_size`` float32
    matrices (the weights and their column chunks) dominate; the rest is
    O((max_slots + pool_size) n_components)."""
    return Workspace(
        np.empty(max_slots * pool_size, np.float32),
        np.empty((max_slots, n_components), np.float32), np.empty(max_slots, np.float32),
        np.empty((pool_size, n_components), np.float32),
        np.empty(pool_size, np.float32), np.empty((max_slots, n_components), np.float32),
        np.empty((pool_size, n_components), np.float32), np.empty(pool_size, np.float32),
        np.empty(max_slots * pool_size, np.float32), np.empty(max_slots, np.float32),
        np.empty(max_slots, np.float32), np.empty((N_CHUNKS, pool_size), np.float32),
        np.empty((N_CHUNKS, pool_size), np.int32), np.empty((N_CHUNKS, n_components), np.float32),
        np.empty((N_CHUNKS, largest_group), np.float32),
    )  # fmt: skip


def make_epoch(config, data, weights, sampler, reference_count, between_chunks):
    """A function running one epoch on a training state: ``run(state, block_losses)``."""
    n_items, pool_size, block_size = data.n_items, config.pool_size, config.block_size
    n_components, loss = config.n_components, config.loss
    largest_group = _largest_group(data.indptr)
    # A block holds at most block_size pairs plus one group, and never more
    # than the data: a huge block_size costs no memory.
    max_pairs = min(block_size + largest_group, data.n_interactions)
    # Sized by the most slots of a block in the epoch's plan, grown when a
    # later plan has more.
    work = _workspace(0, pool_size, n_components, largest_group)
    pool = _empty_pool(pool_size, n_items)
    item_plan = ItemPlan(np.full(n_items, -1, np.int64), np.empty(max_pairs, np.int64),
                         np.full(n_items, -1, np.int64), np.empty(max_pairs, np.int64),
                         np.empty(pool_size + max_pairs, np.int64))
    pair_coef = np.zeros(data.n_interactions, np.float32)
    parameters = loss.parameters(config, reference_count, True)
    optimizer = Optimizer(np.float32(config.learning_rate), np.float32(config.max_norm))
    run_user_side = compiled_for(user_side, loss, CALLS, "block")
    interval = config.covariance_interval
    stamp = 0  # the last block's, across epochs: the maps are never cleared

    def run(state, block_losses):
        nonlocal work, stamp
        plan = make_plan(data.indptr, data.indices, weights, GROUP_SIZE, block_size,
                         stream_seed(state.seed, "pair order", state.n_iter))
        embeddings = state.embeddings()
        max_slots = int(np.diff(plan.block_ptr).max(initial=0))
        if max_slots > work.users.shape[0]:
            work = _workspace(max_slots, pool_size, n_components, largest_group)
        rng_state = state.rng_states[0]
        since_covariance = 0
        for block in range(plan.block_ptr.shape[0] - 1):
            first, last = plan.block_ptr[block], plan.block_ptr[block + 1]
            n_slots = last - first
            stamp += 1
            # Numba returns a uint64 as a Python int: retyped for the next call.
            rng_state = np.uint64(draw_pool(rng_state, sampler, n_items, pool, stamp))
            gather_rows(state.user_embeddings, plan.slot_user[first:last],
                        work.users, work.user_sq)
            gather_rows(state.item_embeddings, pool.items, work.pool_vectors,
                        work.pool_sq)
            run_user_side(parameters, n_slots, first, plan, pool, pool_size, data, embeddings,
                          optimizer, work, pair_coef, stamp)
            with np.errstate(over="ignore"):  # a diverging loss: the engine names the cause
                block_losses[block % block_losses.shape[0]] += work.slot_losses[:n_slots].sum()
            n_unique = plan_items(pool, pool_size, plan, first, last, item_plan, stamp)
            item_side(n_unique, plan.slot_ptr[first], pool, plan, item_plan, work,
                      pair_coef, embeddings, optimizer, stamp)
            # The covariance step after every covariance_interval pairs and
            # after the epoch's last block, as the per-pair solver does.
            since_covariance += plan.slot_ptr[last] - plan.slot_ptr[first]
            is_last = block == plan.block_ptr.shape[0] - 2
            if since_covariance >= interval or is_last:
                between_chunks(state)
                since_covariance = 0
        state.rng_states[0] = rng_state

    return run


def fold_in_step(config, data, n_items):
    """The block step's buffers for placing new users, and its group size."""
    n_threads, pool_size, n_components = config.n_threads, config.pool_size, config.n_components
    largest = max(_largest_group(data.indptr), 1)
    stepper = BlockStepper(
        *_empty_pool(pool_size, n_items, (n_threads,)), np.zeros(n_threads, np.int64),
        np.empty((n_threads, pool_size), np.float32),
        np.empty((n_threads, pool_size, n_components), np.float32),
        np.empty((n_threads, pool_size), np.float32), np.empty((n_threads, pool_size), np.float32),
        np.empty((n_threads, pool_size), np.int32), np.empty((n_threads, largest), np.float32),
        np.empty((n_threads, largest), np.float32), np.empty((n_threads, n_components), np.float32),
    )  # fmt: skip
    return stepper, GROUP_SIZE


# The chains down to ``weigh_row``, copied for each loss (``_base.compiled_for``).
CALLS = {
    user_side: {"_user_chunk": _user_chunk},
    _user_chunk: {"slot_weights": slot_weights},
    frozen_block_step: {"slot_weights": slot_weights},
}


SOLVER = Solver(name="block", make_epoch=make_epoch, fold_in_step=fold_in_step,
                frozen_step=frozen_block_step, calls=CALLS, shared_negatives=True,
                epoch_kernels=lambda loss: (compiled_for(user_side, loss, CALLS, "block"),
                                            item_side, draw_pool))
