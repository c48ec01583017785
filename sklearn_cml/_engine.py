"""The training engine: the optimiser's state, the loop over epochs, fold-in.

The estimator validates its parameters and inputs, builds a
``_config.Config`` and hands both here.  The engine keeps everything
training updates in one ``TrainingState`` (the SGD vectors, their AdaGrad
sums, the random states, the running means, the epoch counter), runs the
epochs (the solver's pass over the pairs with the covariance step between
chunks, the feature pass, the checks that training did not break down, the
running means of the epochs' vectors, early stopping and progress), turns
a state into the ``_model.FittedModel`` that queries read
(``fitted_model``), and places new users against a fitted model's frozen
items (fold-in, the solver's own step: ``_solvers.fold_in``).
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from . import _temperature as temperature
from ._content import fit_content
from ._covariance import covariance_step
from ._features import FeatureStep, feature_epoch, initial_encoder
from ._holdout import PLATEAU_GAIN, split_holdout
from ._interactions import Interactions, to_interactions
from ._model import FittedModel, History
from ._progress import (
    EpochReport,
    announce_compilation,
    compilation_notice,
    early_stopping_summary,
    resolved_summary,
    temperature_notice,
    validation_notice,
)
from ._ranking import ranking_stats
from ._rng import random_permutation, row_hash_states, seed_states, stream_seed
from ._sampling import make_sampler, popularity_sampler
from ._solvers import fold_in as solver_fold_in
from ._solvers import fold_in_kernel
from ._steps import (
    FLOAT32_HEADROOM,
    Embeddings,
    Optimizer,
    broken_rows,
    clip_rows,
    update_running_mean,
)
from ._threads import thread_limits
from .metrics import embedding_scores, ranking_metrics
from .model_selection import train_test_split

# Each kind of epoch cuts its work into this many blocks, each with its own
# random state: a constant, so that results never depend on the number of
# threads.
N_BLOCKS = 64

# AdaGrad accumulators start here rather than at zero, so that the first
# steps are not all of size learning_rate (as in TensorFlow's Adagrad).
INITIAL_GRAD_SQ = 0.1


@dataclass
class TrainingState:
    """Everything training updates: the optimiser's state.

    ``user_embeddings`` and ``item_embeddings`` are the vectors SGD moves;
    ``user_average`` and ``item_average`` their running means over the last
    ``n_averaged`` epochs (None while nothing is averaged).  ``fitted_model``
    turns a state into what queries read.
    """

    user_embeddings: np.ndarray
    item_embeddings: np.ndarray
    user_grad_sq: np.ndarray
    item_grad_sq: np.ndarray
    rng_states: np.ndarray  # one per block of the embedding epochs
    feature_rng_states: np.ndarray  # one per block of the feature epochs
    seed: int  # the root of every random stream (``_rng.stream_seed``)
    median_user_count: float  # items of the median training user
    encoder: object = None  # ``_features.Encoder`` with item features
    encoder_grad_sq: object = None  # ``_features.EncoderGradSq``
    user_average: np.ndarray = None
    item_average: np.ndarray = None
    n_averaged: int = 0
    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    feature_loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    best_epoch: int = None
    resolved: dict = field(default_factory=dict)  # what "auto" parameters resolved to

    # The fields a checkpoint (early stopping) saves and restores.
    CHECKPOINT = ("user_embeddings", "item_embeddings", "user_grad_sq", "item_grad_sq",
                  "rng_states", "feature_rng_states", "encoder", "encoder_grad_sq",
                  "user_average", "item_average", "n_averaged")

    def embeddings(self):
        """The trained vectors and their AdaGrad sums, as the kernels take them."""
        return Embeddings(self.user_embeddings, self.user_grad_sq, self.item_embeddings,
                          self.item_grad_sq)

    def model_vectors(self):
        """``(users, items)``: the vectors the model answers with."""
        if self.n_averaged:
            return self.user_average, self.item_average
        return self.user_embeddings, self.item_embeddings

    def average_epoch(self, start):
        """Fold this epoch's vectors into the running means, from epoch ``start`` on.

        ``start`` 0 turns averaging off.  Before epoch ``start`` the means
        are dropped, so that they always cover epochs ``start`` to
        ``n_iter``.
        """
        if start == 0 or self.n_iter < start:
            self.user_average = self.item_average = None
            self.n_averaged = 0
        elif self.n_averaged == 0:
            self.user_average = self.user_embeddings.copy()
            self.item_average = self.item_embeddings.copy()
            self.n_averaged = 1
        else:
            self.n_averaged += 1
            update_running_mean(self.user_average, self.user_embeddings, self.n_averaged)
            update_running_mean(self.item_average, self.item_embeddings, self.n_averaged)

    def checkpoint(self):
        """Copies of the fields that define the model (``CHECKPOINT``)."""
        return {name: _copy(getattr(self, name)) for name in self.CHECKPOINT}

    def restore(self, checkpoint):
        for name, value in checkpoint.items():
            setattr(self, name, value)

    def resumed(self):
        """A copy to train further (``partial_fit``), so that a failed epoch
        changes nothing; validation scores start anew."""
        copy = dataclasses.replace(self, **self.checkpoint(), loss_curve=list(self.loss_curve),
                                   feature_loss_curve=list(self.feature_loss_curve))
        copy.validation_scores, copy.best_epoch = [], None
        return copy


def resume(state):
    """``state.resumed()``, or the refusal for a model loaded from a file
    saved without its optimiser state (``state`` None)."""
    if state is None:
        raise ValueError(
            "This model was loaded from a model file saved without its optimiser state, "
            "which keeps what the model answers with, so partial_fit cannot continue its "
            "training. Call fit to train anew; to continue training a model later, save "
            "it with include_optimizer_state=True (or pickle it)."
        )
    return state.resumed()


def fitted_model(state, data, features=None, *, cold_start=None, value_scales, ids=(None, None),
                 item_names=None):
    """The ``FittedModel`` of a trained state, on the training ``data``.

    ``features`` (``FeatureRows``) are the items' features, from which the
    content model is fitted; ``cold_start`` says how new items are placed
    from them.
    """
    users, items = state.model_vectors()
    # Training pairs per item: fold-in draws negatives by this popularity.
    item_counts = np.bincount(data.indices, minlength=data.n_items)
    history = History(state.n_iter, list(state.loss_curve), list(state.feature_loss_curve),
                      list(state.validation_scores), state.best_epoch, dict(state.resolved))
    has_features = features is not None
    return FittedModel(
        user_embeddings=users, item_embeddings=items, item_counts=item_counts,
        # A copy: data.indices may be the caller's X.indices.
        user_items=data.to_csr(copy=True), seed=state.seed,
        median_user_count=state.median_user_count, value_scales=value_scales,
        history=history, user_ids=ids[0], item_ids=ids[1], item_names=item_names,
        cold_start=cold_start if has_features else None,
        content=fit_content(features, item_counts) if has_features else None,
        encoder=state.encoder,
    )  # fmt: skip


def _copy(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):  # a NamedTuple of arrays
        return type(value)(*(array.copy() for array in value))
    return value


def root_seed(random_state):
    """The root of every random stream of one fit, drawn once from ``random_state``."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def initial_vectors(rng, n_rows, config):
    """``n_rows`` fresh vectors drawn from ``rng``: normal with variance
    ``1 / n_components`` per coordinate, clipped into the ball."""
    vectors = rng.standard_normal((n_rows, config.n_components), dtype=np.float32)
    vectors *= np.float32(1.0 / np.sqrt(config.n_components))
    clip_rows(vectors, config.max_norm)
    return vectors


