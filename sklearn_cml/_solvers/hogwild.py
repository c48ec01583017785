"""The per-pair Hogwild solver: SGD steps on a user's pairs, lock-free across threads.

An epoch visits every training pair once, in a random order, as *work
units*: groups of up to ``loss.group_size`` positives of one user (single
pairs for the hinge).  Each unit is one step (``pair_step``): it draws
``group_size * n_negatives`` items from the sampler, sets the distance of
the draws that are the user's own items to ``+inf``, has the loss weigh
the row of squared distances (``_losses.weigh_row``), turns the weights
into gradients from the current vectors and takes the AdaGrad steps, items
first.  The units of an epoch are cut into chunks (about
``covariance_interval`` pairs each, between two covariance steps), each
chunk into a fixed number of blocks with their own random state, and the
blocks are dealt to the threads: with one thread the result is bitwise
reproducible whatever the machine; with several, threads update shared
vectors without locks (Hogwild).

Fold-in (``_fold_in``) runs the same step on new users with the items
frozen.

Every positive carries its pair's weight (``CMLRecommender`` normalises
the weights to mean 1; all ones without weights), which the loss
multiplies into that pair's term.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .._losses import LossRow, RowScratch, weigh_row
from .._numba_config import FASTMATH, NUMBA_CACHE
from .._rng import random_permutation, shuffle_within_rows_weighted, stream_seed
from .._sampling import draw, inverse_probability, log_inverse_probability
from .._steps import Optimizer, adagrad_step, contains_sorted, row_of_entry, squared_distance
from ._base import Solver, compiled_for

# Marking a user's items costs one write each; it pays when it replaces the
# binary searches of the draws (one per draw).  Past this many items per
# draw, the step searches instead.
MARK_LIMIT_PER_DRAW = 64


class WorkUnits(NamedTuple):
    """An epoch's work units: single pairs (``group_size`` 1: unit ``p`` is
    the pair at CSR position ``p``) or groups of up to ``group_size``
    positives of one user.

    One type for both, told apart at run time (a branch that never
    mispredicts), and one pair of arrays that both read: the kind only
    decides which integers locate a unit.  Every dispatch by type Numba
    inlines after typing lets its dead-code elimination drop stores in the
    kernel (docs/algorithm.md, "Architecture"); and a unit read from one
    array or another, by kind, keeps Numba from pruning the reference
    counts of every array the step takes (about 25 atomic pairs per unit).
    """

    # int32 (pairs): the training matrix's items, in CSR order for single
    # pairs; each row's reshuffled every epoch for groups.
    positives: np.ndarray
    weights: np.ndarray  # float32 (pairs): their pair weights, in the same order
    starts: np.ndarray  # int64: each group's first position in ``positives`` (groups)
    users: np.ndarray  # int32: each group's user (groups)
    group_size: int


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
def work_unit(units, indptr, unit):
    """``(user, positives, weights)`` of work unit ``unit``."""
    if units.group_size == 1:
        user = row_of_entry(indptr, unit)
        start = np.int64(unit)
    else:
        user = np.int64(units.users[unit])
        start = units.starts[unit]
    stop = min(start + units.group_size, indptr[user + 1])
    return user, units.positives[start:stop], units.weights[start:stop]


class StepScratch(NamedTuple):
    """The buffers of a step, one row per thread slot, and its sizes."""

    # marks[slot, j] == stamp when item j is one of the current user's.
    marks: np.ndarray  # int32 (n_slots, n_items)
    negatives: np.ndarray  # int64 (n_slots, n_draws)
    distances: np.ndarray  # float32 (n_slots, n_draws): the row, then its weights
    counts: np.ndarray  # float32 (n_slots, n_draws)
    log_counts: np.ndarray  # float32 (n_slots, n_draws)
    values: np.ndarray  # float32 (n_slots, n_draws): the loss's scratch
    bits: np.ndarray  # int32 (n_slots, n_draws): the loss's integer scratch
    positive_distances: np.ndarray  # float32 (n_slots, group_size)
    pair_coef: np.ndarray  # float32 (n_slots, group_size)
    # float32 (n_slots, 1 + group_size + n_draws, K): the gradients of the
    # user, of each positive and of each draw.
    gradients: np.ndarray
    # int32 (n_slots,): each slot's last stamp in fold-in, where steps are
    # not positions of an epoch's order.
    stamps: np.ndarray
    n_draws: int
    mark_limit: int  # users with at most this many items have them marked


def make_scratch(config, n_slots, n_items, n_components):
    """A step's buffers for ``n_slots`` threads."""
    group_size = config.loss.group_size
    n_draws = group_size * config.n_negatives
    return StepScratch(
        np.full((n_slots, n_items), -1, np.int32), np.empty((n_slots, n_draws), np.int64),
        np.empty((n_slots, n_draws), np.float32), np.empty((n_slots, n_draws), np.float32),
        np.empty((n_slots, n_draws), np.float32), np.empty((n_slots, n_draws), np.float32),
        np.empty((n_slots, n_draws), np.int32), np.empty((n_slots, group_size), np.float32),
        np.empty((n_slots, group_size), np.float32),
        np.empty((n_slots, 1 + group_size + n_draws, n_components), np.float32),
        np.zeros(n_slots, np.int32), n_draws, MARK_LIMIT_PER_DRAW * n_draws,
    )  # fmt: skip


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def draw_row(sampler, rng_state, user, stamp, interactions, user_vector, items, scratch, slot):
    """Draw ``scratch.n_draws`` negatives for ``user``, with their squared
    distances (``+inf`` for the user's own items), counts and log counts.

    The user's items are marked in the slot's marks with ``stamp`` (unique
    among the steps that share the marks since they were last reset) when
    the user has at most ``scratch.mark_limit`` of them, so that
    membership is one load; heavier users are searched.  Returns the
    advanced random state.
    """
    indptr, indices = interactions.indptr, interactions.indices
    start, stop = indptr[user], indptr[user + 1]
    marks = scratch.marks[slot]
    marked = stop - start <= scratch.mark_limit
    if marked:
        for position in range(start, stop):
            marks[indices[position]] = stamp
    negatives, distances = scratch.negatives[slot], scratch.distances[slot]
    counts, log_counts = scratch.counts[slot], scratch.log_counts[slot]
    n_draws = scratch.n_draws
    uniform_count = items.shape[0] / n_draws
    log_uniform_count = math.log(uniform_count)
    for k in range(n_draws):
        rng_state, candidate = draw(sampler, rng_state)
        negatives[k] = candidate
        own = (marks[candidate] == stamp if marked
               else contains_sorted(indices, start, stop, candidate))
        distances[k] = np.inf if own else squared_distance(user_vector, items[candidate])
        counts[k] = uniform_count * inverse_probability(sampler, candidate)
        log_counts[k] = log_uniform_count + log_inverse_probability(sampler, candidate)
    return rng_state


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def add_push(user_vector, vector, coef, grad_user, gradient):
    """Add ``coef * dD/du = 2 coef (u - v)`` to ``grad_user``; write the
    item's gradient ``2 coef (v - u)`` to ``gradient``."""
    scale = np.float32(2.0) * coef
    for d in range(user_vector.shape[0]):
        step = scale * (user_vector[d] - vector[d])
        grad_user[d] += step
        gradient[d] = -step


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def step_row(user, positives, embeddings, optimizer, scratch, slot, update_items):
    """AdaGrad steps from a weighed row: ``dL/dd_b`` of each of the
    ``positives`` in the slot's ``pair_coef``, ``dL/dD_k`` of each draw in
    its ``distances``.

    Every gradient is computed from the current vectors before any step;
    then each item with a non-zero weight steps (unless the items are
    frozen), then the user, if anything pushed it.
    """
    items = embeddings.items
    user_vector = embeddings.users[user]
    n_positives = positives.shape[0]
    pair_coef, draw_coef = scratch.pair_coef[slot], scratch.distances[slot]
    negatives = scratch.negatives[slot]
    gradients = scratch.gradients[slot]
    grad_user, grad_positives = gradients[0], gradients[1:1 + n_positives]
    grad_negatives = gradients[1 + n_positives:]
    for d in range(grad_user.shape[0]):
        grad_user[d] = 0.0
    pushed = False
    for b in range(n_positives):
        if pair_coef[b] != 0.0:
            pushed = True
            add_push(user_vector, items[positives[b]], pair_coef[b], grad_user,
                     grad_positives[b])
    for k in range(draw_coef.shape[0]):
        if draw_coef[k] != 0.0:
            pushed = True
            add_push(user_vector, items[negatives[k]], draw_coef[k], grad_user,
                     grad_negatives[k])
    learning_rate, max_norm = optimizer.learning_rate, optimizer.max_norm
    if pushed and update_items:
        for b in range(n_positives):
            if pair_coef[b] != 0.0:
                adagrad_step(items[positives[b]], embeddings.item_grad_sq, positives[b],
                             grad_positives[b], learning_rate, max_norm)
        for k in range(draw_coef.shape[0]):
            if draw_coef[k] != 0.0:
                adagrad_step(items[negatives[k]], embeddings.item_grad_sq, negatives[k],
                             grad_negatives[k], learning_rate, max_norm)
    if pushed:
        adagrad_step(user_vector, embeddings.user_grad_sq, user, grad_user, learning_rate,
                     max_norm)


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def pair_step(parameters, sampler, user, positives, weights, stamp, interactions, embeddings,
              optimizer, scratch, slot, rng_state, update_items):
    """One step on a group of one user's positives; returns ``(rng_state, loss)``.

    ``positives`` (at most ``group_size`` items) and their pair
    ``weights`` share ``scratch.n_draws`` draws; ``stamp`` marks the
    user's items (``draw_row``).  ``update_items`` is False in fold-in:
    only the user moves.
    """
    items = embeddings.items
    user_vector = embeddings.users[user]
    rng_state = draw_row(sampler, rng_state, user, stamp, interactions, user_vector, items,
                         scratch, slot)
    n_positives = positives.shape[0]
    positive_distances = scratch.positive_distances[slot][:n_positives]
    for b in range(n_positives):
        positive_distances[b] = squared_distance(user_vector, items[positives[b]])
    indptr = interactions.indptr
    row = LossRow(positive_distances, weights, scratch.distances[slot], scratch.counts[slot],
                  scratch.log_counts[slot], indptr[user + 1] - indptr[user], items.shape[0])
    _, loss = weigh_row(parameters, row, scratch.pair_coef[slot][:n_positives],
                        RowScratch(scratch.values[slot], scratch.bits[slot]))
    step_row(user, positives, embeddings, optimizer, scratch, slot, update_items)
    return rng_state, loss


