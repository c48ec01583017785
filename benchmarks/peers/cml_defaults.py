"""CMLRecommender with every default, as a new user fits it: one ``fit`` call.

Nothing is tuned and nothing is chosen on the benchmark's validation split:
``CMLRecommender(n_jobs=threads, random_state=0).fit(train)``, whose
defaults resolve what depends on the data (``resolved_params_``: the
temperature is measured on a few held-out training interactions).  Timed
as one "epoch": the whole fit, the measurement included (compilation
excluded by the warm-up), which is the time a user waits; its test scores
are those of the model that fit returns.

A second, identical fit is traced epoch by epoch (``fit_facts()["curve"]``:
validation Recall@50 of the vectors the model would answer with after
each epoch, against the training seconds so far, the clock stopped while
it scores), for the time the defaults take to reach a peer's recall.  On
a large catalogue, where ranking every item for every user takes longer
than an epoch, it scores every few epochs (``trace_interval``).  The
trace reads the engine's state after each epoch (``each_epoch``), which no
public API offers: it is benchmark code, not an example to follow.
"""

import contextlib

from _common import BestEpoch, tiny_matrix

from sklearn_cml import CMLRecommender, _engine
from sklearn_cml.metrics import embedding_scores, ranking_metrics

from . import cml

NAME = "CML defaults"
SCHEDULE = "none"
GRID = ({},)
missing, version = cml.missing, cml.version


# What the last fit resolved, how it stopped and its traced curve (``fit_facts``).
_last_fit = {}


def warm_up(threads):
    """Compile (or load) the default kernels and those of the holdout's scoring."""
    cml.warm_up(threads, settings=({},))
    X = tiny_matrix()
    ranking_metrics(X, embedding_scores(X.toarray()[:, :8], X.toarray().T[:, :8]), k=5)


def fit_facts():
    """The last fit's ``resolved_params_``, epochs run, epoch kept and curve."""
    return dict(_last_fit)


def train(X, setting, *, n_components, threads, n_epochs, random_state, after_epoch):
    """One default ``fit`` (``n_components`` is the default's, 100, in every suite),
    then the same fit traced (``curve``), scored on ``after_epoch``'s split."""
    def model():
        return CMLRecommender(n_jobs=threads, random_state=random_state, **setting)

    fitted = model().fit(X)
    users, items = fitted.user_embeddings_, fitted.item_embeddings_
    after_epoch(1, lambda: embedding_scores(users.copy(), items.copy()))
    _last_fit.clear()
    _last_fit.update(resolved_params=fitted.resolved_params_, epochs_run=fitted.n_iter_,
                     epoch_kept=fitted.best_epoch_)
    with after_epoch.untimed():  # the trace's own clock, not the fit's
        split = (after_epoch.train, after_epoch.validation)
        trace = BestEpoch(split, trace_interval(X.shape), last=None)
        with each_epoch(lambda state: trace(
                state.n_iter, lambda: embedding_scores(*state.model_vectors()))):
            model().fit(X)
    _last_fit["curve"] = trace.curve


# Scores ranked per traced validation, beyond which the trace scores less
# often than every epoch (synthetic-40k's 40,000 x 40,000: every 3 epochs).
SCORES_PER_TRACE = 5e8


def trace_interval(shape):
    """Epochs between two traced validations, for a matrix of ``shape``."""
    return max(1, int(shape[0] * shape[1] // SCORES_PER_TRACE))


@contextlib.contextmanager
def each_epoch(callback):
    """Call ``callback(state)`` after every epoch of the fits run inside."""
    original = _engine.train

    def traced(state, data, config, n_epochs, features=None, after_epoch=None, **options):
        def then_trace(state):
            stop = after_epoch is not None and after_epoch(state)
            callback(state)
            return stop

        return original(state, data, config, n_epochs, features, after_epoch=then_trace,
                        **options)

    _engine.train = traced
    try:
        yield
    finally:
        _engine.train = original
