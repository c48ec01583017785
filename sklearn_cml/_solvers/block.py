"""The block solver: a user's pairs in dense blocks against one shared pool of negatives.

A step works on a *block* of about ``block_size`` training pairs and one
*pool* of ``pool_size`` items drawn from the sampler, shared by the whole
block.  The block's pairs are merged by user into *slots* (one per distinct
user), so what depends only on (user, pool item) is computed once per slot:

    D[s, n] = |u_s|^2 + |v_n|^2 - 2 (U V^T)[s, n]          (BLAS, S x N x K)

The solver masks each slot's own training items (``D = +inf``) and the loss
(``Loss.block_row``, one slot at a time) turns the row of distances, in
place, into the weights ``W[s, n] = dL/dD[s, n]``, and fills, for each pair
``b`` of the slot, ``pair_coef[b] = dL/dd_b`` with ``d_b = |u - p_b|^2``.
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
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .._numba_config import FASTMATH, NUMBA_CACHE
from .._rng import random_below, shuffle_row_weighted, splitmix64, stream_seed
from .._sampling import draw, inverse_probability
from .._steps import Optimizer, adagrad_step
from ._base import Solver, covariance_interval, kernel_for, twins
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
        source = embeddings[rows[n]]
        total = np.float32(0.0)
        for d in range(source.shape[0]):
            out[n, d] = source[d]
            total += source[d] * source[d]
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


def block_row(parameters, distances, scratch, bits, pool, user, indptr, user_vector, pairs,
              pair_weights, item_embeddings, pair_coef, n_items):
    """One slot's loss against the pool (compiled code only).

    What a loss implements for this solver (``Loss.block_row``), chosen at
    compile time by the type of ``parameters``.

    Parameters
    ----------
    parameters : the loss's ``parameters_type``
    distances : float32 array of shape (pool_size,)
        In: squared distances from the user to the pool's items, ``+inf``
        for the user's own items.  Out: the weights ``dL/dD``.
    scratch, bits : float32 and int32 arrays of shape (pool_size,)
    pool : Pool
    user : int
    indptr : int64 array
        Of the user's training interactions (``indptr[user + 1] -
        indptr[user]`` is the user's number of items).
    user_vector : float32 array of shape (n_components,)
    pairs : int32 array
        The slot's positive items.
    pair_weights : float32 array of shape (len(pairs),)
        The weight of each pair (non-negative, mean 1 over the training
        pairs; all 1 when the model has no weights): each pair's term of
        the loss, and so its gradients, is multiplied by it.
    item_embeddings : float32 array
    pair_coef : float32 array of shape (len(pairs),)
        Out: ``dL/dd_b`` for each pair.
    n_items : int

    Returns
    -------
    weight_sum : float32
        ``sum_n distances[n]`` after the call.
    loss : float32
        The slot's loss.
    """
    raise NotImplementedError("block_row is compiled into the solver's kernels")


@overload(block_row, inline="always")
def _block_row(parameters, distances, scratch, bits, pool, user, indptr, user_vector, pairs,
               pair_weights, item_embeddings, pair_coef, n_items):
    from .._losses import LOSSES

    if not isinstance(parameters, types.BaseNamedTuple):
        return None
    rows = [loss.block_row for loss in LOSSES.values()
            if loss.parameters_type is parameters.instance_class and loss.block_row]
    if not rows:
        return None
    row_function = rows[0]

    def implementation(parameters, distances, scratch, bits, pool, user, indptr, user_vector,
                       pairs, pair_weights, item_embeddings, pair_coef, n_items):
        return row_function(parameters, distances, scratch, bits, pool, user, indptr,
                            user_vector, pairs, pair_weights, item_embeddings, pair_coef,
                            n_items)

    return implementation


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
        _user_chunk(chunk, n_rows, parameters, n_slots, slot_base, plan, pool, n_pool,
                    interactions, embeddings, optimizer, workspace, pair_coef, block_stamp)
    for chunk in prange(N_CHUNKS):
        _column_chunk(chunk, n_slots, n_pool, workspace)


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
        user = plan.slot_user[slot]
        row = products[s - first]
        user_sq = workspace.user_sq[s]
        for n in range(n_pool):
            row[n] = user_sq + workspace.pool_sq[n] - np.float32(2.0) * row[n]
        mask_user(row, user, interactions.indptr, interactions.indices, pool, block_stamp)
        pair_start, pair_stop = plan.slot_ptr[slot], plan.slot_ptr[slot + 1]
        total, loss = block_row(
            parameters, row, workspace.row_scratch[chunk], workspace.bits[chunk], pool, user,
            interactions.indptr, workspace.users[s], plan.pair_item[pair_start:pair_stop],
            plan.pair_weight[pair_start:pair_stop], embeddings.items,
            pair_coef[pair_start:pair_stop], embeddings.items.shape[0],
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
        _item_chunk(chunk, n_unique, pair_start, pool, plan, item_plan, workspace, pair_coef,
                    embeddings, optimizer, block_stamp)


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


@njit(cache=NUMBA_CACHE, parallel=True)
def fold_in_rows(parameters, sampler, interactions, weights, embeddings, optimizer, group_size,
                 n_epochs, rng_states, pools, scratch, n_slots):
    """Place new users (``embeddings.users``) against frozen items.

    ``weights`` are the weights of the rows' pairs, aligned with
    ``interactions.indices``.

    Each row, with its own state ``rng_states[r]``, runs ``n_epochs`` passes
    over its items in a random order, one step per group of ``group_size``,
    each step against a fresh pool: the training step with one slot and the
    items frozen.  The row's vector is then the mean of its vectors at the
    end of the second half's epochs (averaging, as training's ``average``
    does: with one step per epoch the last steps are still large; new
    users' recall@50 0.253 without it, 0.468 with it, on MovieLens-1M,
    ``benchmarks/bench_fold_in.py``).  A row's result depends only on its
    content and seed.
    ``pools`` and ``scratch`` hold one row per thread slot.
    """
    for slot in prange(n_slots):
        _fold_in_slot(slot, n_slots, parameters, sampler, interactions, weights, embeddings,
                      optimizer, group_size, n_epochs, rng_states, pools, scratch)


@njit(cache=NUMBA_CACHE, fastmath=FASTMATH, error_model="numpy")
def _fold_in_slot(slot, n_slots, parameters, sampler, interactions, weights, embeddings,
                  optimizer, group_size, n_epochs, rng_states, pools, scratch):
    """The rows of ``fold_in_rows`` that thread slot ``slot`` places."""
    indptr, indices = interactions.indptr, interactions.indices
    pool = Pool(pools.items[slot], pools.counts[slot], pools.log_counts[slot],
                pools.head[slot], pools.next[slot], pools.stamp[slot])
    shuffled, shuffled_weights, distances, pool_vectors, pool_sq, row_scratch, bits, pair_coef = (
        scratch.shuffled[slot], scratch.shuffled_weights[slot], scratch.distances[slot],
        scratch.pool_vectors[slot], scratch.pool_sq[slot], scratch.row_scratch[slot],
        scratch.bits[slot], scratch.pair_coef[slot])
    n_items = embeddings.items.shape[0]
    stamp = 0
    for row in range(slot, indptr.shape[0] - 1, n_slots):
        start, stop = indptr[row], indptr[row + 1]
        user = embeddings.users[row]
        rng_state = rng_states[row]
        step = group_size if group_size > 0 else max(stop - start, 1)
        mean = scratch.mean[slot]
        n_averaged = 0
        for epoch in range(n_epochs):
            rng_state = shuffle_row_weighted(rng_state, indices, weights, shuffled,
                                             shuffled_weights, start, stop)
            for first in range(start, stop, step):
                pairs = shuffled[first:min(first + step, stop)]
                pair_weights = shuffled_weights[first:min(first + step, stop)]
                stamp += 1
                rng_state = draw_pool(rng_state, sampler, n_items, pool, stamp)
                gather_rows(embeddings.items, pool.items, pool_vectors, pool_sq)
                user_sq = np.float32(0.0)
                for d in range(user.shape[0]):
                    user_sq += user[d] * user[d]
                np.dot(pool_vectors, user, distances)
                for n in range(distances.shape[0]):
                    distances[n] = user_sq + pool_sq[n] - np.float32(2.0) * distances[n]
                mask_user(distances, row, indptr, indices, pool, stamp)
                coefs = pair_coef[: pairs.shape[0]]
                total, _ = block_row(parameters, distances, row_scratch, bits, pool, row,
                                     indptr, user, pairs, pair_weights, embeddings.items, coefs,
                                     n_items)
                weighted = scratch.gradient[slot]
                np.dot(distances, pool_vectors, weighted)
                _user_step(embeddings, row, user, weighted, total, pairs, coefs, optimizer)
            # A row takes one step per epoch: its last steps are still large,
            # so it ends at the mean of its second half's epochs.
            if 2 * epoch >= n_epochs:
                n_averaged += 1
                if n_averaged == 1:
                    mean[:] = user
                else:
                    weight = np.float32(1.0) / np.float32(n_averaged)
                    for d in range(user.shape[0]):
                        mean[d] += (user[d] - mean[d]) * weight
        if n_averaged > 0:
            user[:] = mean


class FoldInScratch(NamedTuple):
    """Per-thread buffers of ``fold_in_rows``."""

    shuffled: np.ndarray  # int32 (n_slots, nnz)
    shuffled_weights: np.ndarray  # float32 (n_slots, nnz)
    distances: np.ndarray  # float32 (n_slots, pool_size)
    pool_vectors: np.ndarray  # float32 (n_slots, pool_size, K)
    pool_sq: np.ndarray  # float32 (n_slots, pool_size)
    row_scratch: np.ndarray  # float32 (n_slots, pool_size)
    bits: np.ndarray  # int32 (n_slots, pool_size)
    pair_coef: np.ndarray  # float32 (n_slots, largest group)
    gradient: np.ndarray  # float32 (n_slots, K)
    mean: np.ndarray  # float32 (n_slots, K): the running mean of a row's epochs


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


def _workspace(max_slots, pool_size, n_components):
    """A step's buffers for blocks of up to ``max_slots`` slots: two
    ``max_slots x pool_size`` float32 matrices (the weights and their column
    chunks) dominate; the rest is O((max_slots + pool_size) n_components)."""
    return Workspace(
        np.empty(max_slots * pool_size, np.float32),
        np.empty((max_slots, n_components), np.float32), np.empty(max_slots, np.float32),
        np.empty((pool_size, n_components), np.float32),
        np.empty(pool_size, np.float32), np.empty((max_slots, n_components), np.float32),
        np.empty((pool_size, n_components), np.float32), np.empty(pool_size, np.float32),
        np.empty(max_slots * pool_size, np.float32), np.empty(max_slots, np.float32),
        np.empty(max_slots, np.float32), np.empty((N_CHUNKS, pool_size), np.float32),
        np.empty((N_CHUNKS, pool_size), np.int32), np.empty((N_CHUNKS, n_components), np.float32),
    )  # fmt: skip


def make_epoch(loss, data, weights, params, sampler, reference_count, n_threads, n_components,
               between_chunks):
    """A function running one epoch on a training state: ``run(state, block_losses)``."""
    n_items, pool_size, block_size = data.n_items, params.pool_size, params.block_size
    # A block holds at most block_size pairs plus one group, and never more
    # than the data: a huge block_size costs no memory.
    max_pairs = min(block_size + _largest_group(data.indptr), data.n_interactions)
    # Sized by the most slots of a block in the epoch's plan, grown when a
    # later plan has more.
    work = _workspace(0, pool_size, n_components)
    pool = _empty_pool(pool_size, n_items)
    item_plan = ItemPlan(np.full(n_items, -1, np.int64), np.empty(max_pairs, np.int64),
                         np.full(n_items, -1, np.int64), np.empty(max_pairs, np.int64),
                         np.empty(pool_size + max_pairs, np.int64))
    pair_coef = np.zeros(data.n_interactions, np.float32)
    parameters = loss.parameters(params, reference_count, False)
    optimizer = Optimizer(np.float32(params.learning_rate), np.float32(params.max_norm))
    run_user_side = kernel_for(user_side, loss, _TWINS)
    interval = covariance_interval(params, data)
    stamp = 0  # the last block's, across epochs: the maps are never cleared

    def run(state, block_losses):
        nonlocal work, stamp
        plan = make_plan(data.indptr, data.indices, weights, GROUP_SIZE, block_size,
                         stream_seed(state.seed, "pair order", state.n_iter))
        embeddings = state.embeddings()
        max_slots = int(np.diff(plan.block_ptr).max(initial=0))
        if max_slots > work.users.shape[0]:
            work = _workspace(max_slots, pool_size, n_components)
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


def fold_in(loss, data, weights, embeddings, params, sampler, reference_count, n_threads,
            rng_states):
    """Move ``embeddings.users`` (new users, one per row of ``data``) in place."""
    pool_size, n_components = params.pool_size, embeddings.users.shape[1]
    scratch = FoldInScratch(
        np.empty((n_threads, data.n_interactions), np.int32),
        np.empty((n_threads, data.n_interactions), np.float32),
        np.empty((n_threads, pool_size), np.float32),
        np.empty((n_threads, pool_size, n_components), np.float32),
        np.empty((n_threads, pool_size), np.float32), np.empty((n_threads, pool_size), np.float32),
        np.empty((n_threads, pool_size), np.int32),
        np.empty((n_threads, max(_largest_group(data.indptr), 1)), np.float32),
        np.empty((n_threads, n_components), np.float32),
        np.empty((n_threads, n_components), np.float32),
    )  # fmt: skip
    optimizer = Optimizer(np.float32(params.learning_rate), np.float32(params.max_norm))
    kernel_for(fold_in_rows, loss, _TWINS)(
        loss.parameters(params, reference_count, True), sampler, data, weights, embeddings,
        optimizer, GROUP_SIZE, params.fold_in_epochs, rng_states,
        _empty_pool(pool_size, embeddings.items.shape[0], (n_threads,)), scratch, n_threads,
    )  # fmt: skip


# Twins of the kernels that see a loss's types, for losses defined outside
# the package (``_base.kernel_for``).
_TWINS = twins({user_side: {"_user_chunk": _user_chunk},
                fold_in_rows: {"_fold_in_slot": _fold_in_slot}})


SOLVER = Solver(name="block", make_epoch=make_epoch, fold_in=fold_in,
                supports=lambda loss: loss.block_row is not None,
                epoch_kernels=lambda loss: (kernel_for(user_side, loss, _TWINS), item_side,
                                            draw_pool))
