"""Numerical helpers shared by the tests."""

import numpy as np


def central_difference(loss, x, eps=1e-6):
    """Numerical gradient of ``loss`` at ``x`` (float64)."""
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        gradient[index] = (loss(x + step) - loss(x - step)) / (2 * eps)
    return gradient


def reference_adagrad(vector, grad_sq, row, gradient, learning_rate, max_norm):
    """One row-wise AdaGrad step on ``vector``, in place, then its projection
    into the ball of radius ``max_norm``; ``grad_sq[row]`` accumulates the
    mean squared gradient."""
    grad_sq[row] += np.mean(gradient**2)
    vector -= learning_rate * gradient / np.sqrt(grad_sq[row])
    norm = np.linalg.norm(vector)
    if norm > max_norm:
        vector *= max_norm / norm


def reference_draw(state, tables):
    """``(state, item)``: an item drawn as the alias tables
    (``_sampling.sampling_tables``) do: a column from the high bits, then
    kept with probability ``keep`` (exact, from the tables' definition)."""
    from sklearn_cml._rng import next_uint64

    keep_threshold, alias, _ = tables
    state, bits = next_uint64(state)
    column = ((int(bits) >> 32) * len(alias)) >> 32
    if int(bits) & 0xFFFFFFFF < int(keep_threshold[column]):
        return state, column
    return state, int(alias[column])


def reference_sample(state, n_items, tables=None):
    """``(state, item)`` drawn uniformly without ``tables``, else from them."""
    from sklearn_cml._rng import random_below

    # Numba returns the state as a Python int: retyped, or it would be
    # compiled as int64 (and overflow) in the next draw.
    state, item = random_below(state, n_items) if tables is None else reference_draw(state,
                                                                                   tables)
    return np.uint64(state), item
