"""The shared numerical steps against plain numpy."""

import numpy as np
import pytest

from sklearn_cml._steps import adagrad_step, contains_sorted, row_of_entry


@pytest.mark.parametrize("max_norm", [0.5, 10.0])
def test_adagrad_step_then_projection(max_norm):
    rng = np.random.default_rng(4)
    vector = rng.normal(size=7).astype(np.float32)
    grad_sq = rng.uniform(0.1, 1.0, size=3).astype(np.float32)
    gradient = rng.normal(size=7).astype(np.float32)
    expected_grad_sq = grad_sq.astype(np.float64)
    expected_grad_sq[1] += np.mean(gradient.astype(np.float64) ** 2)
    expected = vector - 0.3 * gradient / np.sqrt(expected_grad_sq[1])
    norm = np.linalg.norm(expected)
    if norm > max_norm:
        expected *= max_norm / norm
    adagrad_step(vector, grad_sq, 1, gradient, np.float32(0.3), np.float32(max_norm))
    np.testing.assert_allclose(grad_sq, expected_grad_sq, rtol=1e-6)
    np.testing.assert_allclose(vector, expected, rtol=1e-5)
    assert np.linalg.norm(vector) <= max_norm * (1 + 1e-6)
    assert (norm > max_norm) == (max_norm == 0.5)  # both branches are exercised


def test_row_of_entry_skips_empty_rows():
    indptr = np.array([0, 0, 2, 2, 2, 5, 6], dtype=np.int64)
    rows = [row_of_entry(indptr, position) for position in range(6)]
    assert rows == [1, 1, 4, 4, 4, 5]


def test_contains_sorted():
    values = np.array([1, 4, 9, 12], dtype=np.int32)
    for value in range(14):
        assert contains_sorted(values, 1, 3, value) == (value in (4, 9))