def initial_state(data, config, features=None, seed=None):
    """Fresh vectors and optimiser state, all derived from ``seed`` (None: a
    root seed drawn from ``config.random_state``)."""
    if seed is None:
        seed = root_seed(config.random_state)
    rng = np.random.default_rng(stream_seed(seed, "initial vectors"))
    n_components = config.n_components
    state = TrainingState(
        user_embeddings=initial_vectors(rng, data.n_users, config),
        item_embeddings=initial_vectors(rng, data.n_items, config),
        user_grad_sq=np.full(data.n_users, INITIAL_GRAD_SQ, np.float32),
        item_grad_sq=np.full(data.n_items, INITIAL_GRAD_SQ, np.float32),
        rng_states=seed_states(stream_seed(seed, "embedding blocks"), N_BLOCKS),
        feature_rng_states=seed_states(stream_seed(seed, "feature blocks"), N_BLOCKS),
        seed=seed,
        median_user_count=_median_user_count(data.indptr),
        # Early stopping is fit's alone: partial_fit runs its epochs without it.
        resolved={name: value for name, value in config.resolved.items()
                  if name != "early_stopping"},
    )
    if features is not None:
        state.encoder, state.encoder_grad_sq = initial_encoder(
            features.n_features, config.hidden_size, n_components,
            features.indices.shape[0] / max(data.n_items, 1), rng,
        )  # fmt: skip
    return state