# The parallel loops below only deal work to threads; each thread's work is
# a plain function.  Numba's dead-code elimination of parallel loop bodies
# drops writes to arrays reached through a NamedTuple's fields when they are
# inlined into the body itself.
#
# The loop index goes to the plain function as np.int64: Numba types it as
# int64 before the parallel transformation and as uint64 after, so without
# the cast every such function is compiled twice, once for each type
# (block.py and _fold_in.py do the same).


@njit(cache=NUMBA_CACHE, parallel=True)
def epoch_chunk(parameters, sampler, units, order, chunk_start, chunk_stop, interactions,
                embeddings, optimizer, scratch, rng_states, block_losses, n_slots):
    """Hogwild SGD over the work units ``order[chunk_start:chunk_stop]``.

    The chunk is cut into ``len(rng_states)`` contiguous blocks, each with
    its own random state.  The blocks are dealt to ``n_slots`` parallel
    slots (one per thread), slot ``s`` running blocks ``s, s + n_slots,
    ...`` in order: the block count is fixed, so with one thread the result
    is bitwise reproducible whatever the machine.  Each block adds its
    summed loss to ``block_losses[block]``.
    """
    for slot in prange(n_slots):
        _slot_blocks(np.int64(slot), n_slots, parameters, sampler, units, order, chunk_start,
                     chunk_stop, interactions, embeddings, optimizer, scratch, rng_states,
                     block_losses)


