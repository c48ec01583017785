"""What a solver provides to the training engine (see ``_solvers/__init__.py``)."""

import types
from collections.abc import Callable
from dataclasses import dataclass

from numba import njit


@dataclass(frozen=True)
class Solver:
    """A way of minimising the embedding loss.

    Both ways call the loss's weights function (``_losses.weigh_row``) on
    rows of squared distances, and do the rest themselves: drawing the
    negatives, the gradients, the optimiser's steps.

    Attributes
    ----------
    name : str
        The value of ``CMLRecommender(solver=...)``.
    make_epoch : callable
        ``make_epoch(config, data, weights, sampler, reference_count,
        between_chunks)`` returns ``run(state, block_losses)``, which runs
        one epoch over the training ``data`` (``Interactions``), each
        pair's term weighted by its entry of ``weights`` (float32, aligned
        with ``data.indices``), on the training state, adds each block's
        loss to ``block_losses`` and calls ``between_chunks(state)`` after
        each chunk of pairs.  ``reference_count`` is the median number of
        items of the training users.
    fold_in_step : callable
        ``fold_in_step(config, data, n_items)`` returns ``(stepper,
        group_size)`` for placing new users (``_fold_in.fold_in``): a
        NamedTuple of the per-thread buffers of the solver's own step,
        whose type selects that step (an overload of
        ``_fold_in.frozen_step``), and the positives per step (0: all of a
        row's).
    shared_negatives : bool
        Whether a row's negatives are shared by many pairs (a pool), rather
        than drawn for its pairs alone; the hinge chooses the impostors it
        pushes by it.
    epoch_kernels : callable
        ``epoch_kernels(loss)``: the Numba dispatchers whose compilation
        makes most of the first epoch's time with that loss, which
        ``verbose`` announces when they are not compiled yet.
    """

    name: str
    make_epoch: Callable
    fold_in_step: Callable
    shared_negatives: bool
    epoch_kernels: Callable = lambda loss: ()


def twins(kernels):
    """Uncached twins of ``kernels`` (kernel -> {name: callee}), calling twins
    of their callees: what ``kernel_for`` hands out for outside losses.

    A loss defined outside the package must not reach the on-disk cache: its
    types would be pickled into the cache index of the solver's kernels,
    which every later process loads, and fails to load where the loss's
    module cannot be imported.  So its kernels run as twins, compiled anew
    in each process.
    """
    result = {}
    for kernel, callees in kernels.items():
        callee_twins = {name: _uncached(callee, {}) for name, callee in callees.items()}
        result[kernel] = _uncached(kernel, callee_twins)
    return result


def _uncached(kernel, replacements):
    function = kernel.py_func
    twin = types.FunctionType(function.__code__, {**function.__globals__, **replacements},
                              function.__name__, function.__defaults__)
    options = {key: value for key, value in kernel.targetoptions.items()
               if key in ("parallel", "fastmath", "error_model")}
    return njit(cache=False, **options)(twin)


def kernel_for(kernel, loss, kernel_twins):
    """``kernel``, or its uncached twin for a loss defined outside the package."""
    if loss.parameters_type.__module__.startswith(__name__.split(".")[0] + "."):
        return kernel
    return kernel_twins[kernel]