def fit(data, config, features=None, weights=None):
    """A model trained from scratch on ``data`` (``Interactions``): its state.

    ``weights`` (float32, aligned with ``data.indices``; None: all 1)
    weigh the pairs.  With early stopping, part of the interactions is held
    out (``config.early_stopping``: "holdout", a few pairs, ``_holdout``;
    "fraction", ``validation_fraction`` of each user's), and the state of
    the best epoch on it is kept.  With ``config.calibrate_temperature``,
    the temperature is measured on held-out pairs after the first epochs
    (``_temperature``) and training goes on with it; without early
    stopping those pairs rejoin training then.
    """
    seed = root_seed(config.random_state)
    split = _early_stopping_split(data, config, weights, seed)
    train_part, validation, train_weights = split or (data, None, weights)
    calibration = None
    if config.calibrate_temperature and config.n_epochs > temperature.CALIBRATION_EPOCHS:
        calibration = split or split_holdout(data, weights, seed)
    first_part, _, first_weights = calibration or split or (data, None, weights)
    state = initial_state(first_part, config, features, seed)
    state.resolved = dict(config.resolved)
    announced = {name: value for name, value in config.resolved.items()
                 if not (calibration and name == "temperature")}
    if config.verbose and announced:
        print(resolved_summary(announced), flush=True)
    stopper = None
    if validation is not None:
        if config.early_stopping == "holdout":
            stopper = PlateauStopping(train_part, validation, config.top_k,
                                      config.n_iter_no_change, PLATEAU_GAIN,
                                      config.validation_interval, config.n_epochs)
        else:
            stopper = EarlyStopping(train_part, validation, config.top_k,
                                    config.n_iter_no_change, config.tol,
                                    config.validation_interval, config.n_epochs)
        if config.verbose:
            n_users = int(np.count_nonzero(np.diff(validation.indptr)))
            print(validation_notice(validation.n_interactions, n_users, config.top_k,
                                    config.validation_interval), flush=True)
    # One progress report for both calls, so that times add up.
    report = _start_report(state, config, config.n_epochs, stopper)
    if calibration is not None:
        train(state, first_part, config, temperature.CALIBRATION_EPOCHS, features,
              after_epoch=stopper, weights=first_weights, report=report)
        config = _calibrate_temperature(state, first_part, calibration[1], config, seed)
    if not (stopper is not None and stopper.stopped):
        train(state, train_part, config, config.n_epochs - state.n_iter, features,
              after_epoch=stopper, weights=train_weights, report=report)
    if stopper is not None:
        state.restore(stopper.best)
        if config.verbose:
            print(early_stopping_summary(stopper, state.n_iter, state.best_epoch, config.top_k),
                  flush=True)
    return state


def _calibrate_temperature(state, train_part, holdout, config, seed):
    """``config`` with the temperature measured on ``holdout``, also recorded
    in ``state.resolved``."""
    measured = temperature.calibrated_temperature(
        *state.model_vectors(), train_part, holdout,
        np.bincount(train_part.indices, minlength=train_part.n_items), config,
        state.median_user_count, seed,
    )  # fmt: skip
    state.resolved["temperature"] = measured
    if config.verbose:
        n_pairs = min(holdout.n_interactions, temperature.MAX_PAIRS)
        print(temperature_notice(measured, n_pairs, state.n_iter, config.temperature,
                                 temperature.SOFTER), flush=True)
    return dataclasses.replace(config, temperature=measured)


def _early_stopping_split(data, config, weights, seed):
    """``(train, validation, train_weights)`` to stop on, or None to run every epoch."""
    if config.early_stopping == "fraction":
        return _validation_split(data, config, weights)
    if config.early_stopping == "holdout":
        return split_holdout(data, weights, seed)
    return None


