"""Embedding losses, one module each, and the registry that names them.

``LOSSES`` maps each value of ``CMLRecommender(loss=...)`` to a ``Loss``:
its Numba step and what a solver needs to run it (``_base.Loss``).  The
estimator's ``loss`` parameter accepts exactly the registry's names.

To add a loss: write a module here with a NamedTuple of its
hyperparameters, a step with the signature of
``_solvers.hogwild.pair_step``, and a ``Loss``; then add one entry below.
"""

from . import hinge, softmax
from ._base import Loss

LOSSES = {
    "hinge": hinge.LOSS,
    "softmax": softmax.LOSS,
}

__all__ = ["LOSSES", "Loss"]
