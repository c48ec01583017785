"""Original user and item ids: normalising them, and finding their positions.

Ids come from users' tables: numbers, strings, or any hashable values.
``as_ids`` gives them one numpy dtype without coercing one kind into
another (``[1, "a"]`` stays an object array, never the strings ``"1", "a"``);
``IdLookup`` maps ids to rows or columns, vectorised by sorting when the
ids can be ordered and through a dictionary when they cannot.
"""

import contextlib
import sys

import numpy as np

_NATURAL_DTYPES = (
    (str, str), ((int, np.integer), np.int64), ((float, np.floating), np.float64))


def as_ids(values, what):
    """``values`` as a 1-d array of ids with their natural dtype.

    Object arrays whose values are all strings become unicode arrays, all
    integers int64, all floats float64; mixed kinds stay object, and so do
    strings ending in NUL, which a unicode array would cut off (``"a\\x00"``
    would become ``"a"``).  Missing values (None, NaN, NaT, pandas' NA) are
    refused with their count, naming ``what``.
    """
    # A list goes through an object array: numpy would turn [1, "a"] into strings.
    ids = np.asarray(values, dtype=object if isinstance(values, (list, tuple)) else None)
    if ids.ndim == 0:
        ids = ids.reshape(1)
    if ids.ndim != 1:
        raise ValueError(f"{what} must be a 1-d sequence of ids, got shape {ids.shape}.")
    if ids.dtype.kind == "O" and ids.size:
        kinds = set(map(type, ids.tolist()))
        for bases, dtype in _NATURAL_DTYPES:
            if all(issubclass(kind, bases) and not issubclass(kind, (bool, np.bool_))
                   for kind in kinds):
                if dtype is str and any(v.endswith("\x00") for v in ids.tolist()):
                    break  # numpy's fixed-width strings drop trailing NULs
                with contextlib.suppress(OverflowError):  # ints past int64 stay objects
                    ids = ids.astype(dtype)
                break
    missing = missing_values(ids)
    if missing.any():
        position = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{what} has {int(missing.sum())} missing id(s) (None, NaN, NaT or NA), the "
            f"first at position {position}: every row needs an id. Drop those rows "
            "(DataFrame.dropna) or fill them with an id of their own (DataFrame.fillna)."
        )
    return ids


def missing_values(ids):
    """Which values of a 1-d array are missing (None, NaN, NaT, pandas' NA): a bool array."""
    kind = ids.dtype.kind
    if kind in "fc":
        return np.isnan(ids)
    if kind in "mM":
        return np.isnat(ids)
    if kind == "O":
        return np.fromiter(map(_is_missing, ids.tolist()), bool, ids.size)
    return np.zeros(ids.size, bool)


def _is_missing(value):
    """None, pandas' NA, or a value unequal to itself (NaN, NaT of any kind)."""
    if value is None:
        return True
    pandas = sys.modules.get("pandas")  # pandas' NA exists only once pandas is imported
    if pandas is not None and value is getattr(pandas, "NA", None):
        return True  # ``NA != NA`` is NA, whose truth value pandas refuses to give
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # a value that does not compare to a bool is not missing
        return False


def distinct_ids(ids):
    """``(distinct, inverse)``: the distinct ids, sorted when they can be
    ordered (else in order of first appearance), and each id's position in
    them."""
    try:
        distinct, inverse = np.unique(ids, return_inverse=True)
        return distinct, inverse.reshape(-1).astype(np.int64, copy=False)
    except TypeError:  # ids of kinds that cannot be compared, such as 1 and "a"
        positions = {}
        inverse = np.fromiter(
            (positions.setdefault(v, len(positions)) for v in ids.tolist()), np.int64, ids.size
        )
        distinct = np.empty(len(positions), dtype=object)
        distinct[:] = list(positions)
        return distinct, inverse


def append_ids(ids, new):
    """``ids`` followed by ``new``, without coercing one kind into another.

    Arrays of one kind (two unicode arrays, two int64 arrays) concatenate
    as they are; otherwise the result is an object array of the values as
    given, as ``as_ids`` keeps mixed ids (numpy would turn ``[1]`` and
    ``["a"]`` into the strings ``"1", "a"``).
    """
    if new.size == 0:
        return ids
    if ids.dtype.kind == new.dtype.kind and ids.dtype.kind != "O":
        return np.concatenate((ids, new))
    joined = np.empty(ids.size + new.size, dtype=object)
    joined[:] = ids.tolist() + new.tolist()
    return joined


class IdLookup:
    """Positions of ids in an array of distinct ids.

    Parameters
    ----------
    ids : ndarray of shape (n,)
        Distinct ids; position ``i`` is row or column ``i``.
    """

    def __init__(self, ids):
        self.ids = ids
        self._sorted = self._order = self._table = None
        try:
            self._order = np.argsort(ids, kind="stable")
            self._sorted = ids[self._order]
        except TypeError:  # ids of kinds that cannot be compared, such as 1 and "a"
            pass

    def _dictionary(self):
        """``{id: position}``, built once, for ids that cannot be sorted or
        queries that cannot be compared with them."""
        if self._table is None:
            self._table = {v: i for i, v in enumerate(self.ids.tolist())}
        return self._table

    def has_repeats(self):
        """Whether an id occurs twice."""
        if self._sorted is None:
            return len(self._dictionary()) < self.ids.size
        return bool(np.any(self._sorted[1:] == self._sorted[:-1]))

    def positions(self, query, what, fix):
        """Positions of ``query``'s ids (1-d int64); ValueError naming the
        unknown ones, ending with ``fix``."""
        query = as_ids(query, what)
        found = self.find(query)
        unknown = found < 0
        if unknown.any():
            examples = ", ".join(repr(v) for v in query[unknown][:5].tolist())
            raise ValueError(
                f"{what} has {int(unknown.sum())} id(s) not seen in fit: {examples}. "
                f"The ids are those of the table the model was fitted on. {fix}"
            )
        return found

    def find(self, query):
        """Positions of ``query``'s ids (an array from ``as_ids``), -1 for unknown ones."""
        if self._sorted is not None and query.size:
            try:
                at = np.minimum(np.searchsorted(self._sorted, query), self._sorted.size - 1)
                hit = self._sorted[at] == query
                if isinstance(hit, np.ndarray):
                    return np.where(hit, self._order[at], -1)
            except TypeError:  # e.g. None among object ids
                pass
        table = self._dictionary()
        return np.fromiter((table.get(v, -1) for v in query.tolist()), np.int64, query.size)

    def labels(self, positions):
        """The ids at ``positions`` (any shape); where a position is -1 (no
        item), ``None`` in an object array."""
        empty = positions < 0
        labels = self.ids[np.maximum(positions, 0)]
        if empty.any():
            labels = labels.astype(object)
            labels[empty] = None
        return labels
