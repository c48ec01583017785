"""CMLRecommender with every default, as a new user fits it: one ``fit`` call.

Nothing is tuned and nothing is chosen on the benchmark's validation split:
``CMLRecommender(n_jobs=threads, random_state=0).fit(train)``, whose
defaults resolve what depends on the data (``resolved_params_``: the
temperature is measured on a few held-out training interactions).  Timed
as one "epoch": the whole fit, the measurement included (compilation
excluded by the warm-up), which is the time a user waits.
"""

from _common import tiny_matrix

from sklearn_cml import CMLRecommender
from sklearn_cml.metrics import embedding_scores, ranking_metrics

from . import cml

NAME = "CML defaults"
SCHEDULE = "none"
GRID = ({},)
missing, version = cml.missing, cml.version


# What the last fit resolved and how it stopped (``fit_facts``).
_last_fit = {}


def warm_up(threads):
    """Compile (or load) the default kernels and those of the holdout's scoring."""
    cml.warm_up(threads, settings=({},))
    X = tiny_matrix()
    ranking_metrics(X, embedding_scores(X.toarray()[:, :8], X.toarray().T[:, :8]), k=5)


def fit_facts():
    """The last fit's ``resolved_params_``, epochs run and epoch kept."""
    return dict(_last_fit)


def train(X, setting, *, n_components, threads, n_epochs, random_state, after_epoch):
    """One default ``fit`` (``n_components`` is the default's, 100, in every suite)."""
    model = CMLRecommender(n_jobs=threads, random_state=random_state, **setting).fit(X)
    _last_fit.clear()
    _last_fit.update(resolved_params=model.resolved_params_, epochs_run=model.n_iter_,
                     epoch_kept=model.best_epoch_)
    users, items = model.user_embeddings_, model.item_embeddings_
    after_epoch(1, lambda: embedding_scores(users.copy(), items.copy()))
