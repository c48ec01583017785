"""Collaborative Metric Learning as a scikit-learn estimator.

``CMLRecommender`` embeds users and items in one Euclidean space, trained by
Numba kernels on CPU; see its docstring and the documentation in ``docs/``.
"""

from ._threads import prefer_fork_safe_layer
from ._version import __version__

# Before any kernel runs: Numba picks its threading layer once per process.
prefer_fork_safe_layer()

from ._estimator import CMLRecommender  # noqa: E402
from ._loading import load_model  # noqa: E402
from ._pipeline import RecommenderPipeline, make_recommender  # noqa: E402
from ._warmup import warmup  # noqa: E402

__all__ = ["CMLRecommender", "RecommenderPipeline", "__version__", "load_model",
           "make_recommender", "warmup"]
