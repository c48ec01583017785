"""Negative samplers: uniform, or in proportion to a power of popularity.

A ``Sampler`` is a small NamedTuple that the solvers draw negatives from
with ``draw(sampler, rng_state)``; ``inverse_probability(sampler, item)`` is
what an item drawn from it stands for, relative to uniform sampling (1 for a
uniform sampler), which keeps rank estimates and softmax sums unbiased.
Uniform sampling is alias sampling from exact uniform tables (every
threshold 2**32, every inverse 1), which draw the very items
``random_below`` would: one type and one code path, no branch on the kind
of sampler.  A dispatch by type that Numba inlines after typing lets its
dead-code elimination drop stores in the kernels that draw
(docs/algorithm.md, "Architecture"); a branch on the kind inside a draw
loop kept Numba from pruning the reference counts of the sampler's arrays:
six atomic calls per draw.

An alias sampler (``alias_sampler``) draws item ``j`` with probability
``q_j = (n_j + 1)**beta / sum_i (n_i + 1)**beta``, ``n_j`` being its number
of training pairs: ``beta > 0`` draws popular items more often, so they are
pushed away from the users who do not like them more often (the first
stage of two-stage sampling, Tran et al., SIGIR 2019).

Alias tables make a draw O(1): one 64-bit random number picks a column
``j`` with its high half, exactly as ``random_below`` does, and its low half
keeps ``j`` if below ``keep_threshold[j]`` (a probability scaled to 2**32),
else gives ``alias[j]``.

The rank estimate stays unbiased by importance weighting: an impostor
``k`` counts ``1 / (n_items * q_k)`` (``inverse_probability[k]``) instead of
1, so ``n_items / U * sum(inverse_probability[k])`` over the impostors among
``U`` draws has for expectation the number of negatives closer than the
margin, whatever ``beta``.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from ._numba_config import NUMBA_CACHE
from ._rng import high_bits_below, next_uint64

_SCALE = 2.0**32


@njit(cache=NUMBA_CACHE)
def draw_probabilities(item_counts, exponent):
    """``q_j ∝ (item_counts[j] + 1) ** exponent``, float64: how likely each
    item is drawn as a negative."""
    weights = (np.asarray(item_counts).astype(np.float64) + 1.0) ** exponent
    return weights / weights.sum()


def sampling_tables(item_counts, exponent):
    """Alias tables of ``q_j ∝ (item_counts[j] + 1) ** exponent``.

    Returns ``(keep_threshold, alias, inverse_probability)``: uint64,
    int32 and float32 arrays of one entry per item.  Exponent 0 gives
    exact uniform tables (every threshold 2**32, every inverse 1).
    """
    n_items = item_counts.shape[0]
    keep_threshold = np.full(n_items, np.uint64(_SCALE))
    alias = np.arange(n_items).astype(np.int32)
    inverse_probability = np.ones(n_items, dtype=np.float32)
    if exponent == 0.0 or n_items == 0:
        return keep_threshold, alias, inverse_probability

    probability = draw_probabilities(item_counts, exponent)
    scaled = probability * n_items
    keep = np.ones(n_items)
    # Columns below and above their fair share: each small column is filled
    # up to 1 from one large column, which gives away that much.
    small = np.empty(n_items, dtype=np.int64)
    large = np.empty(n_items, dtype=np.int64)
    n_small = 0
    n_large = 0
    for item in range(n_items):
        n_small, n_large = _push(item, scaled, small, large, n_small, n_large)
    while n_small > 0 and n_large > 0:
        n_small -= 1
        n_large -= 1
        low = small[n_small]
        high = large[n_large]
        keep[low] = scaled[low]
        alias[low] = high
        scaled[high] += scaled[low] - 1.0
        n_small, n_large = _push(high, scaled, small, large, n_small, n_large)
    # Columns left over are full (up to rounding): keep = 1.
    for item in range(n_items):
        keep_threshold[item] = np.uint64(min(np.floor(keep[item] * _SCALE + 0.5), _SCALE))
        inverse_probability[item] = 1.0 / (probability[item] * n_items)
    return keep_threshold, alias, inverse_probability


@njit(cache=NUMBA_CACHE, inline="always")
def _push(item, scaled, small, large, n_small, n_large):
    """Put ``item`` on the stack of columns below or at/above their share."""
    if scaled[item] < 1.0:
        small[n_small] = item
        return n_small + 1, n_large
    large[n_large] = item
    return n_small, n_large + 1


@njit(cache=NUMBA_CACHE, inline="always")
def draw_item(rng_state, keep_threshold, alias):
    """Return ``(new_state, item)``, ``item`` drawn from the alias tables."""
    rng_state, bits = next_uint64(rng_state)
    column = high_bits_below(bits, keep_threshold.shape[0])
    if (bits & np.uint64(0xFFFFFFFF)) >= keep_threshold[column]:
        return rng_state, np.int64(alias[column])
    return rng_state, column


@njit(cache=NUMBA_CACHE)
def _count_items(indices, n_items):
    """Pairs per item (``np.bincount`` would copy int32 indices to int64)."""
    counts = np.zeros(n_items, dtype=np.int64)
    for item in indices:
        counts[item] += 1
    return counts


class Sampler(NamedTuple):
    """Where negatives come from: alias tables (``sampling_tables``), uniform
    ones for every item equally likely (the paper's sampling)."""

    keep_threshold: np.ndarray  # uint64, one per item
    alias: np.ndarray  # int32
    inverse_probability: np.ndarray  # float32: 1 / (n_items * q_j)
    # float32: its logarithm, a load where a draw's log count is needed
    # (a log per draw cost the per-pair solver a tenth of its time).
    log_inverse_probability: np.ndarray


def uniform_sampler(n_items):
    """The ``Sampler`` of uniform draws among ``n_items``."""
    return alias_sampler(*sampling_tables(np.zeros(n_items, np.int64), 0.0))


def alias_sampler(keep_threshold, alias, inverse_probability):
    """The ``Sampler`` of alias tables, as ``sampling_tables`` returns them."""
    return Sampler(keep_threshold, alias, inverse_probability, _logarithms(inverse_probability))


@njit(cache=NUMBA_CACHE)
def _logarithms(values):
    """``log`` of each value, one at a time: numpy's vector log rounds some
    values differently from its scalar log, and which one a value gets
    depends on the array's alignment in memory, so that a fit would not be
    bitwise reproducible."""
    logarithms = np.empty_like(values)
    for n in range(values.shape[0]):
        logarithms[n] = math.log(values[n])
    return logarithms


def make_sampler(indices, n_items, exponent):
    """The sampler of ``q_j ∝ (n_j + 1) ** exponent`` for the items of CSR
    ``indices`` (one entry per training pair); uniform when ``exponent`` is 0."""
    if exponent == 0.0:
        return uniform_sampler(n_items)
    return popularity_sampler(_count_items(indices, n_items), exponent)


def popularity_sampler(item_counts, exponent):
    """The sampler of ``q_j ∝ (item_counts[j] + 1) ** exponent`` (int64
    counts, one per item); uniform when ``exponent`` is 0."""
    if exponent == 0.0:
        return uniform_sampler(item_counts.shape[0])
    return alias_sampler(*sampling_tables(item_counts, float(exponent)))


@njit(cache=NUMBA_CACHE, inline="always")
def draw(sampler, rng_state):
    """``(new_state, item)``: one item drawn from ``sampler``."""
    return draw_item(rng_state, sampler.keep_threshold, sampler.alias)


@njit(cache=NUMBA_CACHE, inline="always")
def inverse_probability(sampler, item):
    """``1 / (n_items * q_item)``: 1 for uniform sampling."""
    return sampler.inverse_probability[item]


@njit(cache=NUMBA_CACHE, inline="always")
def log_inverse_probability(sampler, item):
    """``log(1 / (n_items * q_item))``: 0 for uniform sampling."""
    return sampler.log_inverse_probability[item]
