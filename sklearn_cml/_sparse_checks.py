"""Checks of raw matrices, before scipy's converters or any kernel read them.

scipy builds a sparse matrix from ``(data, indices, indptr)`` or ``(data,
(row, col))`` arrays without checking them all: a column index past the
shape, a decreasing ``indptr`` or arrays of different lengths are accepted,
and scipy's own C++ converters (``tocsr``, ``sum_duplicates``) then read or
write outside their arrays, as would every kernel of this package.  scipy
also caches whether a matrix is sorted (``has_canonical_format``), and the
cache survives in-place edits of ``indices``.

So every public entry point that takes a matrix passes it through
``check_matrix``: the raw arrays of any sparse format are copied, then the
copies are checked, in one O(nnz) pass; then scikit-learn's ``check_array``
rules apply; then NaN and infinity are refused with a message of our own.
``canonical_csr`` finally gives the kernels sorted, duplicate-free rows,
deciding that from the indices themselves rather than from scipy's cache.

The copy comes first because the caller still holds the arrays it passed:
another thread may change ``X.indices`` after the check, and a kernel (or
scipy's converters) reading the caller's array would then read or write
outside its arrays.  What the package validates, and what its kernels
read, are arrays it owns.  The copy costs little next to the check (0.4 ms
of 2.9 ms for the one million pairs of MovieLens-1M).
"""

import copy

import numpy as np
import scipy.sparse as sp
from numba import njit
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from ._numba_config import NUMBA_CACHE

_REBUILD = (
    "Rebuild the matrix from consistent arrays, for example "
    "scipy.sparse.csr_matrix((data, (rows, columns)), shape=(n_rows, n_columns)), "
    "which checks them."
)

# Outcomes of ``_scan_compressed``.
_CANONICAL, _NOT_CANONICAL, _DECREASING, _PAST_END, _OUT_OF_RANGE = range(5)


@njit(cache=NUMBA_CACHE)
def _scan_compressed(indptr, indices, n_minor):
    """One pass over a compressed (CSR, CSC, BSR) structure.

    ``indptr`` must start at 0 (the caller checks it); every row is checked
    against the length of ``indices`` before it is read, so that no read
    leaves the arrays.  Returns ``(outcome, position)``: ``_CANONICAL``
    when every row is strictly increasing, ``_NOT_CANONICAL`` when some row
    is unsorted or repeats an index, ``_DECREASING`` or ``_PAST_END`` with
    the first ``indptr`` position that decreases or points past the
    entries, or ``_OUT_OF_RANGE`` with the first entry whose index is
    outside ``[0, n_minor)``.
    """
    canonical = True
    for row in range(indptr.shape[0] - 1):
        start = indptr[row]
        stop = indptr[row + 1]
        if stop < start:
            return _DECREASING, row + 1
        if stop > indices.shape[0]:
            return _PAST_END, row + 1
        previous = -1
        for position in range(start, stop):
            index = indices[position]
            if index < 0 or index >= n_minor:
                return _OUT_OF_RANGE, position
            if index <= previous:
                canonical = False
            previous = index
    return (_CANONICAL if canonical else _NOT_CANONICAL), -1


def _scan_dtypes(indptr, indices):
    """``indptr`` as int64 (it is short), ``indices`` as they are (int32 or
    int64: copying millions of them to scan them would cost more than the
    second compiled version, which ``warmup`` compiles too)."""
    return indptr.astype(np.int64, copy=False), indices


def check_matrix(X, name, *, estimator=None, reset=True, dtype="numeric"):
    """Check a user's matrix; return it as a 2-d array or CSR matrix.

    The raw arrays of a sparse ``X`` are checked first
    (``check_sparse_structure``), then scikit-learn's rules apply (through
    ``validate_data`` when ``estimator`` is given, which records or checks
    ``n_features_in_`` according to ``reset``), then NaN and infinity are
    refused with a message that says how to fix the data.  Dense float16
    becomes float32, which scipy.sparse can hold.
    """
    X = check_sparse_structure(X, name)
    options = dict(accept_sparse="csr", dtype=dtype, ensure_all_finite=False,
                   ensure_min_samples=1, ensure_min_features=1)
    if estimator is None:
        X = check_array(X, input_name=name, **options)
    else:
        X = validate_data(estimator, X, reset=reset, **options)
    _check_finite(X, name)
    if X.dtype == np.float16:
        X = X.astype(np.float32)  # for scipy.sparse, which has no float16
    return X