def _validation_split(data, config, weights):
    """``(train, validation, train_weights)`` for early stopping.

    The split runs on a matrix whose values are the pairs' positions plus
    one, so that the training part says which weights are its own.
    """
    positions = np.arange(1, data.n_interactions + 1, dtype=np.float64)
    parts = train_test_split(
        sp.csr_matrix((positions, data.indices, data.indptr), shape=(data.n_users, data.n_items)),
        test_size=config.validation_fraction, random_state=config.random_state,
    )  # fmt: skip
    (train_part, kept), (validation, _) = (to_interactions(part, with_values=True)
                                           for part in parts)
    if validation.n_interactions == 0:
        raise ValueError(
            "early_stopping holds out part of each user's interactions, but no "
            "user has two or more. Fit without early_stopping."
        )
    train_weights = None if weights is None else weights[kept.astype(np.int64) - 1]
    return train_part, validation, train_weights


class EarlyStopping:
    """After each epoch: validation recall, the best state, whether to stop.

    Recall@k of each user's validation items, ranking every item but the
    user's training ones by distance to the user's current vector, every
    ``interval`` epochs and after ``last_epoch``.  Stops after ``patience``
    validations in a row without a gain above ``tol``.
    """

    # The Numba kernels that scoring runs, which ``verbose`` checks are
    # compiled before training.
    KERNELS = (ranking_stats,)

    def __init__(self, train_part, validation, k, patience, tol, interval=1, last_epoch=None):
        self.train = train_part
        self.validation = validation
        self.k = k
        self.patience = patience
        self.tol = tol
        self.interval = interval
        self.last_epoch = last_epoch
        self.best_score = -np.inf
        self.best = None
        self.validations_without_gain = 0
        self.stopped = False

    def __call__(self, state):
        if state.n_iter % self.interval and state.n_iter != self.last_epoch:
            return False
        scores = embedding_scores(*state.model_vectors())
        recall = ranking_metrics(
            self.validation, scores, k=self.k, exclude=self.train, metrics=("recall",)
        )["recall"]
        state.validation_scores.append(recall)
        if recall > self.best_score + self.tol:
            self.best_score = recall
            self.best = state.checkpoint()
            state.best_epoch = state.n_iter
            self.validations_without_gain = 0
        else:
            self.validations_without_gain += 1
        self.stopped = self.plateau(state.validation_scores)
        return self.stopped

    def plateau(self, scores):
        """Whether the validation ``scores`` so far say training is done."""
        return self.validations_without_gain >= self.patience

    def reason(self):
        """Why it stopped, for the last line of ``verbose``."""
        return (f"validation recall@{self.k} did not improve by more than tol={self.tol:g} "
                f"in {self.patience} validations")


class PlateauStopping(EarlyStopping):
    """``early_stopping="auto"``'s rule: stop when a window of validations
    gains less than ``min_gain`` (relative) on the window before.

    A small holdout's recall moves by whole pairs from one epoch to the
    next, so a single validation says little; the mean of ``patience`` of
    them, against the mean of the ``patience`` before, tells a slow climb
    from a plateau.  Keeps the best validated epoch, as ``EarlyStopping``.
    """

    def __init__(self, train_part, validation, k, patience, min_gain, interval=1,
                 last_epoch=None):
        super().__init__(train_part, validation, k, patience, 0.0, interval, last_epoch)
        self.min_gain = min_gain

    def plateau(self, scores):
        window = self.patience
        if len(scores) < 2 * window:
            return False
        recent, before = np.mean(scores[-window:]), np.mean(scores[-2 * window:-window])
        return recent <= before * (1.0 + self.min_gain)

    def reason(self):
        return (f"the mean validation recall@{self.k} of the last {self.patience} "
                f"validations was less than {self.min_gain:.2%} above that of the "
                f"{self.patience} before")


