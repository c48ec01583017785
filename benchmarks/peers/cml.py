"""CMLRecommender (this package): the block solver by default, Numba kernels and BLAS.

Grid: the package defaults (``solver="block"``: blocks of 4,096 pairs
against a shared pool of 2,048 negatives; the sampled softmax at
temperature 0.3 with the per-user exponent 0.15; learning rate 0.15; the
mean of the epochs' vectors from epoch 5) and three neighbours: learning
rate 0.1 and 0.2, and the temperature exponent 0.  Everything else is the
package default (negatives drawn in proportion to ``(popularity + 1) **
0.1``; covariance weight 1; vectors in the unit ball).  A pair's score is
minus the squared distance.  The per-pair solver's best setting of the
earlier runs (``solver="hogwild"``, learning rate 0.1, exponent 0.15) is in
docs/benchmarks.md.
"""

from _common import tiny_matrix

import sklearn_cml
from sklearn_cml import CMLRecommender
from sklearn_cml.metrics import embedding_scores

NAME = "CMLRecommender"
SCHEDULE = "sgd"
GRID = (
    {},
    {"learning_rate": 0.1},
    {"learning_rate": 0.2},
    {"temperature_exponent": 0.0},
)


def missing():
    """CMLRecommender is always there: it is the package under test."""
    return None


def version():
    return sklearn_cml.__version__


def warm_up(threads, settings=({}, {"loss": "hinge"}, {"solver": "hogwild"})):
    """Compile (or load from the on-disk cache) the Numba kernels of each setting."""
    for setting in settings:
        CMLRecommender(n_components=8, n_epochs=1, n_jobs=threads, random_state=0,
                       **setting).fit(tiny_matrix())


def train(X, setting, *, n_components, threads, n_epochs, random_state, after_epoch,
          **fit_params):
    """One ``partial_fit`` per epoch (the first one initialises the vectors).

    ``fit_params`` (``item_features``) go to every ``partial_fit``.
    """
    model = CMLRecommender(n_components=n_components, n_epochs=1, n_jobs=threads,
                           random_state=random_state, **setting)

    def snapshot():
        return embedding_scores(model.user_embeddings_.copy(), model.item_embeddings_.copy())

    for epoch in range(1, n_epochs + 1):
        model.partial_fit(X, **fit_params)
        after_epoch(epoch, snapshot)
