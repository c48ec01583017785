"""Solvers of the embedding loss, one module each, and the registry that names them.

``SOLVERS`` maps each value of ``CMLRecommender(solver=...)`` to a
``Solver`` (``_base.Solver``): how an epoch runs over the training pairs,
and how new users are placed against frozen items (fold-in) with the same
steps.  To add a solver: write a module here that provides both, then add
one entry below.
"""

from . import block, hogwild
from ._base import Solver

SOLVERS = {
    "hogwild": hogwild.SOLVER,
    "block": block.SOLVER,
}



def solver_for(params, loss):
    """The solver ``params.solver`` names, checked against the ``Loss``."""
    solver = SOLVERS[params.solver]
    if not solver.supports(loss):
        others = [name for name, other in SOLVERS.items() if other.supports(loss)]
        raise ValueError(
            f"solver={params.solver!r} cannot train loss={loss.name!r}: the loss has no "
            f"step for it. Use solver={others[0]!r}, or another loss."
        )
    return solver


__all__ = ["SOLVERS", "Solver", "solver_for"]