def train(state, data, config, n_epochs, features=None, after_epoch=None, weights=None,
          report=False, item_counts=None):
    """Run up to ``n_epochs`` epochs on ``state``, in place.

    Each epoch is the solver's pass over the pairs of ``data``, each pair's
    term weighted by ``weights`` (float32, aligned with ``data.indices``;
    None: all 1), with the covariance step between chunks, then, with
    ``features`` (``FeatureRows``), a pass of the feature loss over the
    items.  ``after_epoch(state)``, if given, is called after each epoch and
    stops training by returning True.  ``report``: the ``EpochReport`` that
    prints progress, when the caller runs several calls as one fit (False:
    this call's own, with ``verbose``).  ``item_counts`` (int64, one per
    item) is the popularity negatives are drawn by; None: that of ``data``'s
    pairs (a shard of the users passes the counts of all of them).  Raises
    FloatingPointError, naming the cause, if training breaks down.
    """
    n_threads = config.n_threads
    block_losses = np.zeros(N_BLOCKS, dtype=np.float32)
    optimizer = Optimizer(np.float32(config.learning_rate), np.float32(config.max_norm))

    def covariance(state):
        if config.covariance_weight > 0:
            covariance_step(state.embeddings(), config.covariance_weight, optimizer)

    if report is False:
        report = _start_report(state, config, state.n_iter + n_epochs, after_epoch)
    epoch = config.solver.make_epoch(
        config, data, _unit_weights(data) if weights is None else weights,
        make_sampler(data.indices, data.n_items, config.negative_sampling_exponent)
        if item_counts is None
        else popularity_sampler(item_counts, config.negative_sampling_exponent),
        state.median_user_count, covariance,
    )  # fmt: skip
    with thread_limits(n_threads):
        for _ in range(n_epochs):
            if report is not None:
                report.start_epoch()
            n_validations = len(state.validation_scores)
            block_losses[:] = 0.0
            epoch(state, block_losses)
            check_trained(state, block_losses, "embedding loss", config)
            if features is not None:
                feature_loss = _feature_pass(state, features, config)
                state.feature_loss_curve.append(feature_loss)
                check_trained(state, feature_loss, "feature loss", config, features)
            state.n_iter += 1
            state.average_epoch(config.average)
            state.loss_curve.append(float(block_losses.sum()) / data.n_interactions)
            if report is not None:
                report.end_training()
            stop = after_epoch is not None and after_epoch(state)
            if report is not None:
                scored = len(state.validation_scores) > n_validations
                report.end_epoch(state.n_iter, state.loss_curve[-1],
                                 state.validation_scores[-1] if scored else None)
            if stop:
                break


def _start_report(state, config, last_epoch, after_epoch):
    """With ``verbose``: say whether Numba is about to compile, and return
    the ``EpochReport`` that prints each epoch (None when silent)."""
    if not config.verbose:
        return None
    kernels = (*config.solver.epoch_kernels(config.loss), covariance_step,
               *getattr(after_epoch, "KERNELS", ()))
    notice = compilation_notice(kernels)
    if notice is not None:
        print(notice, flush=True)
    interval = getattr(after_epoch, "interval", None)
    return EpochReport(last_epoch, config.top_k, interval,
                       compiling=notice is not None)


def _feature_pass(state, features, config):
    """One pass of the feature loss over all items; its mean per item."""
    n_items = state.item_embeddings.shape[0]
    item_order = np.empty(n_items, dtype=np.int32)
    random_permutation(item_order, stream_seed(state.seed, "feature order", state.n_iter))
    block_losses = np.zeros(N_BLOCKS, dtype=np.float64)
    step = FeatureStep(np.float32(config.feature_weight), np.float32(config.feature_learning_rate),
                       np.float32(config.learning_rate), np.float32(config.max_norm),
                       np.float32(1.0 - config.dropout))
    feature_epoch(item_order, features, state.item_embeddings, state.item_grad_sq,
                  state.encoder, state.encoder_grad_sq, step, state.feature_rng_states,
                  block_losses)
    return float(block_losses.sum()) / max(n_items, 1)


# ------------------------------------------------------------ breakdowns


def check_trained(state, losses, stage, config, features=None):
    """Raise FloatingPointError if ``stage`` of the epoch blew up or stalled.

    Checks the loss, the vectors (finite, none collapsed to zero), the
    AdaGrad accumulators (an infinite one stops every later step of its
    row) and the MLP's weights, and names the likely cause.
    """
    problems = vector_problems(
        (state.user_embeddings, state.item_embeddings),
        (state.user_grad_sq, state.item_grad_sq),
    )
    if not np.isfinite(losses).all():
        problems.insert(0, "the loss is not finite")
    if state.encoder is not None and not all(
        np.isfinite(array).all() for array in (*state.encoder, *state.encoder_grad_sq)
    ):
        problems.append("the feature MLP's weights or their AdaGrad sums are not finite")
    if problems:
        raise FloatingPointError(
            f"Training broke down at epoch {state.n_iter + 1}, in the {stage}: "
            f"{'; '.join(problems)}. {divergence_cause(stage, config, features)}"
        )


def vector_problems(vectors, accumulators):
    """What is wrong with trained vectors and their AdaGrad sums, as phrases."""
    counts = np.array([broken_rows(array) for array in vectors]).sum(axis=0)
    problems = []
    if counts[0]:
        problems.append(f"{counts[0]} vectors hold NaN or infinity")
    if counts[1]:
        problems.append(f"{counts[1]} vectors collapsed to exactly zero (a step overflowed "
                        "float32)")
    if not all(np.isfinite(array).all() for array in accumulators):
        problems.append("some steps or squared gradients overflowed float32 (their "
                        "AdaGrad sums are infinite), which stops training")
    return problems


