"""From a long table of (user, item, strength) rows to an interaction matrix.

Users arrive with tables, not matrices: one row per interaction, with ids
of any kind.  ``InteractionEncoder`` turns such a table into the users x
items matrix that :class:`~sklearn_cml.CMLRecommender` learns from, and
keeps both id mappings.  Its output, an ``InteractionMatrix``, carries the
original ids of its rows and columns, so that a ``CMLRecommender`` fitted
through it, in a :class:`~sklearn.pipeline.Pipeline` or not, takes and
returns original ids.
"""

from collections.abc import Mapping
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from ._docs import DocLinkMixin
from ._ids import IdLookup, append_ids, as_ids, distinct_ids, missing_values

__all__ = ["InteractionEncoder", "InteractionMatrix"]


class InteractionMatrix(sp.csr_matrix):
    """A CSR interaction matrix that knows the original ids of its rows and columns.

    ``InteractionEncoder.transform`` returns it; it is a
    ``scipy.sparse.csr_matrix`` in every other respect.  Matrices derived
    from it (slices, sums, copies) are plain matrices as far as ids go: their
    ``user_ids`` and ``item_ids`` are None.

    Parameters
    ----------
    arg1, shape, dtype, copy
        As for :class:`scipy.sparse.csr_matrix`.
    user_ids : ndarray of shape (n_rows,), default=None
        Original id of the user of each row.
    item_ids : ndarray of shape (n_columns,), default=None
        Original id of the item of each column.

    Attributes
    ----------
    user_ids : ndarray of shape (n_rows,) or None
        Original id of the user of each row.
    item_ids : ndarray of shape (n_columns,) or None
        Original id of the item of each column.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cml.preprocessing import InteractionMatrix
    >>> X = InteractionMatrix(np.eye(2), user_ids=np.array(["ann", "bob"]),
    ...                       item_ids=np.array([10, 20]))
    >>> X.user_ids.tolist(), X.item_ids.tolist(), X.nnz
    (['ann', 'bob'], [10, 20], 2)
    >>> X[:1].user_ids is None  # a slice is a plain matrix as far as ids go
    True
    """

    def __init__(self, arg1, shape=None, dtype=None, copy=False, *, user_ids=None,
                 item_ids=None):
        super().__init__(arg1, shape=shape, dtype=dtype, copy=copy)
        for name, ids, size in (("user_ids", user_ids, self.shape[0]),
                                ("item_ids", item_ids, self.shape[1])):
            if ids is not None and ids.shape != (size,):
                raise ValueError(f"{name} must have one id per {name[:4]}: {size}, got "
                                 f"shape {ids.shape}.")
        self.user_ids = user_ids
        self.item_ids = item_ids


