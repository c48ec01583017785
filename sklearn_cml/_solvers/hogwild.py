"""The per-pair Hogwild solver: SGD steps on a user's pairs, lock-free across threads.

An epoch visits every training pair once, in a random order, as *work
units*: groups of up to ``loss.group_size`` positives of one user (single
pairs for the hinge).  Each unit is one call of the loss's step
(``pair_step``), which draws the negatives, computes the gradients and
takes the AdaGrad steps.  The units of an epoch are cut into chunks (about
``covariance_interval`` pairs each, between two covariance steps), each
chunk into a fixed number of blocks with their own random state, and the
blocks are dealt to the threads: with one thread the result is bitwise
reproducible whatever the machine; with several, threads update shared
vectors without locks (Hogwild).

Fold-in is the same step on new users with the items frozen: each row,
with a random state of its own (a hash of its items), runs ``n_epochs``
passes over its positives in a random order, by groups.

Every positive carries its pair's weight (``CMLRecommender`` normalises
the weights to mean 1; all ones without weights), which the loss's step
multiplies into that pair's term.
"""

from typing import NamedTuple

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .._numba_config import FASTMATH, NUMBA_CACHE
from .._rng import (
    random_permutation,
    shuffle_row_weighted,
    shuffle_within_rows_weighted,
    stream_seed,
)
from .._steps import Optimizer, row_of_entry
from ._base import Solver, covariance_interval, kernel_for, twins


class PairUnits(NamedTuple):
    """Work units of one pair: unit ``p`` is the pair at CSR position ``p``."""

    indices: np.ndarray  # int32: the training matrix's
    weights: np.ndarray  # float32: each pair's weight


class GroupUnits(NamedTuple):
    """Work units of up to ``group_size`` positives of one user."""

    starts: np.ndarray  # int64: each group's first position in ``shuffled``
    users: np.ndarray  # int32: each group's user
    shuffled: np.ndarray  # int32: each row's items, reshuffled every epoch
    shuffled_weights: np.ndarray  # float32: their pair weights, in the same order
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


def work_unit(units, indptr, unit):
    """``(user, positives, weights)`` of work unit ``unit`` (compiled code only)."""
    raise NotImplementedError("work_unit is compiled into the solver's kernels")


@overload(work_unit, inline="always")
def _work_unit(units, indptr, unit):
    if units.instance_class is PairUnits:
        def pair(units, indptr, unit):
            return (row_of_entry(indptr, unit), units.indices[unit:unit + 1],
                    units.weights[unit:unit + 1])

        return pair

    def group(units, indptr, unit):
        user = units.users[unit]
        start = units.starts[unit]
        stop = min(start + units.group_size, indptr[user + 1])
        return user, units.shuffled[start:stop], units.shuffled_weights[start:stop]

    return group


def pair_step(parameters, sampler, user, positives, weights, position, interactions, embeddings,
              optimizer, scratch, slot, rng_state, update_items):
    """One step of a loss on a group of one user's positives (compiled code only).

    This is what a loss implements for this solver (``Loss.pair_step``),
    chosen at compile time by the type of ``parameters``.

    Parameters
    ----------
    parameters : the loss's ``parameters_type``
    sampler : UniformSampler or AliasSampler
        Where the negatives come from (``_sampling.draw``).
    user : int
        Row of the user in ``embeddings.users`` and in ``interactions``.
    positives : int32 array
        The step's positive items, at most ``Loss.group_size``.
    weights : float32 array
        The weight of each positive's pair (non-negative, mean 1 over the
        training pairs; all 1 when the model has no weights): the step
        multiplies each pair's term of the loss, and so its gradients, by
        it.
    position : int
        The unit's position in the epoch's order, unique within a chunk
        (-1 in fold-in).
    interactions : Interactions
        ``indptr`` and ``indices`` (sorted rows) of the users' positives,
        which are never used as negatives.
    embeddings : Embeddings
    optimizer : Optimizer
    scratch : the loss's scratch
    slot : int
        The thread's row of the scratch buffers.
    rng_state : uint64
    update_items : bool
        False in fold-in: only the user moves.

    Returns
    -------
    rng_state : uint64
        The advanced random state.
    loss : float32
        The step's loss, summed over its positives.
    """
    raise NotImplementedError("pair_step is compiled into the solver's kernels")


@overload(pair_step, inline="always")
def _pair_step(parameters, sampler, user, positives, weights, position, interactions,
               embeddings, optimizer, scratch, slot, rng_state, update_items):
    from .._losses import LOSSES  # the registry may have grown since import

    if not isinstance(parameters, types.BaseNamedTuple):
        return None
    steps = [loss.pair_step for loss in LOSSES.values()
             if loss.parameters_type is parameters.instance_class]
    if not steps:
        return None
    step = steps[0]

    def implementation(parameters, sampler, user, positives, weights, position, interactions,
                       embeddings, optimizer, scratch, slot, rng_state, update_items):
        return step(parameters, sampler, user, positives, weights, position, interactions,
                    embeddings, optimizer, scratch, slot, rng_state, update_items)

    return implementation


# The parallel loops below only deal work to threads; each thread's work is
# a plain function.  Numba's dead-code elimination of parallel loop bodies
# drops writes to arrays reached through a NamedTuple's fields when they are
# inlined into the body itself.


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
        _slot_blocks(slot, n_slots, parameters, sampler, units, order, chunk_start, chunk_stop,
                     interactions, embeddings, optimizer, scratch, rng_states, block_losses)


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


