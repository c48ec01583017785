"""Numba kernels of the covariance (decorrelation) loss.

For N embedding rows y^n (all user and item vectors) with mean mu,

    C_ab = (1/N) sum_n (y^n_a - mu_a)(y^n_b - mu_b)
    L_c  = (1/N) sum_{a != b} C_ab^2

and its gradient with respect to row n is ``(4 / N^2) (y^n - mu) C_off``,
where ``C_off`` is ``C`` with a zero diagonal (the mean's own derivative
drops out because the centred rows sum to zero).  The K x K products go
through BLAS (``np.dot``, one BLAS thread per call) inside Numba's parallel
row blocks; the blocks keep the temporaries small whatever the number of
users and items.
"""

import numpy as np
from numba import njit, prange

from ._numba_config import FASTMATH, NUMBA_CACHE
from ._steps import adagrad_step

_ROW_BLOCK = 512
# Row blocks of the Gram matrix: each holds a K x K partial sum.  A fixed
# count, summed in order, so results do not depend on the thread count.
_GRAM_BLOCKS = 2


@njit(cache=NUMBA_CACHE, parallel=True)
def _gram_and_sum(rows):
    """``rows.T @ rows`` and the column sums, over parallel row blocks."""
    n_rows, n_components = rows.shape
    grams = np.zeros((_GRAM_BLOCKS, n_components, n_components), dtype=rows.dtype)
    sums = np.zeros((_GRAM_BLOCKS, n_components), dtype=rows.dtype)
    for block in prange(_GRAM_BLOCKS):
        part = rows[n_rows * block // _GRAM_BLOCKS : n_rows * (block + 1) // _GRAM_BLOCKS]
        if part.shape[0] > 0:
            grams[block] = np.dot(part.T, part)
            sums[block] = part.sum(axis=0)
    return grams.sum(axis=0), sums.sum(axis=0)


@njit(cache=NUMBA_CACHE)
def off_diagonal_covariance(first, second):
    """Mean and off-diagonal covariance of the rows of two stacked arrays.

    ``first`` and ``second`` (for instance the user and the item
    embeddings) are treated as one matrix without concatenating them.
    Returns ``(mean, covariance)`` with a zero diagonal.
    """
    n_rows = first.shape[0] + second.shape[0]
    first_gram, first_sum = _gram_and_sum(first)
    second_gram, second_sum = _gram_and_sum(second)
    mean = (first_sum + second_sum) / n_rows
    covariance = (first_gram + second_gram) / n_rows
    covariance -= np.outer(mean, mean)
    for d in range(covariance.shape[0]):
        covariance[d, d] = 0.0
    return mean, covariance


@njit(cache=NUMBA_CACHE)
def covariance_loss(covariance, n_rows):
    """``L_c`` from the off-diagonal covariance of ``n_rows`` rows."""
    return (covariance * covariance).sum() / n_rows


@njit(cache=NUMBA_CACHE)
def covariance_gradient(rows, mean, covariance, n_rows):
    """Gradient of ``L_c`` with respect to each of ``rows``.

    ``rows`` may be any subset of the ``n_rows`` rows whose ``mean`` and
    off-diagonal ``covariance`` were computed by ``off_diagonal_covariance``.
    """
    return np.dot(rows - mean, covariance) * (4.0 / (n_rows * n_rows))


@njit(cache=NUMBA_CACHE, parallel=True, fastmath=FASTMATH, error_model="numpy")
def _descend(embeddings, grad_sq, mean, covariance, n_rows, weight, learning_rate, max_norm):
    """AdaGrad step of ``weight * L_c`` on every row, in parallel row blocks."""
    n_blocks = (embeddings.shape[0] + _ROW_BLOCK - 1) // _ROW_BLOCK
    for block in prange(n_blocks):
        block_start = block * _ROW_BLOCK
        block_stop = min(block_start + _ROW_BLOCK, embeddings.shape[0])
        gradient = covariance_gradient(
            embeddings[block_start:block_stop], mean, covariance, n_rows
        )
        gradient *= weight
        for offset in range(block_stop - block_start):
            row = block_start + offset
            adagrad_step(embeddings[row], grad_sq, row, gradient[offset], learning_rate, max_norm)


@njit(cache=NUMBA_CACHE)
def covariance_step(embeddings, weight, optimizer):
    """One AdaGrad step of ``weight * L_c`` over all users and items.

    ``embeddings`` is an ``Embeddings`` and ``optimizer`` an ``Optimizer``
    (``_steps``).  Every vector is projected back into the ball afterwards.
    Returns the loss ``L_c`` before the step.
    """
    users, items = embeddings.users, embeddings.items
    n_rows = users.shape[0] + items.shape[0]
    mean, covariance = off_diagonal_covariance(users, items)
    loss = covariance_loss(covariance, n_rows)
    _descend(
        users, embeddings.user_grad_sq, mean, covariance, n_rows, weight,
        optimizer.learning_rate, optimizer.max_norm,
    )  # fmt: skip
    _descend(
        items, embeddings.item_grad_sq, mean, covariance, n_rows, weight,
        optimizer.learning_rate, optimizer.max_norm,
    )  # fmt: skip
    return loss
