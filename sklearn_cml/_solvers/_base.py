"""What a solver provides to the training engine (see ``_solvers/__init__.py``)."""

import types
from collections.abc import Callable
from dataclasses import dataclass

from numba import njit


@dataclass(frozen=True)
class Solver:
    """A way of minimising the embedding loss.

    Attributes
    ----------
    name : str
        The value of ``CMLRecommender(solver=...)``.
    make_epoch : callable
        ``make_epoch(loss, data, weights, params, sampler, reference_count,
        n_threads, n_components, between_chunks)`` returns ``run(state,
        block_losses)``, which runs one epoch over the training ``data``
        (``Interactions``), each pair's term weighted by its entry of
        ``weights`` (float32, aligned with ``data.indices``), on the
        training state, adds each block's loss to ``block_losses`` and
        calls ``between_chunks(state)`` after each chunk of pairs.
    fold_in : callable
        ``fold_in(loss, data, weights, embeddings, params, sampler,
        reference_count, n_threads, rng_states)`` moves ``embeddings.users``,
        one new user per row of ``data`` (its pairs weighted by
        ``weights``), against the frozen ``embeddings.items``.
    supports : callable
        ``supports(loss)``: whether the solver can minimise that ``Loss``.
    epoch_kernels : callable
        ``epoch_kernels(loss)``: the Numba dispatchers whose compilation
        makes most of the first epoch's time with that loss, which
        ``verbose`` announces when they are not compiled yet.
    """

    name: str
    make_epoch: Callable
    fold_in: Callable
    supports: Callable = lambda loss: True
    epoch_kernels: Callable = lambda loss: ()


# With covariance_interval="auto", a covariance step after every this many
# training pairs per user and item vector: a step touches every vector, so
# its cost per epoch stays a fixed share of the epoch's, whatever the data's
# size (MovieLens-1M: about 97,000 pairs, 3 to 4 steps per epoch).
AUTO_COVARIANCE_PAIRS_PER_VECTOR = 10


def covariance_interval(params, data):
    """Training pairs between two covariance steps, for ``data``."""
    if params.covariance_interval == "auto":
        n_vectors = (data.indptr.shape[0] - 1) + data.n_items
        return max(1, AUTO_COVARIANCE_PAIRS_PER_VECTOR * n_vectors)
    return params.covariance_interval


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
