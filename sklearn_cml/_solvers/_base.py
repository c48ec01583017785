"""What a solver provides to the training engine (see ``_solvers/__init__.py``)."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Solver:
    """A way of minimising the embedding loss.

    Attributes
    ----------
    name : str
        The value of ``CMLRecommender(solver=...)``.
    make_epoch : callable
        ``make_epoch(loss, data, params, sampler, reference_count, n_threads,
        n_components, between_chunks)`` returns ``run(state, block_losses)``,
        which runs one epoch over the training ``data`` (``Interactions``)
        on the training state, adds each block's loss to ``block_losses``
        and calls ``between_chunks(state)`` after each chunk of pairs.
    fold_in : callable
        ``fold_in(loss, data, embeddings, params, sampler, reference_count,
        n_threads, rng_states)`` moves ``embeddings.users``, one new user
        per row of ``data``, against the frozen ``embeddings.items``.
    """

    name: str
    make_epoch: Callable
    fold_in: Callable
