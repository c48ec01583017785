"""What a solver provides to the training engine (see ``_solvers/__init__.py``)."""

import threading
import types
from collections.abc import Callable
from dataclasses import dataclass

from numba import njit

from .._numba_config import NUMBA_CACHE


@dataclass(frozen=True)
class Solver:
    """A way of minimising the embedding loss.

    Both ways call the loss's weights function (``_losses.weigh_row``) on
    rows of squared distances, and do the rest themselves: drawing the
    negatives, the gradients, the optimiser's steps.  Their kernels are
    compiled once per loss (``compiled_for``).

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
        NamedTuple of the per-thread buffers of ``frozen_step``, and the
        positives per step (0: all of a row's).
    frozen_step : numba function
        The solver's step on one new user with the items frozen, with the
        signature of ``_fold_in.frozen_step``; inlined into the fold-in
        loop.
    calls : dict
        The chains of the solver's functions from its kernels down to the
        ones that call ``weigh_row``, as ``compiled_for`` takes them (the
        epoch's kernels and ``frozen_step``'s).
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
    frozen_step: Callable
    calls: dict
    shared_negatives: bool
    epoch_kernels: Callable = lambda loss: ()


# Copies of kernels made for one loss, by (kernel, tag, loss): each made and
# compiled once per process.  The lock keeps two Python threads from making
# two dispatchers of one copy (which would share a cache index).
_COPIES = {}
_COPIES_LOCK = threading.RLock()


def compiled_for(kernel, loss, calls, tag):
    """``kernel`` compiled for ``loss``: a copy whose global ``weigh_row`` is
    the loss's weights function.

    Binding the loss's function by name lets Numba inline it as it inlines
    any function, before typing.  A dispatch by type (an overload) would be
    inlined after typing, and Numba's dead-code elimination then drops
    stores in the caller that reach arrays through a NamedTuple's fields (the
    AdaGrad sums of a step: docs/algorithm.md, "Architecture").

    ``calls`` maps each function of the chain from ``kernel`` down to the
    ones that call ``weigh_row`` to ``{global name: function}``, the
    functions it calls on the way; they are copied for the loss and bound
    in its copy.  ``tag`` (the solver's name) names the copies, which the
    package's losses keep in Numba's on-disk cache under names of their own
    (``epoch_chunk__hogwild_hinge``).  A loss defined outside the package is
    compiled anew in each process: its types must not reach a cache index
    that every later process loads, and that fails to load where the loss's
    module cannot be imported.
    """
    key = (kernel, tag, loss.name, loss.weights)
    with _COPIES_LOCK:
        if key not in _COPIES:
            bound = {"weigh_row": loss.weights}
            for name, callee in calls.get(kernel, {}).items():
                bound[name] = compiled_for(callee, loss, calls, tag)
            packaged = loss.parameters_type.__module__.startswith(__name__.split(".")[0] + ".")
            _COPIES[key] = _copy(kernel, bound, f"{tag}_{loss.name}", NUMBA_CACHE and packaged)
        return _COPIES[key]


def _copy(kernel, bound, suffix, cache):
    """A new dispatcher of ``kernel``'s Python function, with its globals
    ``bound`` replaced and a name of its own."""
    function = kernel.py_func
    copy = types.FunctionType(function.__code__, {**function.__globals__, **bound},
                              function.__name__, function.__defaults__,
                              function.__closure__)
    copy.__qualname__ = f"{function.__qualname__}__{suffix}"
    options = {key: value for key, value in kernel.targetoptions.items()
               if key in ("parallel", "fastmath", "error_model", "inline")}
    # A function inlined into its callers is never compiled on its own.
    return njit(cache=cache and options.get("inline") != "always", **options)(copy)
