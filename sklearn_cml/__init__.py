"""Collaborative Metric Learning as a scikit-learn estimator.

``CMLRecommender`` embeds users and items in one Euclidean space, trained by
Numba kernels on CPU; see its docstring and the documentation in ``docs/``.
"""

from ._estimator import CMLRecommender
from ._persistence import load_model

__version__ = "0.1.0.dev0"

__all__ = ["CMLRecommender", "__version__", "load_model"]
