"""Solvers of the embedding loss, one module each, and the registry that names them.

``SOLVERS`` maps each value of ``CMLRecommender(solver=...)`` to a
``Solver`` (``_base.Solver``): how an epoch runs over the training pairs,
and how new users are placed against frozen items (fold-in) with the same
steps.  To add a solver: write a module here that provides both, then add
one entry below.
"""

from . import hogwild
from ._base import Solver

SOLVERS = {
    "hogwild": hogwild.SOLVER,
}

__all__ = ["SOLVERS", "Solver"]
