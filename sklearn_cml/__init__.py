"""Collaborative Metric Learning as a scikit-learn estimator.

``CMLRecommender`` embeds users and items in one Euclidean space, trained by
Numba kernels on CPU; see its docstring and the documentation in ``docs/``.
"""

from ._estimator import CMLRecommender, load_model
from ._version import __version__

__all__ = ["CMLRecommender", "__version__", "load_model"]
