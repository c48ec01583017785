"""``temperature="auto"``: the softmax temperature, measured on held-out pairs.

The best temperature moves with the data, in both directions (docs/user
guide, "The temperature").  ``fit`` measures it: after a few epochs at the
starting temperature, it takes the temperature under which the held-out
interactions are the most likely, each against a pool of sampled items
(the maximum-likelihood temperature of the softmax that training
minimises, on pairs it has not trained on), and trains on with it.  Sharp
data, where a user's next item lies close among many far ones, gives a low
temperature; diffuse data a high one.

The likelihood is the training loss's: each held-out pair ``(u, i)``
competes with a pool of ``POOL_SIZE`` items drawn as training draws its
negatives, with the logQ correction, minus the user's training items, at
the user's own temperature ``T * (n_u / n_median) ** temperature_exponent``.
"""

import numpy as np
from scipy.optimize import minimize_scalar

from ._rng import stream_seed
from ._topk import squared_distances, squared_norms

# The temperature fit starts from, and keeps when nothing is held out.
START = 0.3
# Epochs at START before the measurement: the geometry must be learnt
# enough for distances to mean something (the calibrated value moves by
# less than 10% from epoch 5 to 20 on the benchmark sets).
CALIBRATION_EPOCHS = 5
# The range of temperatures, in units of max_norm ** 2 (squared distances in
# the ball reach 4 max_norm ** 2).
BOUNDS = (0.05, 2.0)
POOL_SIZE = 2048
# Held-out pairs measured at most (memory: a few MAX_PAIRS x POOL_SIZE float32
# arrays; time: about 20 evaluations of a log-sum-exp over one).
MAX_PAIRS = 2000
# Training ranks best a little softer than the likeliest temperature: the
# best temperature on the benchmark sets is this many times the measured one
# (docs/ref_parameters.md, "The temperature": chosen leave-one-dataset-out).
SOFTER = 1.2
# Significant digits kept: the value does not depend on the last bits of
# the distances (BLAS with another number of threads), so fits stay
# reproducible.
DIGITS = 3


def calibrated_temperature(users, items, train, holdout, item_counts, config,
                           median_user_count, seed):
    """The temperature to train with: ``SOFTER`` times the maximum-likelihood
    temperature of ``holdout``'s pairs, within ``BOUNDS``.

    Parameters
    ----------
    users, items : ndarray of float32
        The current vectors.
    train, holdout : Interactions
        The pairs trained on (left out of each user's pool) and those held out.
    item_counts : ndarray of int64
        Training pairs per item, by which the pool is drawn.
    config : Config
        ``negative_sampling_exponent``, ``temperature_exponent``, ``max_norm``.
    median_user_count : float
        The reference of the per-user temperature.
    seed : int
        The fit's root seed, which draws the pool.

    Returns
    -------
    temperature : float
    """
    held_users = np.repeat(np.arange(holdout.n_users), np.diff(holdout.indptr))
    held_items = holdout.indices
    rng = np.random.default_rng(stream_seed(seed, "temperature pool"))
    if held_users.shape[0] > MAX_PAIRS:  # early_stopping=True's larger split
        some = np.sort(rng.choice(held_users.shape[0], MAX_PAIRS, replace=False))
        held_users, held_items = held_users[some], held_items[some]
    weights = (item_counts + 1.0) ** config.negative_sampling_exponent
    probability = weights / weights.sum()
    pool = rng.choice(items.shape[0], POOL_SIZE, p=probability)
    log_counts = -np.log(POOL_SIZE * probability[pool])

    user_vectors = users[held_users]
    positive = np.sum((user_vectors - items[held_items]) ** 2, axis=1)
    negative = squared_distances(user_vectors, items[pool], squared_norms(items[pool]))
    negative[_in_training(train, held_users, pool)] = np.inf  # not a negative
    n_user_items = np.diff(train.indptr)[held_users]
    user_scale = (n_user_items / median_user_count) ** config.temperature_exponent
    log_counts = log_counts.astype(np.float32)
    scratch = np.empty_like(negative)  # the negatives' logits, then their exps

    def negative_log_likelihood(log_temperature):
        inverse = (1.0 / (np.exp(log_temperature) * user_scale)).astype(np.float32)
        positive_logit = -positive * inverse
        np.multiply(negative, -inverse[:, None], out=scratch)
        np.add(scratch, log_counts, out=scratch)
        top = np.maximum(scratch.max(axis=1), positive_logit)
        np.subtract(scratch, top[:, None], out=scratch)
        np.exp(scratch, out=scratch)
        total = scratch.sum(axis=1, dtype=np.float64) + np.exp(positive_logit - top)
        return float(np.mean(np.log(total) + top - positive_logit))

    ball = config.max_norm ** 2
    low, high = (np.log(bound * ball) for bound in BOUNDS)
    best = minimize_scalar(negative_log_likelihood, bounds=(low, high), method="bounded",
                           options={"xatol": 1e-3})
    softer = min(SOFTER * np.exp(best.x), BOUNDS[1] * ball)
    return float(f"{softer:.{DIGITS}g}")


def _in_training(train, users, pool):
    """(len(users), len(pool)) bool: whether each pool item is one of the user's."""
    return train.to_csr()[users][:, pool].toarray() > 0
