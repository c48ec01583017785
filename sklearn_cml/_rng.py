"""A tiny counter-free random number generator for Numba kernels.

Each block of parallel work owns one 64-bit state (an entry of a ``uint64``
array), so results never depend on how blocks are scheduled over threads and
no kernel touches Numba's global ``np.random`` state.  Kernels copy their
block's state into a local variable and thread it through the draws
(``state, value = random_below(state, n)``): it stays in a register, and
threads never write to the shared array while they run (neighbouring states
share a cache line, which would bounce between cores on every draw).  The generator is
xorshift64* (Vigna, 2016): one multiply and three shifts per draw, period
2**64 - 1, good enough for negative sampling.  Seeds are spread with
splitmix64 so that neighbouring seeds give unrelated streams.
"""

import numpy as np
from numba import njit

from ._numba_config import NUMBA_CACHE

_XORSHIFT_MULTIPLIER = np.uint64(0x2545F4914F6CDD1D)


@njit(cache=NUMBA_CACHE, inline="always")
def splitmix64(value):
    """Return a well-mixed 64-bit hash of ``value`` (a ``uint64``).

    Used to derive independent, never-zero generator states from a seed.
    """
    z = np.uint64(value) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=NUMBA_CACHE, inline="always")
def next_uint64(state):
    """Advance an xorshift64* state; return ``(new_state, 64 random bits)``."""
    state = np.uint64(state)  # a no-op in kernels; a Python int otherwise
    state ^= state >> np.uint64(12)
    state ^= state << np.uint64(25)
    state ^= state >> np.uint64(27)
    return state, state * _XORSHIFT_MULTIPLIER


@njit(cache=NUMBA_CACHE, inline="always")
def random_below(state, n):
    """Return ``(new_state, value)`` with ``value`` uniform in ``[0, n)``.

    ``0 < n < 2**32``.  Multiply-shift on the high 32 bits (Lemire, 2019):
    no division, and the bias, at most ``n / 2**32``, is far below what
    sampling can detect.
    """
    state, bits = next_uint64(state)
    return state, high_bits_below(bits, n)


@njit(cache=NUMBA_CACHE, inline="always")
def high_bits_below(bits, n):
    """The high 32 bits of ``bits`` mapped to ``[0, n)`` (multiply-shift)."""
    return np.int64(((bits >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


def seed_states(seed, n_states):
    """Return ``n_states`` independent, non-zero xorshift states from ``seed``.

    Parameters
    ----------
    seed : int
        A non-negative integer, usually drawn from the estimator's
        ``random_state``.
    n_states : int
        How many states (one per block of parallel work).

    Returns
    -------
    states : ndarray of shape (n_states,), dtype uint64
    """
    states = np.empty(n_states, dtype=np.uint64)
    _fill_states(np.uint64(seed), states)
    return states


@njit(cache=NUMBA_CACHE)
def _fill_states(seed, states):
    for slot in range(states.shape[0]):
        state = splitmix64(seed + np.uint64(slot) * np.uint64(0x632BE59BD9B4E019))
        # xorshift must never hold the all-zero state.
        states[slot] = state if state != np.uint64(0) else np.uint64(1)