@njit(cache=NUMBA_CACHE, fastmath=FASTMATH, error_model="numpy")
def _slot_blocks(slot, n_slots, parameters, sampler, units, order, chunk_start, chunk_stop,
                 interactions, embeddings, optimizer, scratch, rng_states, block_losses):
    """The blocks of ``epoch_chunk`` that slot ``slot`` runs."""
    n_blocks = rng_states.shape[0]
    n_units = chunk_stop - chunk_start
    for block in range(slot, n_blocks, n_slots):
        rng_state = rng_states[block]
        loss = np.float32(0.0)
        block_start = chunk_start + (n_units * block) // n_blocks
        block_stop = chunk_start + (n_units * (block + 1)) // n_blocks
        for position in range(block_start, block_stop):
            user, positives, weights = work_unit(units, interactions.indptr, order[position])
            rng_state, unit_loss = pair_step(
                parameters, sampler, user, positives, weights, position, interactions,
                embeddings, optimizer, scratch, slot, rng_state, True,
            )  # fmt: skip
            loss += unit_loss
        rng_states[block] = rng_state
        block_losses[block] += loss


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def frozen_pair_step(stepper, slot, parameters, sampler, user, pairs, pair_weights,
                     interactions, embeddings, optimizer, rng_state):
    """``_fold_in.frozen_step`` for this solver: ``pair_step`` on a new user,
    items frozen; the stepper is the step's own scratch."""
    stepper.stamps[slot] += 1
    rng_state, _ = pair_step(parameters, sampler, user, pairs, pair_weights,
                             stepper.stamps[slot], interactions, embeddings, optimizer,
                             stepper, slot, rng_state, False)
    return rng_state