class InteractionEncoder(DocLinkMixin, TransformerMixin, BaseEstimator):
    """Encode a long table of (user, item[, strength]) rows as an interaction matrix.

    ``fit`` learns the distinct user and item ids; ``transform`` builds a
    users x items :class:`InteractionMatrix` of the table's rows, one row
    per distinct user of the table and one column per item seen in ``fit``.
    Repeated (user, item) rows add up.  Chained with
    :class:`~sklearn_cml.CMLRecommender` in a Pipeline, the recommender
    learns the ids too: its methods then take user and item ids and return
    item ids.

    Parameters
    ----------
    user_col : int or str, default=0
        The column of user ids: a position (any table), or a name (a
        pandas DataFrame, or a dict of arrays).  Ids are kept as given
        (``"a"`` and ``"a\\x00"`` are two ids); a missing id (None, NaN,
        NaT, pandas' NA) is refused: drop or fill those rows first.
    item_col : int or str, default=1
        The column of item ids, likewise.
    strength_col : int, str or None, default=None
        The column of interaction strengths (ratings, play counts): finite
        numbers within float32's range, also once the rows of a (user,
        item) pair are added up: the matrix's values.  None gives every row
        strength 1, so a value counts the rows of a (user, item) pair.
    handle_unknown : {"error", "ignore"}, default="error"
        What ``transform`` does with an item id not seen in ``fit``:
        raise, or leave the row out (an item without a column cannot be
        recommended or used to place a user).  Users need no such option:
        the rows of ``transform`` are the users of the table given to it,
        known or new.  Cross-validation by user groups sees new items in its
        test folds, so it needs ``"ignore"``.

    Attributes
    ----------
    user_ids_ : ndarray of shape (n_users,)
        Distinct user ids seen in ``fit``, sorted when they can be ordered
        (else in order of first appearance): the rows of ``fit_transform``;
        then those that ``partial_fit`` added, ordered likewise among
        themselves.
    item_ids_ : ndarray of shape (n_items,)
        Distinct item ids seen in ``fit`` (then ``partial_fit``), ordered
        likewise: the columns of every matrix ``transform`` returns.  ``item_ids_[j]`` maps column
        ``j`` back to its id.

    See Also
    --------
    sklearn_cml.CMLRecommender : takes the encoded matrix, and its ids.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_cml import CMLRecommender
    >>> from sklearn_cml.preprocessing import InteractionEncoder
    >>> ratings = pd.DataFrame({
    ...     "user": ["ann", "ann", "bob", "bob", "cid", "cid", "dee"],
    ...     "movie": ["Heat", "Alien", "Heat", "Brazil", "Alien", "Brazil", "Heat"],
    ...     "stars": [5, 4, 3, 5, 4, 2, 5]})
    >>> encoder = InteractionEncoder("user", "movie", strength_col="stars")
    >>> X = encoder.fit_transform(ratings)
    >>> X.shape, X.user_ids.tolist(), X.item_ids.tolist()
    ((4, 3), ['ann', 'bob', 'cid', 'dee'], ['Alien', 'Brazil', 'Heat'])
    >>> X.toarray()[0]
    array([4., 0., 5.], dtype=float32)
    >>> model = make_pipeline(InteractionEncoder("user", "movie"),
    ...                       CMLRecommender(n_components=4, n_epochs=2, random_state=0))
    >>> model = model.fit(ratings)
    >>> sorted(model[-1].recommend(["dee"], n_items=2)[0].tolist())  # ids in, ids out
    ['Alien', 'Brazil']
    """

    _parameter_constraints = {
        "user_col": [Integral, str],
        "item_col": [Integral, str],
        "strength_col": [Integral, str, None],
        "handle_unknown": [StrOptions({"error", "ignore"})],
    }

    def __init__(self, user_col=0, item_col=1, *, strength_col=None, handle_unknown="error"):
        self.user_col = user_col
        self.item_col = item_col
        self.strength_col = strength_col
        self.handle_unknown = handle_unknown

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the distinct user and item ids of a table.

        Parameters
        ----------
        X : pandas DataFrame, dict of arrays or array-like of shape (n_rows, n_columns)
            The table: one row per interaction.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : InteractionEncoder
        """
        user_values, item_values, _ = self._columns(X)
        self._keep(distinct_ids(user_values)[0], distinct_ids(item_values)[0])
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Learn the ids of a table and return its matrix (``fit`` then ``transform``).

        Parameters
        ----------
        X : pandas DataFrame, dict of arrays or array-like of shape (n_rows, n_columns)
            The table: one row per interaction.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        X_encoded : InteractionMatrix of shape (n_users, n_items), float32
        """
        user_values, item_values, strengths = self._columns(X)
        user_ids, users = distinct_ids(user_values)
        item_ids, items = distinct_ids(item_values)
        matrix = self._matrix(user_ids, item_ids, users, items, strengths)
        self._keep(user_ids, item_ids)  # only once nothing can fail
        return matrix

    def partial_fit(self, X, y=None):
        """Learn the ids of a table that are new to the encoder.

        New user and item ids are appended to ``user_ids_`` and
        ``item_ids_`` (sorted among themselves when they can be ordered,
        else in order of first appearance, as ``fit`` orders them); the ids
        already known keep their rows and columns.  So a model fitted on
        this encoder's matrices can be grown with the matrices it makes
        now (``CMLRecommender.partial_fit``).  On an unfitted encoder it is
        ``fit``.

        Parameters
        ----------
        X : pandas DataFrame, dict of arrays or array-like of shape (n_rows, n_columns)
            The table: one row per interaction.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : InteractionEncoder

        Examples
        --------
        >>> from sklearn_cml.preprocessing import InteractionEncoder
        >>> encoder = InteractionEncoder().fit([("bob", "x"), ("ann", "y")])
        >>> encoder = encoder.partial_fit([("cid", "z"), ("ann", "a"), ("abe", "x")])
        >>> encoder.user_ids_.tolist(), encoder.item_ids_.tolist()
        (['ann', 'bob', 'abe', 'cid'], ['x', 'y', 'a', 'z'])
        """
        if not hasattr(self, "user_ids_"):
            return self.fit(X, y)
        self._validate_params()
        user_values, item_values, _ = self._columns(X)
        user_ids = self._appended(self.user_ids_, user_values)
        item_ids = self._appended(self.item_ids_, item_values)
        self._keep(user_ids, item_ids)
        return self

    @staticmethod
    def _appended(known, values):
        """``known`` ids followed by the distinct ``values`` not among them."""
        distinct = distinct_ids(values)[0]
        return append_ids(known, distinct[IdLookup(known).find(distinct) < 0])

    def _keep(self, user_ids, item_ids):
        self.user_ids_, self.item_ids_ = user_ids, item_ids
        self._items = IdLookup(item_ids)

    def transform(self, X):
        """Build the users x items matrix of a table.

        Parameters
        ----------
        X : pandas DataFrame, dict of arrays or array-like of shape (n_rows, n_columns)
            The table: one row per interaction, with the columns of ``fit``.

        Returns
        -------
        X_encoded : InteractionMatrix of shape (n_table_users, n_items), float32
            One row per distinct user of ``X`` (sorted when the ids can be
            ordered, as ``fit`` orders them), one column per item of
            ``item_ids_``.
        """
        check_is_fitted(self)
        user_values, item_values, strengths = self._columns(X)
        user_ids, users = distinct_ids(user_values)
        items = self._items.find(item_values)
        unknown = items < 0
        if unknown.any():
            if self.handle_unknown == "error":
                examples = ", ".join(repr(v) for v in item_values[unknown][:5].tolist())
                raise ValueError(
                    f"X has {int(unknown.sum())} row(s) with item ids not seen in fit: "
                    f"{examples}. Set handle_unknown='ignore' to leave those rows out, or "
                    "fit on a table that has these items."
                )
            known = ~unknown
            users, items = users[known], items[known]
            strengths = None if strengths is None else strengths[known]
        return self._matrix(user_ids, self.item_ids_, users, items, strengths)

    def _matrix(self, user_ids, item_ids, users, items, strengths):
        values = np.ones(users.size) if strengths is None else strengths
        shape = (user_ids.size, item_ids.size)
        # Summed in float64, then checked: repeated rows can add up past float32.
        csr = sp.csr_matrix((values, (users, items)), shape=shape, dtype=np.float64)
        csr.sum_duplicates()
        too_large = ~(np.abs(csr.data) <= np.finfo(np.float32).max)
        if too_large.any():
            raise ValueError(
                f"{int(too_large.sum())} (user, item) pair(s) have strengths that add up "
                "beyond float32's range (about 3.4e38). Rescale the strengths."
            )
        csr = csr.astype(np.float32)
        return InteractionMatrix((csr.data, csr.indices, csr.indptr), shape=shape,
                                 user_ids=user_ids, item_ids=item_ids)

    def _columns(self, X):
        """User ids, item ids and strengths (float64 or None) of a table."""
        users = as_ids(_column(X, self.user_col, "user_col"),
                       f"The user column (user_col={self.user_col!r})")
        items = as_ids(_column(X, self.item_col, "item_col"),
                       f"The item column (item_col={self.item_col!r})")
        if users.size == 0:
            raise ValueError("X has no rows: the table needs at least one interaction.")
        if items.shape != users.shape:
            raise ValueError(
                f"X has {users.size} user ids but {items.size} item ids: give the columns "
                "of a table, one user id and one item id per row."
            )
        if self.strength_col is None:
            return users, items, None
        raw = np.asarray(_column(X, self.strength_col, "strength_col"))
        column = f"The strength column (strength_col={self.strength_col!r})"
        if raw.shape != users.shape:
            raise ValueError(
                f"{column} has shape {raw.shape}, but the table has {users.size} rows: "
                "give one strength per row (one column, under a name of its own)."
            )
        missing = missing_values(raw)
        if missing.any():
            raise ValueError(
                f"{column} has {int(missing.sum())} missing value(s) (None, NaN, NaT or NA), "
                f"the first at row {int(np.flatnonzero(missing)[0])}: strengths must be "
                "numbers. Drop those rows or fill them (DataFrame.dropna, DataFrame.fillna)."
            )
        try:
            strengths = raw.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{column} holds values that are not numbers (dtype {raw.dtype}). "
                "Strengths are numbers (ratings, counts); set strength_col=None to count rows."
            ) from None
        # Beyond float32's range (about 3.4e38) a strength would become infinity.
        out_of_range = ~(np.abs(strengths) <= np.finfo(np.float32).max)
        if out_of_range.any():
            position = int(np.flatnonzero(out_of_range)[0])
            raise ValueError(
                f"{column} has {int(out_of_range.sum())} value(s) that are not finite or "
                f"beyond float32's range, the first {strengths[position]} at row {position}. "
                "Strengths must be finite numbers: drop those rows, or rescale them."
            )
        return users, items, strengths

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.dict = True
        return tags


