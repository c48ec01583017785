"""The item-feature MLP of CML's feature loss, as Numba kernels.

    f(x) = W2^T relu(W1^T x + b1) + b2

maps an item's features x (a sparse row: bag of words, tags, genres) into
the metric space; the feature loss ``weight * |f(x_j) - v_j|^2`` pulls each
item vector v_j toward f(x_j) and trains f.  Shapes: W1 (n_features, H),
b1 (H,), W2 (H, K), b2 (K,).  Dropout on the hidden layer during training
(inverted: kept units are scaled by 1 / keep, so inference needs no change).

Gradients are kept in factored form, never as full matrices:
``g = 2 * weight * (f - v)`` (K) and ``d = (W2 g) * relu'(.) * mask`` (H);
then dL/dv = -g, dL/db2 = g, dL/dW2[h] = hidden[h] g, dL/db1 = d and
dL/dW1[i] = x_i d for the item's active features i.  Updates are row-wise
AdaGrad, like the embeddings.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange
from scipy import sparse

from ._numba_config import FASTMATH, NUMBA_CACHE
from ._rng import random_below
from ._sparse_checks import canonical_csr, check_matrix
from ._steps import adagrad_step, project_into_ball


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def mlp_forward(feature_indices, feature_values, w1, b1, w2, b2, keep_mask,
                hidden_pre, hidden, output):
    """Forward pass for one item; ``keep_mask`` holds 0 or 1 / keep per unit."""
    n_hidden = b1.shape[0]
    hidden_pre[:] = b1
    for position in range(feature_indices.shape[0]):
        value = feature_values[position]
        row = w1[feature_indices[position]]
        for unit in range(n_hidden):
            hidden_pre[unit] += value * row[unit]
    for unit in range(n_hidden):
        hidden[unit] = max(hidden_pre[unit], 0.0) * keep_mask[unit]
    output[:] = b2
    for unit in range(n_hidden):
        activation = hidden[unit]
        if activation != 0.0:
            row = w2[unit]
            for d in range(output.shape[0]):
                output[d] += activation * row[d]


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def feature_loss_factors(vector, weight, w2, hidden_pre, keep_mask, output,
                         grad_output, grad_hidden):
    """Loss ``weight |f - v|^2`` and the gradient factors g and d (in place)."""
    loss = 0.0
    for d in range(output.shape[0]):
        grad_output[d] = 2.0 * weight * (output[d] - vector[d])
    # Summed in a loop that stores nothing (see _numba_config).
    for d in range(output.shape[0]):
        difference = output[d] - vector[d]
        loss += difference * difference
    for unit in range(grad_hidden.shape[0]):
        if hidden_pre[unit] > 0.0 and keep_mask[unit] != 0.0:
            row = w2[unit]
            total = 0.0
            for d in range(grad_output.shape[0]):
                total += row[d] * grad_output[d]
            grad_hidden[unit] = total * keep_mask[unit]
        else:
            grad_hidden[unit] = 0.0
    return weight * loss


@njit(cache=NUMBA_CACHE, inline="always", fastmath=FASTMATH, error_model="numpy")
def scaled_adagrad_step(row_vector, grad_sq, row, scale, direction, learning_rate):
    """Row-wise AdaGrad step with gradient ``scale * direction`` (no projection)."""
    if scale == 0.0:
        return
    mean_square = 0.0
    for d in range(direction.shape[0]):
        mean_square += direction[d] * direction[d]
    mean_square *= scale * scale / direction.shape[0]
    grad_sq[row] += mean_square
    step = learning_rate * scale / math.sqrt(grad_sq[row])
    for d in range(direction.shape[0]):
        row_vector[d] -= step * direction[d]


@njit(cache=NUMBA_CACHE, parallel=True, fastmath=FASTMATH, error_model="numpy")
def feature_epoch(item_order, features, item_embeddings, item_grad_sq, encoder, encoder_grad_sq,
                  step, rng_states, block_losses):
    """One Hogwild pass of the feature loss over the items in ``item_order``.

    ``features`` is a ``FeatureRows``, ``encoder`` an ``Encoder`` (updated
    in place) with its AdaGrad sums ``encoder_grad_sq`` and ``step`` a
    ``FeatureStep``.  Each step: forward with a fresh dropout mask, then
    AdaGrad on the item vector (projected into the ball) and on every MLP
    weight the item touched.  Blocks of items run in parallel, each with its
    own RNG state.
    """
    # Unpacked before the parallel loop: writes through a NamedTuple's fields
    # inside it can be dropped by Numba's dead-code elimination.
    w1, b1, w2, b2 = encoder
    w1_grad_sq, w2_grad_sq, bias_grad_sq = encoder_grad_sq
    n_blocks = rng_states.shape[0]
    n_items = item_order.shape[0]
    n_hidden = b1.shape[0]
    n_components = b2.shape[0]
    keep = step.keep
    for block in prange(n_blocks):
        rng_state = rng_states[block]
        keep_mask = np.empty(n_hidden, dtype=np.float32)
        hidden_pre = np.empty(n_hidden, dtype=np.float32)
        hidden = np.empty(n_hidden, dtype=np.float32)
        grad_hidden = np.empty(n_hidden, dtype=np.float32)
        output = np.empty(n_components, dtype=np.float32)
        grad_output = np.empty(n_components, dtype=np.float32)
        loss = 0.0
        for position in range(n_items * block // n_blocks, n_items * (block + 1) // n_blocks):
            item = item_order[position]
            start, stop = features.indptr[item], features.indptr[item + 1]
            indices = features.indices[start:stop]
            values = features.values[start:stop]
            for unit in range(n_hidden):
                rng_state, draw = random_below(rng_state, 1 << 24)
                keep_mask[unit] = np.float32(1.0 / keep) if draw < keep * (1 << 24) else 0.0
            mlp_forward(indices, values, w1, b1, w2, b2, keep_mask, hidden_pre, hidden, output)
            vector = item_embeddings[item]
            loss += feature_loss_factors(
                vector, step.weight, w2, hidden_pre, keep_mask, output, grad_output, grad_hidden
            )
            # dL/dv = -g: the item vector moves toward f(x).
            for d in range(n_components):
                output[d] = -grad_output[d]
            adagrad_step(vector, item_grad_sq, item, output, step.item_learning_rate,
                         step.max_norm)
            for unit in range(n_hidden):
                scaled_adagrad_step(w2[unit], w2_grad_sq, unit, hidden[unit],
                                    grad_output, step.learning_rate)
            scaled_adagrad_step(b2, bias_grad_sq, 1, 1.0, grad_output,
                                step.learning_rate)
            for position_in_row in range(indices.shape[0]):
                feature = indices[position_in_row]
                scaled_adagrad_step(w1[feature], w1_grad_sq, feature,
                                    values[position_in_row], grad_hidden, step.learning_rate)
            scaled_adagrad_step(b1, bias_grad_sq, 0, 1.0, grad_hidden,
                                step.learning_rate)
        rng_states[block] = rng_state
        block_losses[block] += loss


@njit(cache=NUMBA_CACHE, parallel=True, fastmath=FASTMATH, error_model="numpy")
def embed_items(features, encoder, max_norm, out):
    """f(x) for each row (no dropout), projected into the ball, into ``out``."""
    w1, b1, w2, b2 = encoder
    n_hidden = b1.shape[0]
    for row in prange(out.shape[0]):
        keep_mask = np.ones(n_hidden, dtype=np.float32)
        hidden_pre = np.empty(n_hidden, dtype=np.float32)
        hidden = np.empty(n_hidden, dtype=np.float32)
        start, stop = features.indptr[row], features.indptr[row + 1]
        mlp_forward(features.indices[start:stop], features.values[start:stop], w1, b1, w2, b2,
                    keep_mask, hidden_pre, hidden, out[row])
        sq_norm = np.float32(0.0)
        for d in range(out.shape[1]):
            sq_norm += out[row, d] * out[row, d]
        project_into_ball(out[row], sq_norm, max_norm)


# --------------------------------------------------------------- Python side


class FeatureRows(NamedTuple):
    """Item features as the kernels read them: CSR rows, one per item."""

    indptr: np.ndarray  # int64
    indices: np.ndarray  # int32, sorted within each row
    values: np.ndarray  # float32
    n_features: int


class Encoder(NamedTuple):
    """The MLP's weights: ``f(x) = w2.T relu(w1.T x + b1) + b2``."""

    w1: np.ndarray  # (n_features, n_hidden)
    b1: np.ndarray  # (n_hidden,)
    w2: np.ndarray  # (n_hidden, n_components)
    b2: np.ndarray  # (n_components,)


