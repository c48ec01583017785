"""The random streams: generator, permutations, seeds and hashes."""

import numpy as np

from sklearn_cml._rng import (
    holdout_mask,
    random_below,
    random_permutation,
    row_hash_states,
    seed_states,
    stream_seed,
)


def test_random_below_is_uniform():
    states = seed_states(7, 1)
    state, draws = states[0], []
    for _ in range(20000):
        state, value = random_below(np.uint64(state), 5)
        draws.append(value)
    counts = np.bincount(np.array(draws), minlength=5)
    assert counts.min() > 3700 and counts.max() < 4300


def test_random_permutation_is_seeded_and_uniform():
    order = np.empty(6, dtype=np.int32)
    counts = np.zeros((6, 6))
    for seed in range(3000):
        random_permutation(order, seed)
        assert sorted(order) == list(range(6))
        counts[np.arange(6), order] += 1
    # Every value lands in every place about equally often (expected 500).
    assert counts.min() > 400 and counts.max() < 600
    again = np.empty(6, dtype=np.int32)
    random_permutation(again, 2999)
    np.testing.assert_array_equal(again, order)


def test_seed_states_are_distinct_and_nonzero():
    states = seed_states(0, 64)
    assert np.unique(states).size == 64 and (states != 0).all()


def test_row_hash_states_depend_only_on_row_content():
    indptr = np.array([0, 2, 4, 5], dtype=np.int64)
    indices = np.array([1, 3, 1, 3, 2], dtype=np.int32)
    states = row_hash_states(indptr, indices, 11)
    assert states[0] == states[1] != states[2]
    assert row_hash_states(indptr, indices, 12)[0] != states[0]


def test_holdout_mask_fraction_and_determinism():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 30, size=50)
    indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    indices = np.concatenate(
        [np.sort(rng.choice(100, size=n, replace=False)) for n in lengths]
    ).astype(np.int32)
    mask = holdout_mask(indptr, indices, 5, 0.2)
    held = np.add.reduceat(mask.astype(int), indptr[:-1])[lengths > 0]
    for n, n_held in zip(lengths[lengths > 0], held):
        expected = 0 if n < 2 else min(max(1, round(0.2 * n)), n - 1)
        assert n_held == expected
    np.testing.assert_array_equal(mask, holdout_mask(indptr, indices, 5, 0.2))


def test_stream_seeds_keep_the_streams_apart():
    streams = ["initial vectors", "embedding blocks", "feature blocks", "pair order",
               "row order", "feature order"]
    seeds = {stream: stream_seed(12345, stream, epoch=3) for stream in streams}
    assert len(set(seeds.values())) == len(streams)
    # Streams drawn anew each epoch change with the epoch.
    for stream in ("pair order", "row order", "feature order"):
        assert stream_seed(12345, stream, epoch=4) != seeds[stream]
