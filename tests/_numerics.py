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