class EncoderGradSq(NamedTuple):
    """Row-wise AdaGrad sums of the MLP's weights."""

    w1: np.ndarray  # one per row of w1
    w2: np.ndarray  # one per row of w2
    bias: np.ndarray  # (2,): b1, then b2


class FeatureStep(NamedTuple):
    """Hyperparameters of a feature step, as float32."""

    weight: np.float32  # of the feature loss
    learning_rate: np.float32  # of the MLP's weights
    item_learning_rate: np.float32
    max_norm: np.float32
    keep: np.float32  # 1 - dropout


def validate_item_features(features, n_items, n_features=None, name="item_features"):
    """Check an item-feature matrix (finite, non-negative); return its ``FeatureRows``.

    ``n_items`` is the number of rows required (None: any); ``n_features``
    the number of columns seen in fit (None: any).
    """
    matrix = check_matrix(features, name, dtype=np.float32)
    if n_items is not None and matrix.shape[0] != n_items:
        raise ValueError(
            f"{name} has {matrix.shape[0]} rows but X has {n_items} items (columns): "
            "give one row of features per item, in the order of X's columns."
        )
    if n_features is not None and matrix.shape[1] != n_features:
        raise ValueError(
            f"{name} has {matrix.shape[1]} feature columns, but the model was fitted with "
            f"{n_features}. Encode new items with the same features as in fit."
        )
    csr = canonical_csr(sparse.csr_matrix(matrix), name)
    _check_non_negative(csr, name)
    return FeatureRows(
        np.ascontiguousarray(csr.indptr, dtype=np.int64),
        np.ascontiguousarray(csr.indices, dtype=np.int32),
        np.ascontiguousarray(csr.data, dtype=np.float32),
        csr.shape[1],
    )


