"""The typed, frozen configuration of one training or fold-in call.

``CMLRecommender`` validates its parameters, then builds a ``Config`` once
per ``fit``, ``partial_fit`` or fold-in (``training_config``) and hands it
to the engine, the solvers and the losses, which never see the estimator.
Values that depend on the data (``"auto"``) and on the machine (``n_jobs``)
are resolved here, once; the loss and the solver are their registry
entries, looked up by name here and nowhere else.
"""

from dataclasses import dataclass, fields

from ._losses import LOSSES, Loss
from ._solvers import SOLVERS, Solver
from ._threads import effective_n_threads

# With covariance_interval="auto", a covariance step after every this many
# training pairs per user and item vector: a step touches every vector, so
# its cost per epoch stays a fixed share of the epoch's, whatever the data's
# size (MovieLens-1M: about 97,000 pairs, 3 to 4 steps per epoch).
AUTO_COVARIANCE_PAIRS_PER_VECTOR = 10


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
    temperature: float
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
    # Early stopping.
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    validation_interval: int
    tol: float
    top_k: int
    # The run.
    random_state: object  # None, an int or a RandomState, as given
    n_threads: int
    verbose: int


def training_config(params, data):
    """The ``Config`` of validated estimator parameters ``params`` (a dict, as
    ``get_params(deep=False)`` returns it) for the ``Interactions`` ``data``."""
    resolved = {
        "loss": LOSSES[params["loss"]],
        "solver": SOLVERS[params["solver"]],
        "rank_weight": bool(params["rank_weight"]),
        "average": int(params["average"]),
        "covariance_interval": _covariance_interval(params["covariance_interval"], data),
        "early_stopping": bool(params["early_stopping"]),
        "n_threads": effective_n_threads(params["n_jobs"]),
        "verbose": int(params["verbose"]),
    }
    # Every other setting is the parameter of the same name, as validated.
    given = {field.name: params[field.name] for field in fields(Config)
             if field.name not in resolved}
    return Config(**given, **resolved)


def _covariance_interval(value, data):
    """Training pairs between two covariance steps, for ``data``."""
    if value == "auto":
        n_vectors = data.n_users + data.n_items
        return max(1, AUTO_COVARIANCE_PAIRS_PER_VECTOR * n_vectors)
    return value
