"""Embedding losses, one module each, and the registry that names them.

``LOSSES`` maps each value of ``CMLRecommender(loss=...)`` to a ``Loss``
(``_base.Loss``): a NamedTuple type of its hyperparameters and one Numba
weights function, which turns a row of squared distances from a user to
its positives and to sampled negatives into the weights ``dL/dD`` and the
loss (the contract of ``weigh_row``).  Every solver calls that one function; the
sampling, the gradients and the optimiser's step are the solvers'.  The
estimator's ``loss`` parameter accepts exactly the registry's names, read
live: a loss registered from outside is accepted at once.

To add a loss: write a module here with the NamedTuple, the weights
function and a ``Loss``; then add one entry below.
"""

from . import hinge, softmax
from ._base import Loss, LossRow, RowScratch

LOSSES = {
    "hinge": hinge.LOSS,
    "softmax": softmax.LOSS,
}


def weigh_row(parameters, row, pair_coef, scratch):
    """The loss of one row and its weights (compiled code only).

    The name solvers' kernels call: each kernel is compiled once per loss,
    with this name bound to the loss's ``Loss.weights``
    (``_solvers._base.compiled_for``).

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
    raise NotImplementedError("weigh_row is bound to a loss's weights in the solvers' kernels")


__all__ = ["LOSSES", "Loss", "LossRow", "RowScratch", "weigh_row"]
