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