def _check_non_negative(csr, name):
    """Refuse negative features.  TF-IDF and the cosines of neighbour
    placement read them as counts: an item with negative values shares no
    feature with any trained item, so all such items land on one point."""
    negative = csr.data < 0
    if negative.any():
        position = int(np.flatnonzero(negative)[0])
        row = int(np.searchsorted(csr.indptr, position, side="right")) - 1
        raise ValueError(
            f"{name} has {int(negative.sum())} negative value(s), the first "
            f"{csr.data[position]} at row {row}, column {csr.indices[position]}: item "
            "features are non-negative counts or weights (tags, words, genres). Rescale "
            "them to non-negative values (for example sklearn.preprocessing.MinMaxScaler), "
            "or one-hot encode signed features."
        )


def initial_encoder(n_features, n_hidden, n_components, mean_active, rng):
    """Random MLP weights scaled so that f(x) starts about unit-ball sized, and
    their AdaGrad sums: ``(Encoder, EncoderGradSq)``."""
    w1 = rng.standard_normal((n_features, n_hidden), dtype=np.float32)
    w1 *= np.float32(1.0 / np.sqrt(max(mean_active, 1.0)))
    w2 = rng.standard_normal((n_hidden, n_components), dtype=np.float32)
    w2 *= np.float32(np.sqrt(2.0 / (n_hidden * n_components)))
    encoder = Encoder(w1, np.zeros(n_hidden, dtype=np.float32), w2,
                      np.zeros(n_components, dtype=np.float32))
    grad_sq = EncoderGradSq(np.full(n_features, 0.1, dtype=np.float32),
                            np.full(n_hidden, 0.1, dtype=np.float32),
                            np.full(2, 0.1, dtype=np.float32))
    return encoder, grad_sq
