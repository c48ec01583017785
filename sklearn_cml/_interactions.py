"""Validation of interaction matrices and of the ids passed to the estimator.

An interaction matrix is users x items; any positive entry is an
interaction.  Whatever the input format (scipy sparse of any format, matrix
or array, or dense), the kernels receive one canonical structure: CSR
``indptr`` as int64 and ``indices`` as int32, sorted within each row,
duplicates merged and non-positive entries dropped.
"""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ._sparse_checks import canonical_csr, check_matrix

_MAX_INTERACTIONS = np.iinfo(np.int32).max


class Interactions(NamedTuple):
    """Binary CSR structure of an interaction matrix, as the kernels want it."""

    indptr: np.ndarray  # int64, shape (n_users + 1,)
    indices: np.ndarray  # int32, sorted within each row
    n_items: int

    @property
    def n_users(self):
        return self.indptr.shape[0] - 1

    @property
    def n_interactions(self):
        return self.indices.shape[0]

    def to_csr(self, copy=False):
        """A scipy ``csr_matrix`` of ones with this structure.

        Without ``copy`` it shares ``indices`` and ``indptr`` (the
        package's own: validation copies the caller's arrays).
        """
        data = np.ones(self.n_interactions, dtype=np.float32)
        indices, indptr = (self.indices.copy(), self.indptr.copy()) if copy else (
            self.indices, self.indptr)
        return sp.csr_matrix((data, indices, indptr), shape=(self.n_users, self.n_items))


def validate_interactions(estimator, X, *, reset, name="X", with_values=False):
    """Check ``X`` with scikit-learn's rules and return its ``Interactions``.

    ``reset=True`` (fit) records ``n_features_in_``; ``reset=False`` checks
    that ``X`` has the number of items seen in fit.  Rejects malformed
    sparse structures, NaN, inf, non-numeric data, empty matrices and
    negative values, with messages that say how to fix the data.  With
    ``with_values``, returns ``(Interactions, values)`` (see
    ``to_interactions``).
    """
    _reject_long_table(X, name)
    try:
        checked = check_matrix(X, name, estimator=estimator, reset=reset)
    except ValueError as error:
        if "convert string" not in str(error) and "strings" not in str(error):
            raise
        raise ValueError(
            f"{name} holds strings ({error}). {_LONG_TABLE_FIX}"
        ) from None
    if not reset:
        _check_item_ids(estimator, X, name)
    return to_interactions(checked, name, with_values=with_values)


_LONG_TABLE_FIX = (
    "CMLRecommender takes a users x items matrix. For a long table of (user, item"
    "[, strength]) rows, encode it first with sklearn_cml.preprocessing.InteractionEncoder, "
    "for example make_pipeline(InteractionEncoder('user_id', 'item_id', strength_col="
    "'rating'), CMLRecommender()); the model then takes and returns your ids."
)


def _reject_long_table(X, name):
    """Refuse a DataFrame whose columns name users: a table, not a matrix.

    A matrix's columns are items, so a column named after users means one
    row per interaction.
    """
    columns = getattr(X, "columns", None)
    if columns is None:
        return
    user_columns = [c for c in columns if isinstance(c, str) and "user" in c.lower()]
    if user_columns:
        raise ValueError(
            f"{name} is a DataFrame with a column {user_columns[0]!r}: it looks like a long "
            f"table, one row per interaction. {_LONG_TABLE_FIX}"
        )


def _check_item_ids(estimator, X, name):
    """Refuse an encoded matrix whose columns are not the items of fit."""
    fitted = getattr(estimator, "item_ids_", None)
    given = getattr(X, "item_ids", None)
    if fitted is None or given is None:
        return
    if given.shape != fitted.shape or not np.array_equal(given, fitted):
        raise ValueError(
            f"{name}'s columns are not the items the model was fitted on. Encode tables "
            "with the InteractionEncoder fitted with the model (a Pipeline does this)."
        )


def check_interactions(X, name, shape=None):
    """``Interactions`` of a matrix given outside an estimator (``y``, metrics).

    ``shape``, when given, is the shape ``X`` must have.
    """
    if isinstance(X, Interactions):
        return X
    X = check_matrix(X, name)
    if shape is not None and X.shape != shape:
        raise ValueError(f"{name} has shape {X.shape}, but must have shape {shape}.")
    return to_interactions(X, name)


def to_interactions(X, name="X", *, with_values=False):
    """Canonical binary CSR structure of an already checked 2-d ``X``.

    With ``with_values``, returns ``(Interactions, values)``: ``values``
    (float64, positive) holds X's value of each interaction, aligned with
    ``indices`` (duplicates summed, as scipy does).
    """
    csr = canonical_csr(X if sp.issparse(X) else sp.csr_matrix(X), name)
    smallest = csr.data.min() if csr.data.size else 1
    if smallest < 0:
        raise ValueError(
            f"Negative values in data passed to {name}. An interaction matrix holds "
            "implicit feedback where any positive entry is an interaction; "
            "binarize or threshold the data first, for example with "
            "sklearn.preprocessing.Binarizer(threshold=...)."
        )
    if csr.nnz > _MAX_INTERACTIONS:
        raise ValueError(
            f"{name} has {csr.nnz} stored entries; at most {_MAX_INTERACTIONS} "
            "interactions are supported. Subsample users or items."
        )
    if smallest == 0:
        # Explicit zeros are not interactions: drop them (on a copy).
        csr = csr.copy() if csr is X else csr
        csr.eliminate_zeros()
    indptr, indices = csr.indptr, csr.indices
    interactions = Interactions(
        indptr=np.ascontiguousarray(indptr, dtype=np.int64),
        indices=np.ascontiguousarray(indices, dtype=np.int32),
        n_items=csr.shape[1],
    )
    if with_values:
        return interactions, np.asarray(csr.data, dtype=np.float64)
    return interactions


def validate_ids(ids, n_known, what, fix):
    """Return ``ids`` as a 1-d int64 array, all in ``[0, n_known)``.

    ``what`` names the ids ("user_ids"); ``fix`` says what to do instead
    when an id is out of range.
    """
    # A copy, checked and then used: the caller cannot change it in between.
    array = np.array(ids)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a 1-d array of integer ids, got shape {array.shape}.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must hold integer ids, got dtype {array.dtype}.")
    # Compared before any cast: uint64 ids past 2**63 would turn negative.
    bad = (array >= n_known) if array.dtype.kind == "u" else (array < 0) | (array >= n_known)
    if bad.any():
        raise ValueError(
            f"{what} contains {array[bad][0]}, outside the {n_known} ids seen in fit "
            f"(0 to {n_known - 1}). {fix}"
        )
    return array.astype(np.int64, copy=False)


def validate_count(value, name):
    """Return ``value`` if it is a positive integer, else raise ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
