"""Random numbers for the kernels: the generator, the seeds, the shuffles.

A tiny counter-free random number generator for Numba kernels.

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

Every random stream of training (starting vectors, block states, the
order of each epoch's pairs, ...) takes its seed from ``stream_seed``, so
that one ``random_state`` fixes them all and ``fit`` for n epochs equals
``fit`` for k epochs then ``partial_fit`` for the rest.  The module also
holds the seeded shuffles and the hashes that make a new user's random
state depend only on the user's items.
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


# Each stream's seed is ``((seed * multiplier + offset + epoch) ^ salt)``.
# The constants only need to keep streams apart; they are kept as they
# were so that a random_state gives the same model from release to release.
_STREAMS = {
    "initial vectors": (1, 0, 0),
    "embedding blocks": (1, 1, 0),
    "feature blocks": (1, 2, 0),
    "pair order": (1_000_003, 0, 0),
    "row order": (1_000_003, 0, 0x5851F42D4C957F2D),
    "feature order": (7_919, 0, 0),
    "fold-in rows": (1, 0, 0),
    "search graph": (1, 3, 0),
    # Salted apart from the streams above, whatever their epoch.
    "holdout": (1, 0, 0x2545F4914F6CDD1D),
    "temperature pool": (1, 0, 0x3C6EF372FE94F82B),
    "new vectors": (1, 0, 0x6A09E667F3BCC909),
    "shard": (1, 0, 0x1F83D9AB5BE0CD19),
}


def stream_seed(seed, stream, epoch=0):
    """The seed of one random ``stream`` of training, at ``epoch``.

    Parameters
    ----------
    seed : int
        The model's root seed, drawn once from ``random_state``.
    stream : str
        One of ``"initial vectors"`` (numpy generator of the starting
        vectors and MLP weights), ``"embedding blocks"`` and ``"feature
        blocks"`` (the per-block states of the two kinds of epochs),
        ``"pair order"`` and ``"row order"`` (each epoch's order of the
        training pairs, and of the items within each row), ``"feature
        order"`` (each epoch's order of the items in the feature pass),
        ``"fold-in rows"`` (mixed with each new row's items), ``"search
        graph"`` (the random trees that start ``search="nndescent"``'s graph, the
        levels of ``search="hnsw"``'s),
        ``"holdout"`` (the pairs that ``early_stopping="auto"`` holds out),
        ``"temperature pool"`` (the items ``temperature="auto"`` measures against) and
        ``"new vectors"`` (the starting vectors of new items that ``partial_fit``
        cannot place otherwise, at the epoch count it grows the model at) and
        ``"shard"`` (the root of each shard's streams in a distributed fit, at
        the shard's index in place of the epoch).
    epoch : int, default=0
        Epochs already run, for the streams drawn anew each epoch.

    Returns
    -------
    seed : int
    """
    multiplier, offset, salt = _STREAMS[stream]
    return (seed * multiplier + offset + epoch) ^ salt


@njit(cache=NUMBA_CACHE)
def random_permutation(order, seed):
    """Fill ``order`` with a uniform random permutation of ``0..len - 1``.

    Inside-out Fisher-Yates in place (no temporary), driven by a state
    derived from ``seed`` alone, so the order of an epoch depends only on
    the seed it is given.
    """
    state = splitmix64(np.uint64(seed)) | np.uint64(1)
    for i in range(order.shape[0]):
        state, j = random_below(state, i + 1)
        order[i] = order[j]
        order[j] = i


@njit(cache=NUMBA_CACHE, inline="always")
def shuffle_row(state, indices, shuffled, start, stop):
    """Copy ``indices[start:stop]`` into ``shuffled[start:stop]`` in a random
    order (inside-out Fisher-Yates); returns the advanced random state."""
    for offset in range(stop - start):
        state, other = random_below(state, offset + 1)
        shuffled[start + offset] = shuffled[start + other]
        shuffled[start + other] = indices[start + offset]
    return state


@njit(cache=NUMBA_CACHE, inline="always")
def shuffle_row_weighted(state, indices, weights, shuffled, shuffled_weights, start, stop):
    """``shuffle_row`` that carries each entry's weight along: the same
    permutation (the same draws) of ``indices`` into ``shuffled`` and of
    ``weights`` into ``shuffled_weights``; returns the advanced state."""
    for offset in range(stop - start):
        state, other = random_below(state, offset + 1)
        shuffled[start + offset] = shuffled[start + other]
        shuffled[start + other] = indices[start + offset]
        shuffled_weights[start + offset] = shuffled_weights[start + other]
        shuffled_weights[start + other] = weights[start + offset]
    return state


@njit(cache=NUMBA_CACHE)
def shuffle_within_rows_weighted(indptr, indices, weights, shuffled, shuffled_weights, seed):
    """``shuffle_within_rows`` that carries each entry's weight along."""
    state = splitmix64(np.uint64(seed)) | np.uint64(1)
    for row in range(indptr.shape[0] - 1):
        state = shuffle_row_weighted(state, indices, weights, shuffled, shuffled_weights,
                                     indptr[row], indptr[row + 1])


@njit(cache=NUMBA_CACHE)
def shuffle_within_rows(indptr, indices, shuffled, seed):
    """Copy ``indices`` into ``shuffled``, each row in a random order.

    Driven by ``seed`` alone: consecutive runs of a row are then random
    groups drawn without replacement.
    """
    state = splitmix64(np.uint64(seed)) | np.uint64(1)
    for row in range(indptr.shape[0] - 1):
        state = shuffle_row(state, indices, shuffled, indptr[row], indptr[row + 1])


@njit(cache=NUMBA_CACHE)
def row_hash_states(indptr, indices, seed):
    """One RNG state per CSR row, a hash of ``seed`` and the row's items.

    Two rows with the same items get the same state, wherever they sit in a
    matrix: results computed from them do not depend on row order or on
    which other rows are in the batch.
    """
    n_rows = indptr.shape[0] - 1
    states = np.empty(n_rows, dtype=np.uint64)
    for row in range(n_rows):
        state = splitmix64(np.uint64(seed))
        for position in range(indptr[row], indptr[row + 1]):
            state = splitmix64(state ^ np.uint64(indices[position]))
        states[row] = state if state != np.uint64(0) else np.uint64(1)
    return states


@njit(cache=NUMBA_CACHE)
def holdout_mask(indptr, indices, seed, fraction):
    """Mark a deterministic ``fraction`` of each row's entries as held out.

    Rows with at least two entries hold out ``max(1, round(fraction * n))``
    entries, keeping at least one; the choice (the entries with the smallest
    hash of ``(row state, item)``) depends only on the row's items.
    """
    states = row_hash_states(indptr, indices, seed)
    held_out = np.zeros(indices.shape[0], dtype=np.bool_)
    max_entries = 0
    for row in range(indptr.shape[0] - 1):
        max_entries = max(max_entries, indptr[row + 1] - indptr[row])
    keys = np.empty(max_entries, dtype=np.uint64)
    for row in range(indptr.shape[0] - 1):
        start = indptr[row]
        n_entries = indptr[row + 1] - start
        if n_entries < 2:
            continue
        n_held = min(max(1, int(round(fraction * n_entries))), n_entries - 1)
        for offset in range(n_entries):
            keys[offset] = splitmix64(states[row] ^ np.uint64(indices[start + offset]))
        for offset in np.argsort(keys[:n_entries])[:n_held]:
            held_out[start + offset] = True
    return held_out