def _column(X, key, parameter):
    """Column ``key`` of a DataFrame, a dict of arrays or a 2-d array-like."""
    if isinstance(X, Mapping) or hasattr(X, "columns"):
        names = list(X.keys()) if isinstance(X, Mapping) else list(X.columns)
        if isinstance(key, str):
            if key not in names:
                raise ValueError(
                    f"{parameter}={key!r}, but X has no such column; its columns are "
                    f"{names}. Set {parameter} to one of them, or to a position."
                )
            return X[key]
        if isinstance(X, Mapping):
            raise ValueError(f"{parameter}={key!r}: a dict of arrays takes column names.")
        table = X.iloc
        n_columns = len(names)
    else:
        table = np.asarray(X, dtype=object if isinstance(X, (list, tuple)) else None)
        if table.ndim != 2:
            raise ValueError(
                f"X must be a table of one row per interaction (a DataFrame, a dict of "
                f"arrays or a 2-d array), got an array of shape {table.shape}."
            )
        if isinstance(key, str):
            raise ValueError(
                f"{parameter}={key!r} names a column, but X has no column names: give its "
                "position instead, or pass a pandas DataFrame."
            )
        n_columns = table.shape[1]
    if not -n_columns <= key < n_columns:
        raise ValueError(
            f"{parameter}={key}, but X has {n_columns} columns. Give the position of the "
            "column, from 0."
        )
    return table[:, key]
