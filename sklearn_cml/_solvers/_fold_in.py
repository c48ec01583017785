"""Placing new users: the training solver's own step with the items frozen.

Fold-in is one loop for every solver.  Each new user (a row of the
interactions) runs ``fold_in_epochs`` passes over its items, shuffled
with the row's own random state, taking one step of the solver per group
of them (``frozen_step``: the solver's training step on one user, which
moves only the user).  The row's vector is then the mean of its vectors
at the end of the second half's epochs: the steps are still large at the
end (a row takes few steps per epoch), and averaging them smooths their
noise out, as ``average`` does in training (new users' recall@50 0.253
without it, 0.468 with it, with the block solver on MovieLens-1M;
``benchmarks/bench_fold_in.py``).

A row's result depends only on its content and seed, never on the other
rows or on the number of threads.
"""

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .._numba_config import FOLD_IN_FASTMATH, NUMBA_CACHE
from .._rng import shuffle_row_weighted
from .._steps import Optimizer
from ._base import compiled_for


def frozen_step(stepper, slot, parameters, sampler, user, pairs, pair_weights, interactions,
                embeddings, optimizer, rng_state):
    """One step of the solver on new user ``user``, items frozen (compiled code only).

    The name the fold-in loop calls: its kernel is compiled once per solver
    and loss, with this name bound to the solver's ``Solver.frozen_step``.
    That moves ``embeddings.users[user]`` by the training step on the
    positives ``pairs`` (weighted by ``pair_weights``), with the per-thread
    buffers ``stepper`` (made by ``Solver.fold_in_step``) of thread slot
    ``slot``, and returns the advanced random state.
    """
    raise NotImplementedError("frozen_step is bound to a solver's step in the fold-in kernel")


class FoldInScratch(NamedTuple):
    """Buffers of the fold-in loop."""

    # int32 (nnz,): each row's items, reshuffled every epoch in the row's
    # own range, which only the thread placing the row touches.
    shuffled: np.ndarray
    shuffled_weights: np.ndarray  # float32 (nnz,): their pair weights
    mean: np.ndarray  # float32 (n_slots, K): the running mean of a row's epochs


@njit(cache=NUMBA_CACHE, parallel=True)
def fold_in_rows(parameters, sampler, interactions, weights, embeddings, optimizer, stepper,
                 group_size, n_epochs, rng_states, scratch, n_slots):
    """Place new users (``embeddings.users``, one per row of ``interactions``,
    its pairs weighted by ``weights``) against the frozen items.

    Row ``r`` starts from its random state ``rng_states[r]``; slot ``s``
    places rows ``s, s + n_slots, ...``.
    """
    for slot in prange(n_slots):
        _fold_in_slot(np.int64(slot), n_slots, parameters, sampler, interactions, weights,
                      embeddings, optimizer, stepper, group_size, n_epochs, rng_states, scratch)


# Compiled with FOLD_IN_FASTMATH, the solver's step inlined (see _numba_config).
@njit(cache=NUMBA_CACHE, fastmath=FOLD_IN_FASTMATH, error_model="numpy")
def _fold_in_slot(slot, n_slots, parameters, sampler, interactions, weights, embeddings,
                  optimizer, stepper, group_size, n_epochs, rng_states, scratch):
    """The rows of ``fold_in_rows`` that thread slot ``slot`` places (a plain
    function: see hogwild.py)."""
    indptr, indices = interactions.indptr, interactions.indices
    shuffled, shuffled_weights = scratch.shuffled, scratch.shuffled_weights
    mean = scratch.mean[slot]
    for row in range(slot, indptr.shape[0] - 1, n_slots):
        start, stop = indptr[row], indptr[row + 1]
        user = embeddings.users[row]
        rng_state = rng_states[row]
        step = group_size if group_size > 0 else max(stop - start, 1)
        n_averaged = 0
        for epoch in range(n_epochs):
            rng_state = shuffle_row_weighted(rng_state, indices, weights, shuffled,
                                             shuffled_weights, start, stop)
            for first in range(start, stop, step):
                last = min(first + step, stop)
                rng_state = frozen_step(stepper, slot, parameters, sampler, row,
                                        shuffled[first:last], shuffled_weights[first:last],
                                        interactions, embeddings, optimizer, rng_state)
            # The vectors at the end of the second half's epochs are averaged.
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




def fold_in_kernel(config):
    """The Numba dispatcher that places new users for ``config``'s solver and loss."""
    solver = config.solver
    calls = {fold_in_rows: {"_fold_in_slot": _fold_in_slot},
             _fold_in_slot: {"frozen_step": solver.frozen_step}, **solver.calls}
    return compiled_for(fold_in_rows, config.loss, calls, solver.name)


def fold_in(config, data, weights, embeddings, sampler, reference_count, rng_states):
    """Move ``embeddings.users`` (new users, one per row of ``data``) in place.

    ``config`` names the solver and the loss; ``weights`` weigh the rows'
    pairs; ``sampler`` draws the negatives; ``rng_states`` holds one random
    state per row.
    """
    solver, loss, n_threads = config.solver, config.loss, config.n_threads
    stepper, group_size = solver.fold_in_step(config, data, embeddings.items.shape[0])
    n_components = embeddings.users.shape[1]
    scratch = FoldInScratch(np.empty(data.n_interactions, np.int32),
                            np.empty(data.n_interactions, np.float32),
                            np.empty((n_threads, n_components), np.float32))
    optimizer = Optimizer(np.float32(config.learning_rate), np.float32(config.max_norm))
    fold_in_kernel(config)(
        loss.parameters(config, reference_count, solver.shared_negatives), sampler, data,
        weights, embeddings, optimizer, stepper, group_size, config.fold_in_epochs, rng_states,
        scratch, n_threads,
    )  # fmt: skip
