"""Solvers of the embedding loss, one module each, and the registry that names them.

``SOLVERS`` maps each value of ``CMLRecommender(solver=...)`` to a
``Solver`` (``_base.Solver``): how an epoch runs over the training pairs,
and the step that places new users against frozen items (``_fold_in``,
one fold-in loop for every solver).  A solver draws the negatives, asks
the loss for the weights of each row of squared distances
(``_losses.weigh_row``), and takes the optimiser's steps, so every loss
trains with every solver.  To add a solver: write a module here that
provides both, then add one entry below.
"""

from . import block, hogwild
from ._base import Solver
from ._fold_in import fold_in, fold_in_kernel

SOLVERS = {
    "hogwild": hogwild.SOLVER,
    "block": block.SOLVER,
}

__all__ = ["SOLVERS", "Solver", "fold_in", "fold_in_kernel"]
