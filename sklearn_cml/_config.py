"""The typed, frozen configuration of one training or fold-in call.

``CMLRecommender`` validates its parameters, then builds a ``Config`` once
per ``fit``, ``partial_fit`` or fold-in (``training_config``) and hands it
to the engine, the solvers and the losses, which never see the estimator.
Values that depend on the data (``"auto"``) and on the machine (``n_jobs``)
are resolved here, once; the loss and the solver are their registry
entries, looked up by name here and nowhere else.
"""

from dataclasses import dataclass, fields

import numpy as np

from . import _temperature as temperature
from ._holdout import holdout_size
from ._losses import LOSSES, Loss
from ._solvers import SOLVERS, Solver
from ._threads import effective_n_threads

# With covariance_interval="auto", a covariance step after every this many
# training pairs per user and item vector: a step touches every vector, so
# its cost per epoch stays a fixed share of the epoch's, whatever the data's
# size (MovieLens-1M: about 97,000 pairs, 3 to 4 steps per epoch).
AUTO_COVARIANCE_PAIRS_PER_VECTOR = 10

# With pool_size="auto", this many negatives per training pair of the mean
# user, within POOL_BOUNDS and a multiple of POOL_STEP.  A block's products
# cost (users in the block) x pool_size, so a pool sized to the users' pairs
# costs the same per pair on any data: on catalogues of users with few
# pairs (5 per user on the Amazon sets) a pool of 512 reaches a given
# validation recall in half the time of 2,048, which users with many pairs
# (MovieLens-1M, CiteULike-a) still pay for (docs/ref_parameters.md, "The pool").
POOL_PER_USER_PAIR = 100
POOL_BOUNDS = (512, 2048)
POOL_STEP = 64

# The parameters whose default, "auto", is resolved from the data here.
AUTO_PARAMETERS = ("temperature", "pool_size", "covariance_interval", "early_stopping")


@dataclass(frozen=True)
class Config:
    """Every setting that training and fold-in read (``CMLRecommender``'s
    parameters, documented there), resolved for one call."""

    # The space.
    n_components: int
    max_norm: float
    # The embedding loss and how it is minimised.
    loss: Loss
    solver: Solver
    margin: float
    rank_weight: bool
    temperature: float  # the one to train with now
    # temperature="auto" in fit: measure it after the first epochs (``_temperature``).
    calibrate_temperature: bool
    temperature_exponent: float
    n_negatives: int
    negative_sampling_exponent: float
    learning_rate: float
    n_epochs: int
    average: int  # the first averaged epoch; 0: no averaging
    covariance_weight: float
    covariance_interval: int  # training pairs between two covariance steps
    block_size: int
    pool_size: int
    fold_in_epochs: int
    # Item features.
    cold_start: str
    hidden_size: int
    feature_weight: float
    feature_learning_rate: float
    dropout: float
    # Early stopping: "holdout" (a few pairs, ``_holdout``), "fraction"
    # (``validation_fraction`` of each user's pairs) or "off".
    early_stopping: str
    validation_fraction: float
    n_iter_no_change: int
    validation_interval: int
    tol: float
    top_k: int
    # The run.
    random_state: object  # None, an int or a RandomState, as given
    n_threads: int
    verbose: int
    # What each "auto" parameter resolved to on this data, by name.
    resolved: dict


def training_config(params, data, fitted=None):
    """The ``Config`` of validated estimator parameters ``params`` (a dict, as
    ``get_params(deep=False)`` returns it) for the ``Interactions`` ``data``.

    ``fitted`` is what a fitted model's "auto" parameters resolved to
    (``History.resolved``), which ``partial_fit`` and fold-in go on with;
    None for a new fit.
    """
    auto_temperature = params["temperature"] == "auto" and params["loss"] == "softmax"
    resolved = {
        "temperature": _temperature(params["temperature"], fitted),
        "calibrate_temperature": auto_temperature and fitted is None,
        "loss": LOSSES[params["loss"]],
        "solver": SOLVERS[params["solver"]],
        "rank_weight": bool(params["rank_weight"]),
        "average": int(params["average"]),
        "pool_size": _pool_size(params["pool_size"], data, fitted),
        "covariance_interval": _covariance_interval(params["covariance_interval"], data),
        "early_stopping": _early_stopping(params["early_stopping"], data),
        "n_threads": effective_n_threads(params["n_jobs"]),
        "verbose": int(params["verbose"]),
    }
    resolved["resolved"] = {name: _published(resolved[name]) for name in AUTO_PARAMETERS
                            if params[name] == "auto"
                            and (name != "temperature" or auto_temperature)
                            and (name != "pool_size" or params["solver"] == "block")}
    # Every other setting is the parameter of the same name, as validated.
    given = {field.name: params[field.name] for field in fields(Config)
             if field.name not in resolved}
    return Config(**given, **resolved)


def _temperature(value, fitted):
    """The temperature to train with: a fitted model's, or the start of "auto"'s
    measurement (``_temperature``)."""
    if value != "auto":
        return value
    return (fitted or {}).get("temperature", temperature.START)


def _early_stopping(value, data):
    """How ``fit`` stops: "holdout", "fraction" or "off" (see ``Config``)."""
    if value == "auto":
        return "holdout" if holdout_size(data) else "off"
    return "fraction" if value else "off"


def _published(value):
    """A resolved value as ``resolved_params_`` shows it."""
    return {"holdout": True, "off": False}.get(value, value)


def _pool_size(value, data, fitted):
    """Negatives per block: a fitted model's (partial_fit, fold-in), or
    ``auto_pool_size`` of ``data``."""
    if value != "auto":
        return value
    if fitted and "pool_size" in fitted:
        return fitted["pool_size"]
    return auto_pool_size(data.n_interactions, int(np.count_nonzero(np.diff(data.indptr))))


def auto_pool_size(n_interactions, n_users):
    """``pool_size="auto"``: ``POOL_PER_USER_PAIR`` negatives per training pair
    of the mean user (of ``n_users`` with pairs), a multiple of
    ``POOL_STEP`` within ``POOL_BOUNDS``."""
    wanted = POOL_PER_USER_PAIR * n_interactions / max(n_users, 1)
    low, high = POOL_BOUNDS
    return int(min(max(round(wanted / POOL_STEP) * POOL_STEP, low), high))


def _covariance_interval(value, data):
    """Training pairs between two covariance steps, for ``data``."""
    if value == "auto":
        n_vectors = data.n_users + data.n_items
        return max(1, AUTO_COVARIANCE_PAIRS_PER_VECTOR * n_vectors)
    return value