def divergence_cause(stage, config, features=None):
    """The parameters or input most likely behind a breakdown in ``stage``.

    Values more than ``FLOAT32_HEADROOM`` times off their useful scale (the
    ball's: squared distances up to ``4 * max_norm**2``) overflow float32.
    When none is, too large a learning rate is what makes SGD blow up.
    """
    if stage == "feature loss":
        values = features.values
        largest = float(np.abs(values).max()) if values.size else 0.0
        if largest > FLOAT32_HEADROOM:
            return (
                f"The cause is item_features, with values up to {largest:.3g}: scale "
                "them to about unit size, for example with sklearn.preprocessing.normalize."
            )
        return (
            f"Lower feature_learning_rate (now {config.feature_learning_rate}) or "
            f"feature_weight (now {config.feature_weight})."
        )
    causes = []
    if config.learning_rate > np.sqrt(FLOAT32_HEADROOM):
        causes.append(f"learning_rate={config.learning_rate}, far above useful values "
                      "(about 0.01 to 1): lower the learning rate")
    if not 1.0 / FLOAT32_HEADROOM <= config.max_norm <= FLOAT32_HEADROOM:
        causes.append(f"max_norm={config.max_norm}: keep the vectors in a ball of "
                      "radius about 1")
    else:
        causes.extend(config.loss.overflow_causes(config))
    if config.covariance_weight > FLOAT32_HEADROOM:
        causes.append(f"covariance_weight={config.covariance_weight}: use a weight of "
                      "about 1")
    if not causes:
        return f"Lower the learning rate (learning_rate={config.learning_rate})."
    return f"The cause is {'; and '.join(causes)}."


# ------------------------------------------------------------- new users


def fold_in(model, data, config, weights=None):
    """Vectors of new users (rows of ``data``) against ``model``'s frozen items.

    ``model`` is a ``FittedModel``.  Each row starts at the centroid of its
    items (the mean user when it has none) and is moved by the solver's
    steps with the items frozen (``_solvers.fold_in``), its pairs weighted
    by ``weights`` (None: all 1); negatives are drawn as in training, from
    the popularity of the items in the training pairs.
    """
    announce_compilation(config.verbose, (fold_in_kernel(config), row_hash_states),
                         "the kernels that place new users", "about 20 s")
    items = model.item_embeddings
    counts = np.diff(data.indptr)
    users = np.asarray(data.to_csr() @ items, dtype=np.float32)
    has_items = counts > 0
    users[has_items] /= counts[has_items, None].astype(np.float32)
    users[~has_items] = model.user_embeddings.mean(axis=0)
    clip_rows(users, config.max_norm)
    grad_sq = np.full(data.n_users, INITIAL_GRAD_SQ, np.float32)
    # The steps are compiled with their item updates (not run here), which
    # a read-only array (a memory-mapped model) cannot be typed for.
    frozen = items if items.flags.writeable else items.copy()
    embeddings = Embeddings(users, grad_sq, frozen, np.empty(0, np.float32))
    rng_states = row_hash_states(data.indptr, data.indices,
                                 stream_seed(model.seed, "fold-in rows"))
    sampler = popularity_sampler(model.item_counts, config.negative_sampling_exponent)
    with thread_limits(config.n_threads):
        solver_fold_in(config, data, _unit_weights(data) if weights is None else weights,
                       embeddings, sampler, model.median_user_count, rng_states)
        problems = vector_problems((users,), (grad_sq,))
    if problems:
        raise FloatingPointError(f"Placing the new users broke down: {'; '.join(problems)}. "
                                 f"{divergence_cause('embedding loss', config)}")
    return users


def _unit_weights(data):
    """Weight 1 for every pair of ``data``: a model without weights."""
    return np.ones(data.n_interactions, dtype=np.float32)


def _median_user_count(indptr):
    """Median number of items of the users that have any (1.0 if none has)."""
    counts = np.diff(indptr)
    counts = counts[counts > 0]
    return float(np.median(counts)) if counts.size else 1.0


__all__ = ["Interactions", "TrainingState", "fit", "fitted_model", "fold_in", "initial_state",
           "resume", "train"]
