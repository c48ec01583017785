"""Embedding losses, one module each, and the registry that names them.

``LOSSES`` maps each value of ``CMLRecommender(loss=...)`` to a ``Loss``
(``_base.Loss``): a NamedTuple type of its hyperparameters and one Numba
weights function, which turns a row of squared distances from a user to
its positives and to sampled negatives into the weights ``dL/dD`` and the
loss (``_base.weigh_row``).  Every solver calls that one function; the
sampling, the gradients and the optimiser's step are the solvers'.  The
estimator's ``loss`` parameter accepts exactly the registry's names, read
live: a loss registered from outside is accepted at once.

To add a loss: write a module here with the NamedTuple, the weights
function and a ``Loss``; then add one entry below.
"""

from numba import types
from numba.extending import overload

from . import hinge, softmax
from ._base import Loss, LossRow, RowScratch

LOSSES = {
    "hinge": hinge.LOSS,
    "softmax": softmax.LOSS,
}


def weigh_row(parameters, row, pair_coef, scratch):
    """The loss of one row and its weights (compiled code only).

    Chosen at compile time by the type of ``parameters``, among the
    ``Loss.weights`` of the losses in ``LOSSES`` when the kernel compiles
    (read then: a loss registered from outside is found).

    Parameters
    ----------
    parameters : the loss's ``parameters_type``
    row : LossRow
        ``row.distances`` is overwritten with ``dL/dD`` of each negative.
    pair_coef : float32 array of shape (n_pairs,)
        Out: ``dL/dd_b`` of each pair, ``d_b = |u - p_b|^2``.
    scratch : RowScratch

    Returns
    -------
    weight_sum : float32
        The sum of the negatives' weights.
    loss : float32
        The row's loss, each pair's term multiplied by its weight.
    """
    raise NotImplementedError("weigh_row is compiled into the solvers' kernels")


# Not inlined at Numba's level (LLVM may still inline it): after an inlined
# overload, Numba's dead-code elimination drops the caller's stores to
# arrays reached through a NamedTuple's fields that are not read again, such
# as the AdaGrad sums of a step.
@overload(weigh_row)
def _weigh_row(parameters, row, pair_coef, scratch):
    if not isinstance(parameters, types.BaseNamedTuple):
        return None
    functions = [loss.weights for loss in LOSSES.values()
                 if loss.parameters_type is parameters.instance_class]
    if not functions:
        return None
    weights = functions[0]

    def implementation(parameters, row, pair_coef, scratch):
        return weights(parameters, row, pair_coef, scratch)

    return implementation


__all__ = ["LOSSES", "Loss", "LossRow", "RowScratch", "weigh_row"]