def check_sparse_structure(X, name):
    """A private copy of a sparse ``X``, whose raw arrays are consistent.

    Any scipy sparse matrix or array: index arrays of integers, of the
    lengths the shape implies, every index inside the shape, ``indptr``
    starting at 0 and never decreasing; raises ValueError otherwise.  The
    arrays are copied before they are checked (``private_copy``), so that
    the caller cannot change what was checked.  Dense input is returned as
    is: it is converted to new arrays before any kernel sees it.
    """
    if not sp.issparse(X):
        return X
    X = private_copy(X)
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D array, got a {X.ndim}-d sparse {name} of shape {X.shape}: "
            f"{name} must be a matrix of one row per user (or item) and one column per "
            "item (or feature)."
        )
    n_rows, n_columns = X.shape
    if X.format in ("csr", "csc"):
        major, minor = (n_rows, n_columns) if X.format == "csr" else (n_columns, n_rows)
        _check_compressed(X, name, major, minor)
    elif X.format == "bsr":
        block_rows, block_columns = X.blocksize
        _check_compressed(X, name, n_rows // block_rows, n_columns // block_columns)
        if X.data.shape != (X.indices.shape[0], block_rows, block_columns):
            raise ValueError(
                f"{name}.data has shape {X.data.shape}, but a BSR matrix with "
                f"{X.indices.shape[0]} blocks of {X.blocksize} needs "
                f"{(X.indices.shape[0], block_rows, block_columns)}. {_REBUILD}"
            )
    elif X.format == "coo":
        _check_coordinates(X, name)
    elif X.format == "lil" and (len(X.rows) != n_rows or any(
            len(columns) != len(values) for columns, values in zip(X.rows, X.data))):
        # scipy flattens rows and data into arrays sized from the rows.
        raise ValueError(f"{name}'s LIL rows and data lists do not match. {_REBUILD}")
    elif X.format == "dia" and (X.data.ndim != 2 or X.data.shape[0] != X.offsets.shape[0]):
        raise ValueError(
            f"{name}.data has shape {X.data.shape}, but a DIA matrix with "
            f"{X.offsets.shape[0]} diagonals needs one row per diagonal. {_REBUILD}"
        )
    # DOK is a dictionary whose conversion checks every key against the shape.
    return X


# The raw arrays of each sparse format, which ``private_copy`` copies.
_RAW_ARRAYS = {"csr": ("data", "indices", "indptr"), "csc": ("data", "indices", "indptr"),
               "bsr": ("data", "indices", "indptr"), "dia": ("data", "offsets")}


def private_copy(X):
    """A sparse ``X`` with copies of its raw arrays, not yet checked.

    The arrays are copied as they are, without scipy's constructors, which
    would check (or trust) them first; COO's coordinates, LIL's lists and
    DOK's dictionary are copied too.
    """
    if X.format in ("lil", "dok"):
        return X.copy()  # a deep copy of the lists, a copy of the dictionary
    copied = copy.copy(X)
    if X.format == "coo":
        copied.coords = tuple(np.array(axis) for axis in X.coords)
        copied.data = np.array(X.data)
    for attribute in _RAW_ARRAYS.get(X.format, ()):
        setattr(copied, attribute, np.array(getattr(X, attribute)))
    return copied


def _index_array(array, what, name):
    """``array`` as a 1-d int32 or int64 array, or a ValueError."""
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name}.{what} must be a 1-d array of integers, got dtype {array.dtype} and "
            f"shape {array.shape}. {_REBUILD}"
        )
    if array.dtype not in (np.int32, np.int64):
        array = array.astype(np.int64)
    return array


def _check_compressed(X, name, n_major, n_minor):
    """Lengths, ``indptr`` order and index range of a CSR, CSC or BSR matrix."""
    indptr = _index_array(X.indptr, "indptr", name)
    indices = _index_array(X.indices, "indices", name)
    if indptr.shape[0] != n_major + 1:
        raise ValueError(
            f"{name}.indptr has {indptr.shape[0]} entries, but {name} has shape {X.shape}, "
            f"which needs {n_major + 1} (one per row, plus one). {_REBUILD}"
        )
    if X.data.shape[0] != indices.shape[0] or (X.format != "bsr" and X.data.ndim != 1):
        raise ValueError(
            f"{name}.data has shape {X.data.shape} but {name}.indices has "
            f"{indices.shape[0]} entries: data must be 1-d, one value per index. {_REBUILD}"
        )
    if indptr[0] != 0:
        raise ValueError(f"{name}.indptr must start at 0, but starts at {indptr[0]}. {_REBUILD}")
    outcome, position = _scan_compressed(*_scan_dtypes(indptr, indices), n_minor)
    if outcome == _DECREASING:
        raise ValueError(
            f"{name}.indptr decreases at position {position} ({indptr[position - 1]} then "
            f"{indptr[position]}); it must never decrease. {_REBUILD}"
        )
    if outcome == _PAST_END:
        raise ValueError(
            f"{name}.indptr[{position}] = {indptr[position]} points past the "
            f"{indices.shape[0]} stored entries: indptr must end at most at the number of "
            f"stored entries. {_REBUILD}"
        )
    if outcome == _OUT_OF_RANGE:
        _raise_out_of_range(X, name, indices[position], position, n_minor)
    # Stored entries past indptr[-1] are spare room, which the kernels must not see.
    return outcome == _CANONICAL and indptr[-1] == indices.shape[0]


