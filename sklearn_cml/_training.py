"""Training state and early stopping, used by the estimator."""

import numpy as np

from ._kernels import update_running_mean
from .metrics import embedding_scores, ranking_metrics


class TrainingState:
    """Arrays and counters that training updates in place.

    ``user_embeddings`` and ``item_embeddings`` are the vectors SGD moves;
    ``user_average`` and ``item_average`` their running means over the last
    ``n_averaged`` epochs (None while nothing is averaged).
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

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

    def arrays(self):
        """Copies of the arrays (and the averaging count) that define the model."""
        names = ("user_embeddings", "item_embeddings", "user_grad_sq", "item_grad_sq",
                 "rng_states", "feature_rng_states")
        arrays = {name: getattr(self, name).copy() for name in names}
        for name in ("user_average", "item_average"):
            array = getattr(self, name)
            arrays[name] = None if array is None else array.copy()
        arrays["n_averaged"] = self.n_averaged
        if self.encoder is not None:
            arrays["encoder"] = {name: array.copy() for name, array in self.encoder.items()}
        return arrays


class EarlyStopping:
    """After each epoch: validation recall, the best state, whether to stop.

    Recall@k of each user's validation items, ranking every item but the
    user's training ones by distance to the user's current vector.
    """

    def __init__(self, train, validation, k, patience, tol):
        self.train = train
        self.validation = validation
        self.k = k
        self.patience = patience
        self.tol = tol
        self.best_score = -np.inf
        self.best_arrays = None
        self.epochs_without_gain = 0

    def __call__(self, state):
        scores = embedding_scores(*state.model_vectors())
        recall = ranking_metrics(
            self.validation, scores, k=self.k, exclude=self.train, metrics=("recall",)
        )["recall"]
        state.validation_scores.append(recall)
        if recall > self.best_score + self.tol:
            self.best_score = recall
            self.best_arrays = state.arrays()
            state.best_epoch = state.n_iter
            self.epochs_without_gain = 0
        else:
            self.epochs_without_gain += 1
        return self.epochs_without_gain >= self.patience

    def restore_best(self, state):
        """Put the best epoch's arrays back into ``state``."""
        state.__dict__.update(self.best_arrays)
