"""Pair weights: how much each interaction counts in the loss.

The weight of a training pair (user ``u``, item ``i``) is

    w_ui = f(X_ui) * s_ui / mean over the training pairs of f(X) * s

where ``f`` is the ``interaction_weight`` transform of X's value
(``INTERACTION_WEIGHTS``) and ``s`` the pair's ``sample_weight`` (1 without
one).  The kernels multiply each pair's term of the loss by ``w_ui``.

Why the mean is 1: the AdaGrad learning rate, the margin and every other
parameter keep the meaning they have without weights, only the relative
strengths matter (weights 1 to 5 train the model that 10 to 50 do), and
equal weights give exactly 1.0 for every pair, so training is bitwise that
of an unweighted model.  Weights scale each pair's gradient rather than
the pair's share of draws: sampling pairs in proportion to weight would add
noise (a pair of weight 0.5 trained in half of the epochs) and leave the
loss a model minimises an expectation that finite differences cannot check.

New users (fold-in) get ``f(X_ui)`` divided by the training mean of ``f``
(``value_scales``, kept for every ``f``, so that ``interaction_weight`` may
change after fit): the same value counts as much in a new user's row as in
training.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

from ._sparse_checks import canonical_csr, check_sparse_structure

# interaction_weight -> f(values), on the positive values of X.
INTERACTION_WEIGHTS = {
    "binary": np.ones_like,
    "values": lambda values: values,
    "log": np.log1p,
}

# Fold-in weights more than this many times the training mean would make
# float32 gradients overflow; such rows are refused (see ``fold_in_weights``).
LARGEST_FOLD_IN_WEIGHT = 1e6


def pair_weights(data, values, interaction_weight, sample_weight=None):
    """``(weights, value_scales)`` of the training pairs of ``data``.

    ``weights`` is float32, aligned with ``data.indices``, of mean 1 (the
    module docstring's rule); ``value_scales`` maps each
    ``interaction_weight`` to the mean of its ``f(values)``, which
    ``fold_in_weights`` divides by.
    """
    value_scales = {name: _mean(f(values)) if values.size else 1.0
                    for name, f in INTERACTION_WEIGHTS.items()}
    strengths = INTERACTION_WEIGHTS[interaction_weight](values)
    if sample_weight is not None:
        strengths = strengths * check_sample_weight(sample_weight, data)
    return _mean_one(strengths), value_scales


def fold_in_weights(values, interaction_weight, value_scales):
    """Float32 weights of new users' pairs: ``f(values)`` over its training mean."""
    if interaction_weight == "binary":
        return np.ones(values.shape[0], dtype=np.float32)
    weights = INTERACTION_WEIGHTS[interaction_weight](values) / value_scales[interaction_weight]
    if weights.size and weights.max() > LARGEST_FOLD_IN_WEIGHT:
        raise ValueError(
            f"X has values up to {values.max():.3g}, which with interaction_weight="
            f"{interaction_weight!r} weigh more than {LARGEST_FOLD_IN_WEIGHT:.0e} times the "
            "mean interaction the model was fitted on: give the new users' values on the "
            "scale of the matrix given to fit."
        )
    return weights.astype(np.float32)


def _mean(values):
    """The mean of finite non-negative ``values``, without overflow: values near
    the float64 maximum (1e308) sum to inf, so they are divided by the largest first."""
    largest = float(values.max())
    if largest == 0:
        return 0.0
    return float(largest * np.mean(values / largest))


def _mean_one(strengths):
    """``strengths / mean(strengths)`` as float32; exactly 1.0 when all are equal."""
    if strengths.size == 0:
        return np.ones(0, dtype=np.float32)
    largest = strengths.max()
    if largest <= 0.0:
        raise ValueError(
            "Every interaction of X has a zero weight (sample_weight), so there is nothing "
            "to learn from: give positive weights to the interactions to train on."
        )
    if strengths.min() == largest:
        return np.ones(strengths.shape[0], dtype=np.float32)
    # Divided by the largest first, so that the mean cannot overflow.
    scaled = strengths / largest
    return (scaled / scaled.mean()).astype(np.float32)


def check_sample_weight(sample_weight, data):
    """Float64 weight of each interaction of ``data`` (aligned with its indices).

    ``sample_weight`` is either one weight per user (shape ``(n_users,)``),
    given to each of the user's interactions, or a matrix of X's shape
    (dense or sparse) whose entries at X's interactions are their weights.
    Weights must be finite and non-negative.  A sparse matrix must store an
    entry (0 allowed) at every interaction of X; no matrix may hold a
    non-zero weight where X has no interaction.
    """
    n_users, n_items = data.n_users, data.n_items
    if sp.issparse(sample_weight):
        sample_weight = check_sparse_structure(sample_weight, "sample_weight")
        _check_values(sample_weight.data)
        weights = check_array(sample_weight, accept_sparse="csr", dtype="numeric",
                              ensure_all_finite=False, input_name="sample_weight")
    else:
        try:
            weights = check_array(sample_weight, ensure_2d=False, allow_nd=True,
                                  dtype="numeric", ensure_all_finite=False,
                                  input_name="sample_weight")
        except (TypeError, ValueError) as error:
            raise ValueError(f"sample_weight must be an array of numbers: {error}") from error
        if weights.ndim > 2:
            raise ValueError(
                f"sample_weight has {weights.ndim} dimensions: give one weight per user, "
                f"shape {(n_users,)}, or a matrix of X's shape {(n_users, n_items)} with one "
                "weight per interaction."
            )
        _check_values(weights)
    if weights.ndim == 1:
        if weights.shape[0] != n_users:
            raise ValueError(
                f"sample_weight has {weights.shape[0]} entries, but X has {n_users} users "
                "(rows): give one weight per user, or a matrix of X's shape "
                f"{(n_users, n_items)} with one weight per interaction."
            )
        return np.repeat(weights.astype(np.float64), np.diff(data.indptr))
    if weights.shape != (n_users, n_items):
        raise ValueError(
            f"sample_weight has shape {weights.shape}, but X has shape {(n_users, n_items)}: "
            "give a matrix of X's shape with one weight per interaction, or one weight per "
            "user (rows)."
        )
    rows = np.repeat(np.arange(n_users), np.diff(data.indptr))
    if sp.issparse(weights):
        weights = canonical_csr(weights, "sample_weight")  # duplicates summed
        found = _sparse_weights(weights, data, rows)
        n_nonzero = np.count_nonzero(weights.data)
    else:
        found = np.asarray(weights[rows, data.indices], dtype=np.float64)
        n_nonzero = np.count_nonzero(weights)
    outside = n_nonzero - np.count_nonzero(found)
    if outside:
        raise ValueError(
            f"sample_weight has {outside} non-zero weights where X has no interaction: "
            "weigh X's interactions only (its positive entries), with the rows and columns "
            "of X."
        )
    return found


def _sparse_weights(weights, data, rows):
    """Entries of a canonical CSR ``weights`` at ``data``'s interactions; each must be stored."""
    if (np.array_equal(weights.indptr, data.indptr)
            and np.array_equal(weights.indices, data.indices)):
        return np.asarray(weights.data, dtype=np.float64)
    stored = sp.csr_matrix((np.ones(weights.indices.shape[0]), weights.indices, weights.indptr),
                           shape=weights.shape)
    missing = np.asarray(stored[rows, data.indices]).ravel() == 0
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"sample_weight has no entry for {int(missing.sum())} interactions of X (the "
            f"first at row {rows[first]}, column {data.indices[first]}): store a weight at "
            "every interaction, 0 for a pair not to train on: for example a copy of X "
            "with its data replaced by the weights."
        )
    return np.asarray(sp.csr_matrix(weights)[rows, data.indices], dtype=np.float64).ravel()


def _check_values(values):
    """Refuse non-numeric, non-finite and negative weights."""
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must hold numbers, got dtype {values.dtype}.")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        what = "NaN" if np.isnan(values).any() else "infinity"
        raise ValueError(
            f"sample_weight contains {what}: every weight must be a finite number, 0 for a "
            "pair not to train on."
        )
    if values.size and values.min() < 0:
        raise ValueError(
            f"sample_weight contains negative weights (down to {values.min():.3g}): weights "
            "say how much a liked item counts, from 0 (not at all) up; a dislike is not a "
            "negative weight."
        )