# --------------------------------------------------------------- Python side


# The chains down to ``weigh_row``, copied for each loss (``_base.compiled_for``).
CALLS = {
    epoch_chunk: {"_slot_blocks": _slot_blocks},
    _slot_blocks: {"pair_step": pair_step},
    frozen_pair_step: {"pair_step": pair_step},
}


def make_epoch(config, data, weights, sampler, reference_count, between_chunks):
    """A function running one epoch on a training state: ``run(state, block_losses)``.

    ``between_chunks(state)`` runs after each chunk (the covariance step).
    The buffers are made once here, for every epoch of a fit.
    """
    loss, n_threads = config.loss, config.n_threads
    group_size = loss.group_size
    if group_size == 1:
        units = WorkUnits(data.indices, weights, np.empty(0, np.int64), np.empty(0, np.int32), 1)
        n_units = data.n_interactions
    else:
        starts, users = user_groups(data.indptr, group_size)
        units = WorkUnits(np.empty_like(data.indices), np.empty_like(weights), starts, users,
                          group_size)
        n_units = starts.shape[0]
    order = np.empty(n_units, dtype=np.int32)
    parameters = loss.parameters(config, reference_count, False)
    scratch = make_scratch(config, n_threads, data.n_items, config.n_components)
    optimizer = Optimizer(np.float32(config.learning_rate), np.float32(config.max_norm))
    units_per_chunk = max(1, config.covariance_interval // group_size)
    run_chunk = compiled_for(epoch_chunk, loss, CALLS, "hogwild")

    def run(state, block_losses):
        # The order depends only on (seed, epoch number): fit for n epochs
        # equals fit for k epochs then n - k partial_fit.
        random_permutation(order, stream_seed(state.seed, "pair order", state.n_iter))
        if group_size > 1:
            shuffle_within_rows_weighted(data.indptr, data.indices, weights, units.positives,
                                         units.weights,
                                         stream_seed(state.seed, "row order", state.n_iter))
        embeddings = state.embeddings()
        for chunk_start in range(0, n_units, units_per_chunk):
            # Stamps are positions in the epoch's order: unique within a chunk.
            scratch.marks.fill(-1)
            run_chunk(
                parameters, sampler, units, order, chunk_start,
                min(chunk_start + units_per_chunk, n_units), data, embeddings, optimizer,
                scratch, state.rng_states, block_losses, n_threads,
            )  # fmt: skip
            between_chunks(state)

    return run


def fold_in_step(config, data, n_items):
    """The per-pair step's buffers for placing new users, and its group size."""
    scratch = make_scratch(config, config.n_threads, n_items, config.n_components)
    return scratch, config.loss.group_size


SOLVER = Solver(name="hogwild", make_epoch=make_epoch, fold_in_step=fold_in_step,
                frozen_step=frozen_pair_step, calls=CALLS, shared_negatives=False,
                epoch_kernels=lambda loss: (compiled_for(epoch_chunk, loss, CALLS, "hogwild"),))
