"""Numerical steps that every loss and solver shares.

Small Numba kernels of arrays and scalars: the squared distance, membership
in a sorted CSR row, the row of a CSR entry, the row-wise AdaGrad step with
the projection into the ball, the running mean of the epochs' vectors and
the health check of trained vectors; and, on the numpy side, the projection
of whole arrays into the ball (for starting points).  Embeddings are
C-contiguous float32 ``(n_rows, n_components)`` arrays.  Squared distances
are used throughout; square roots only appear in what users see.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ._numba_config import FASTMATH, NUMBA_CACHE

# Parameters or inputs this many times off the scale of the unit ball make
# float32 overflow: the message of a training breakdown names them.
FLOAT32_HEADROOM = 1e6


class Embeddings(NamedTuple):
    """The vectors a step moves, with their row-wise AdaGrad sums.

    In fold-in, ``users`` are the new users and the items are frozen.
    """

    users: np.ndarray  # float32 (n_users, n_components)
    user_grad_sq: np.ndarray  # float32 (n_users,)
    items: np.ndarray  # float32 (n_items, n_components)
    item_grad_sq: np.ndarray  # float32 (n_items,)


class Optimizer(NamedTuple):
    """AdaGrad's learning rate and the radius of the ball, as float32."""

    learning_rate: np.float32
    max_norm: np.float32


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def squared_distance(a, b):
    """Squared Euclidean distance between two 1-d float32 vectors."""
    total = np.float32(0.0)
    for d in range(a.shape[0]):
        diff = a[d] - b[d]
        total += diff * diff
    return total


@njit(cache=NUMBA_CACHE, inline="always")
def contains_sorted(indices, start, end, value):
    """Whether ``value`` is in the sorted slice ``indices[start:end]``."""
    lo = start
    hi = end
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo < end and indices[lo] == value


@njit(cache=NUMBA_CACHE, inline="always")
def row_of_entry(indptr, position):
    """The CSR row holding entry ``position`` (binary search of ``indptr``).

    Finding it costs a few loads of the small ``indptr`` array instead of
    keeping a user index per interaction in memory.
    """
    lo = 0
    hi = indptr.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if indptr[mid] <= position:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def project_into_ball(vector, sq_norm, max_norm):
    """Scale ``vector``, of squared norm ``sq_norm``, back into the ball of
    radius ``max_norm`` if it left it."""
    if sq_norm > max_norm * max_norm:
        scale = np.float32(max_norm / math.sqrt(np.float64(sq_norm)))
        for d in range(vector.shape[0]):
            vector[d] *= scale


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def adagrad_step(vector, grad_sq, row, gradient, learning_rate, max_norm):
    """Row-wise AdaGrad step on ``vector``, then projection into the ball.

    ``grad_sq[row]`` accumulates the mean squared gradient of the vector:
    ``G += mean(g^2); x -= learning_rate * g / sqrt(G)``.  One accumulator
    per vector instead of one per coordinate: an n_components-fold smaller
    optimiser state, one square root per step, and no second row to fetch
    from memory, which is what bounds the speed of a Hogwild epoch.  A step
    that overflows float32 sets ``grad_sq[row]`` to infinity.
    """
    n_components = vector.shape[0]
    sq_gradient = np.float32(0.0)
    for d in range(n_components):
        sq_gradient += gradient[d] * gradient[d]
    accumulated = grad_sq[row] + sq_gradient / n_components
    grad_sq[row] = accumulated
    step = np.float32(learning_rate / math.sqrt(accumulated))
    for d in range(n_components):
        vector[d] -= step * gradient[d]
    # Summed in a loop that stores nothing (see _numba_config).
    sq_norm = np.float32(0.0)
    for d in range(n_components):
        sq_norm += vector[d] * vector[d]
    if sq_norm == np.inf:
        # The step overflowed float32 and the projection is about to zero
        # the vector: an infinite accumulator marks the row (and stops its
        # steps) for the check after the epoch.
        grad_sq[row] = np.inf
    project_into_ball(vector, sq_norm, max_norm)


def clip_rows(vectors, max_norm):
    """Project each row of ``vectors`` into the ball of radius ``max_norm``.

    The numpy form, for whole arrays of starting points.
    """
    norms = np.linalg.norm(vectors, axis=1)
    too_long = norms > max_norm
    vectors[too_long] *= (max_norm / norms[too_long])[:, None].astype(vectors.dtype)


@njit(cache=NUMBA_CACHE, parallel=True, fastmath=FASTMATH)
def update_running_mean(mean, vectors, count):
    """Fold ``vectors``, the ``count``-th sample, into their running ``mean``, in place.

    ``mean += (vectors - mean) / count``, without a temporary array.
    """
    weight = np.float32(1.0 / count)
    for row in prange(mean.shape[0]):
        for d in range(mean.shape[1]):
            mean[row, d] += weight * (vectors[row, d] - mean[row, d])


@njit(cache=NUMBA_CACHE, parallel=True)
def broken_rows(array):
    """``(non_finite, zero)``: rows of a 2-d array holding NaN or infinity,
    and rows that are exactly zero (no temporary array).

    A vector trained from a random start is never exactly zero: a zero row
    means that a step overflowed float32, and the projection into the ball
    then scaled the vector by 0.
    """
    n_non_finite = 0
    n_zero = 0
    for row in prange(array.shape[0]):
        finite = True
        zero = True
        for d in range(array.shape[1]):
            value = array[row, d]
            finite = finite and np.isfinite(value)
            zero = zero and value == 0.0
        n_non_finite += not finite
        n_zero += zero
    return n_non_finite, n_zero