def _raise_out_of_range(X, name, index, position, bound):
    kind = {"csr": "column", "csc": "row", "bsr": "block column"}[X.format]
    raise ValueError(
        f"{name} has {kind} index {index} (stored entry {position}), outside [0, {bound}) "
        f"for its shape {X.shape}. Give a shape that covers every {kind} index, or "
        f"remove the entries. {_REBUILD}"
    )


def _check_coordinates(X, name):
    """Lengths and range of a COO matrix's row and column arrays."""
    rows = _index_array(X.row, "row", name)
    columns = _index_array(X.col, "col", name)
    if not rows.shape[0] == columns.shape[0] == X.data.shape[0]:
        raise ValueError(
            f"{name}.row, .col and .data have {rows.shape[0]}, {columns.shape[0]} and "
            f"{X.data.shape[0]} entries: they must match. {_REBUILD}"
        )
    for kind, array, bound in (("row", rows, X.shape[0]), ("column", columns, X.shape[1])):
        if array.shape[0] and (array.min() < 0 or array.max() >= bound):
            position = int(np.flatnonzero((array < 0) | (array >= bound))[0])
            raise ValueError(
                f"{name} has {kind} index {array[position]} (stored entry {position}), "
                f"outside [0, {bound}) for its shape {X.shape}. Give a shape that covers "
                f"every {kind} index, or remove the entries. {_REBUILD}"
            )


def _check_finite(X, name):
    """Refuse NaN and infinity, saying where and what to do."""
    values = X.data if sp.issparse(X) else X
    if values.dtype.kind != "f" or np.isfinite(values).all():
        return
    what = "NaN" if np.isnan(values).any() else "infinity"
    raise ValueError(
        f"{name} contains {what}. Every entry must be a finite number: for an "
        "interaction matrix, 0 (or no stored entry) means no interaction and any "
        "positive value an interaction, so replace missing values with 0 (for example "
        "numpy.nan_to_num(X, nan=0.0), or DataFrame.fillna(0)); for features, fill or "
        "drop them."
    )


def canonical_csr(csr, name):
    """``csr`` with strictly increasing indices in each row, and no spare room.

    Decided by scanning the indices, not by scipy's cached flags, which
    survive in-place edits.  A matrix already canonical is returned as is;
    otherwise a copy is sorted, its duplicates summed and its spare entries
    dropped.  Indices are
    checked against the shape once more, since a conversion from another
    format (LIL) may have produced them.
    """
    if _check_compressed(csr, name, csr.shape[0], csr.shape[1]):
        return csr
    csr = csr.copy()
    # Reset the cache, or sum_duplicates trusts it and does nothing.
    csr.has_sorted_indices = False
    csr.has_canonical_format = False
    csr.sum_duplicates()
    return csr


def check_csr_arrays(indptr, indices, n_columns, canonical=False):
    """What is wrong with the raw arrays of a CSR matrix, as a phrase, or None.

    ``indptr`` (int64) must start at 0, never decrease and end at the number
    of ``indices`` (int32 or int64), each of which must lie in ``[0,
    n_columns)``; with ``canonical``, each row's indices must also be
    strictly increasing.  For arrays read from a file, before any kernel.
    """
    if indptr[0] != 0:
        return f"indptr starts at {indptr[0]}, not 0"
    outcome, position = _scan_compressed(*_scan_dtypes(indptr, indices), n_columns)
    if outcome == _DECREASING:
        return f"indptr decreases at position {position}"
    if outcome == _PAST_END:
        return f"indptr[{position}] points past the {indices.shape[0]} stored entries"
    if outcome == _OUT_OF_RANGE:
        return f"index {indices[position]} (entry {position}) is outside [0, {n_columns})"
    if indptr[-1] != indices.shape[0]:
        return f"indptr ends at {indptr[-1]}, but there are {indices.shape[0]} entries"
    if canonical and outcome == _NOT_CANONICAL:
        return "the indices of a row are not strictly increasing"
    return None
