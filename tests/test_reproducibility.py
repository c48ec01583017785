"""Results do not depend on where the allocator puts the buffers.

With reassociation, LLVM compiles a loop that sums while it stores into
another array twice, and picks the vector or the scalar loop at run time
from how far apart the arrays are; the two sum in different orders
(_numba_config).  These tests put the buffers of a loss row at distances
on both sides of that threshold, and perturb the heap between fits.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from numba import njit

from sklearn_cml import CMLRecommender
from sklearn_cml._losses import LossRow, RowScratch
from sklearn_cml._losses.softmax import SoftmaxParameters, softmax_weights
from sklearn_cml._numba_config import FASTMATH
from sklearn_cml._solvers import hogwild


@njit(fastmath=FASTMATH, error_model="numpy")
def _weigh(parameters, positive_distances, pair_weights, distances, counts, pair_coef):
    """The softmax's weights compiled with the solvers' flags (it is inlined into them)."""
    n_negatives = distances.shape[0]
    row = LossRow(positive_distances, pair_weights, distances, counts, np.log(counts), 10, 1000)
    scratch = RowScratch(np.empty(n_negatives, np.float32), np.empty(n_negatives, np.int32))
    return softmax_weights(parameters, row, pair_coef, scratch)


def _adjacent(first_size, gap, second_size):
    """Two float32 arrays in one buffer, the second ``gap`` entries after the first."""
    buffer = np.zeros(first_size + gap + second_size, np.float32)
    return buffer[:first_size], buffer[first_size + gap:]


def test_softmax_weights_do_not_depend_on_where_the_pair_coefficients_are():
    # The coefficients right after the distances (as in one thread's
    # scratch, or two small consecutive allocations), or far from them.
    rng = np.random.default_rng(0)
    parameters = SoftmaxParameters(np.float32(1 / 0.3), np.float32(0.15), np.float32(8.0))
    for n_pairs in range(8, 32):  # enough pairs for the vector loop
        positive_distances = rng.random(n_pairs, dtype=np.float32) * 2
        pair_weights = (0.5 + rng.random(n_pairs)).astype(np.float32)
        negatives = rng.random(50, dtype=np.float32) * 4
        counts = (1.0 + rng.random(50)).astype(np.float32)
        results = set()
        for gap in (0, 4, 8, 16, 32, 64):
            distances, pair_coef = _adjacent(n_pairs, gap, n_pairs)
            distances[:] = positive_distances
            row = negatives.copy()
            total, loss = _weigh(parameters, distances, pair_weights, row, counts, pair_coef)
            results.add((pair_coef.tobytes(), row.tobytes(), np.float32(total).tobytes(),
                         np.float32(loss).tobytes()))
        assert len(results) == 1, f"{n_pairs} pairs: {len(results)} different results"


N_FITS = 30


@pytest.mark.parametrize("solver", ["block", "hogwild"])
@pytest.mark.parametrize("loss", ["softmax", "hinge"])
def test_fits_in_one_process_are_bitwise_equal(solver, loss, monkeypatch):
    """Identical fits, with the heap perturbed between them and the per-pair
    solver's pair scratch placed at distances from the positives' distances
    on both sides of the vector loop's alias check: all bitwise equal."""
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((200, 100)) < 0.12).astype(np.float32))
    params = dict(n_components=16, solver=solver, loss=loss, n_epochs=3, random_state=0,
                  n_jobs=1)
    gaps = iter(np.arange(N_FITS + 1) % 3 * 32)  # 0, 32, 64 entries
    make_scratch = hogwild.make_scratch

    def placed_scratch(config, n_slots, n_items, n_components):
        scratch = make_scratch(config, n_slots, n_items, n_components)
        shape = scratch.pair_coef.shape
        distances, pair_coef = _adjacent(scratch.positive_distances.size, int(next(gaps)),
                                         scratch.pair_coef.size)
        return scratch._replace(positive_distances=distances.reshape(shape),
                                pair_coef=pair_coef.reshape(shape))

    monkeypatch.setattr(hogwild, "make_scratch", placed_scratch)

    def fit():
        model = CMLRecommender(**params).fit(X)
        return model.user_embeddings_, model.item_embeddings_, model.loss_curve_

    first = fit()
    kept = []
    for _ in range(N_FITS):
        # Arrays of many sizes, some kept alive: the next fit's buffers land
        # elsewhere, next to other neighbours.
        for size in rng.integers(1, 4096, size=8):
            block = np.empty(int(size), np.float32)
            if rng.random() < 0.5:
                kept.append(block)
        users, items, losses = fit()
        np.testing.assert_array_equal(users, first[0])
        np.testing.assert_array_equal(items, first[1])
        assert losses == first[2]
