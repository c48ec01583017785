"""What a loss provides to the solvers (see ``_losses/__init__.py``)."""

from collections.abc import Callable
from dataclasses import dataclass


def _nothing_to_prepare(scratch):
    """Most losses keep no state across the steps of a chunk."""


@dataclass(frozen=True)
class Loss:
    """An embedding loss: its Numba step and what the solver needs to run it.

    Attributes
    ----------
    name : str
        The value of ``CMLRecommender(loss=...)``.
    group_size : int
        Positives of one user that one step works on (1: a single pair).
        The per-pair solver cuts each user's items into groups of this size.
    parameters_type : type
        The NamedTuple class of the hyperparameters the step reads.
    parameters : callable
        ``parameters(params, reference_count, fold_in)`` returns a
        ``parameters_type`` from the estimator's parameters (``params``), the
        median number of items per training user, and whether the step
        places new users against frozen items.
    scratch : callable
        ``scratch(n_slots, n_components, n_items, params)`` returns the
        step's per-thread buffers (a NamedTuple of arrays, one row per
        thread).
    pair_step : numba function
        The per-pair solver's step, with the signature that
        ``_solvers.hogwild.pair_step`` documents.
    block_row : numba function or None
        The block solver's loss of one user against a pool, with the
        signature that ``_solvers.block.block_row`` documents; None if the
        loss does not run with the block solver.
    prepare_chunk : callable
        Called on the per-pair solver's scratch before each chunk of steps.
    """

    name: str
    group_size: int
    parameters_type: type
    parameters: Callable
    scratch: Callable
    pair_step: Callable
    block_row: Callable = None
    prepare_chunk: Callable = _nothing_to_prepare