@njit(cache=NUMBA_CACHE, parallel=True)
def fold_in_rows(parameters, sampler, interactions, weights, embeddings, optimizer, scratch,
                 shuffled, shuffled_weights, group_size, n_epochs, rng_states, n_slots):
    """Optimise new users' vectors (``embeddings.users``) against frozen items.

    Row ``r`` of ``interactions`` is a new user's history, ``weights`` its
    pairs' weights; each epoch shuffles its positives with the row's own
    state ``rng_states[r]`` and takes one step per group of ``group_size``,
    so a row's result depends only on its content and seed, never on the
    other rows or on the thread count.  ``shuffled`` and
    ``shuffled_weights`` are scratch copies of ``interactions.indices`` and
    ``weights``.
    """
    for slot in prange(n_slots):
        _slot_rows(slot, n_slots, parameters, sampler, interactions, weights, embeddings,
                   optimizer, scratch, shuffled, shuffled_weights, group_size, n_epochs,
                   rng_states)


@njit(cache=NUMBA_CACHE, fastmath=FASTMATH, error_model="numpy")
def _slot_rows(slot, n_slots, parameters, sampler, interactions, weights, embeddings, optimizer,
               scratch, shuffled, shuffled_weights, group_size, n_epochs, rng_states):
    """The rows of ``fold_in_rows`` that slot ``slot`` places."""
    indptr, indices = interactions.indptr, interactions.indices
    for row in range(slot, indptr.shape[0] - 1, n_slots):
        start = indptr[row]
        stop = indptr[row + 1]
        rng_state = rng_states[row]
        for _ in range(n_epochs):
            rng_state = shuffle_row_weighted(rng_state, indices, weights, shuffled,
                                             shuffled_weights, start, stop)
            for group_start in range(start, stop, group_size):
                group_stop = min(group_start + group_size, stop)
                rng_state, _ = pair_step(
                    parameters, sampler, row, shuffled[group_start:group_stop],
                    shuffled_weights[group_start:group_stop], -1, interactions, embeddings,
                    optimizer, scratch, slot, rng_state, False,
                )  # fmt: skip


# --------------------------------------------------------------- Python side


# Twins of the kernels that see a loss's types, for losses defined outside
# the package (``_base.kernel_for``).
_TWINS = twins({epoch_chunk: {"_slot_blocks": _slot_blocks},
                fold_in_rows: {"_slot_rows": _slot_rows}})


def make_epoch(loss, data, weights, params, sampler, reference_count, n_threads, n_components,
               between_chunks):
    """A function running one epoch on a training state: ``run(state, block_losses)``.

    ``between_chunks(state)`` runs after each chunk (the covariance step).
    The buffers are made once here, for every epoch of a fit.
    """
    group_size = loss.group_size
    if group_size == 1:
        units = PairUnits(data.indices, weights)
        n_units = data.n_interactions
    else:
        starts, users = user_groups(data.indptr, group_size)
        units = GroupUnits(starts, users, np.empty_like(data.indices), np.empty_like(weights),
                           group_size)
        n_units = starts.shape[0]
    order = np.empty(n_units, dtype=np.int32)
    parameters = loss.parameters(params, reference_count, False)
    scratch = loss.scratch(n_threads, n_components, data.n_items, params)
    optimizer = Optimizer(np.float32(params.learning_rate), np.float32(params.max_norm))
    units_per_chunk = max(1, covariance_interval(params, data) // group_size)
    run_chunk = kernel_for(epoch_chunk, loss, _TWINS)

    def run(state, block_losses):
        # The order depends only on (seed, epoch number): fit for n epochs
        # equals fit for k epochs then n - k partial_fit.
        random_permutation(order, stream_seed(state.seed, "pair order", state.n_iter))
        if group_size > 1:
            shuffle_within_rows_weighted(data.indptr, data.indices, weights, units.shuffled,
                                         units.shuffled_weights,
                                         stream_seed(state.seed, "row order", state.n_iter))
        embeddings = state.embeddings()
        for chunk_start in range(0, n_units, units_per_chunk):
            loss.prepare_chunk(scratch)
            run_chunk(
                parameters, sampler, units, order, chunk_start,
                min(chunk_start + units_per_chunk, n_units), data, embeddings, optimizer,
                scratch, state.rng_states, block_losses, n_threads,
            )  # fmt: skip
            between_chunks(state)

    return run


def fold_in(loss, data, weights, embeddings, params, sampler, reference_count, n_threads,
            rng_states):
    """Move ``embeddings.users`` (new users, one per row of ``data``) in place."""
    optimizer = Optimizer(np.float32(params.learning_rate), np.float32(params.max_norm))
    kernel_for(fold_in_rows, loss, _TWINS)(
        loss.parameters(params, reference_count, True), sampler, data, weights, embeddings,
        optimizer, loss.scratch(n_threads, embeddings.users.shape[1], data.n_items, params),
        np.empty_like(data.indices), np.empty_like(weights), loss.group_size,
        params.fold_in_epochs, rng_states, n_threads,
    )  # fmt: skip


SOLVER = Solver(name="hogwild", make_epoch=make_epoch, fold_in=fold_in,
                epoch_kernels=lambda loss: (kernel_for(epoch_chunk, loss, _TWINS),))
