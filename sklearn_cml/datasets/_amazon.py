"""Amazon 5-core (S3-Rec's files): the user histories and the item attributes.

``load_amazon`` reads ``<Name>.txt`` (for example ``Beauty.txt``) as a
user x item matrix and ``load_amazon_attributes`` reads
``<Name>_item2attributes.json`` as binary item features whose rows are the
matrix's columns. The files are those of the S3-Rec release (Zhou et al.,
CIKM 2020) of three Amazon 5-core review sets (Beauty, Sports and Outdoors,
Toys and Games); the same format holds for any ``<Name>`` of that release.
Everything specific to these files (finding them in a folder, 1-based ids,
terms of use) is here; generic file parsing is in ``_parsing``.
"""

import json
import os
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, validate_params

from ._parsing import _csr_from_pairs, _read_integer_lines

# Terms of use, repeated in the DESCR of every loader of the dataset.
_AMAZON_TERMS = (
    "Amazon reviews (J. McAuley, UCSD, 2014 release), 5-core, in the files "
    "of S3-Rec (RUCAIBox/CIKM2020-S3Rec); research use only, not shipped "
    "with sklearn-cml. Cite R. He and J. McAuley, WWW 2016; J. McAuley et "
    "al., SIGIR 2015; and K. Zhou et al. (S3-Rec), CIKM 2020."
)
_ATTRIBUTES_SUFFIX = "_item2attributes.json"
# Ids become int32 CSR indices: larger ones cannot be a row or a column.
_MAX_ID = np.iinfo(np.int32).max


def _amazon_folder(path, looked_for):
    """``path`` as a Path; FileNotFoundError when it is not a folder."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Amazon folder {str(folder)!r} does not exist (or is not a folder); "
            f"expected a folder holding {looked_for}. sklearn-cml never "
            "downloads data."
        )
    return folder


def _interactions_file(path):
    """The folder's ``<Name>.txt``.

    S3-Rec's folder may also hold ``<Name>_sample.txt`` (sampled negatives),
    which is not a candidate. When several ``.txt`` files remain, the one
    with a ``<Name>_item2attributes.json`` beside it is taken.
    """
    looked_for = "<Name>.txt (for example Beauty.txt)"
    folder = _amazon_folder(path, looked_for)
    candidates = sorted(
        file for file in folder.glob("*.txt")
        if file.is_file() and not file.name.endswith("_sample.txt")
    )
    if len(candidates) > 1:
        paired = [
            file for file in candidates
            if (folder / f"{file.stem}{_ATTRIBUTES_SUFFIX}").is_file()
        ]
        if len(paired) == 1:
            candidates = paired
    return _the_one(candidates, folder, looked_for, ".txt files", (
        f"keep one <Name>.txt per folder, or the one with a <Name>{_ATTRIBUTES_SUFFIX} "
        "beside it"))


def _attributes_file(path):
    """The folder's ``<Name>_item2attributes.json``."""
    looked_for = f"<Name>{_ATTRIBUTES_SUFFIX} (for example Beauty{_ATTRIBUTES_SUFFIX})"
    folder = _amazon_folder(path, looked_for)
    candidates = sorted(
        file for file in folder.glob(f"*{_ATTRIBUTES_SUFFIX}") if file.is_file()
    )
    if len(candidates) > 1:
        # The one that goes with the folder's <Name>.txt, if that is clear.
        stems = {file.name.removesuffix(".txt") for file in folder.glob("*.txt")}
        paired = [
            file for file in candidates
            if file.name.removesuffix(_ATTRIBUTES_SUFFIX) in stems
        ]
        if len(paired) == 1:
            candidates = paired
    return _the_one(candidates, folder, looked_for, "attribute files",
                    f"keep one <Name>{_ATTRIBUTES_SUFFIX} per folder")


def _the_one(candidates, folder, looked_for, kind, fix):
    """The single file of ``candidates``; else an error naming what was
    looked for (none) or the files found and ``fix`` (several)."""
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise FileNotFoundError(f"No {looked_for} found in the Amazon folder {str(folder)!r}.")
    names = ", ".join(file.name for file in candidates)
    raise ValueError(f"The Amazon folder {str(folder)!r} holds several {kind} ({names}); "
                     f"{fix}.")


def _dataset_name(file, suffix):
    """``Sports_and_Outdoors.txt`` -> ``'Sports and Outdoors'``."""
    return file.name.removesuffix(suffix).replace("_", " ")


@validate_params({"path": [str, os.PathLike]}, prefer_skip_nested_validation=True)
def load_amazon(path):
    """Load an Amazon 5-core review set (S3-Rec's files) from a local folder.

    Reads the folder's ``<Name>.txt`` (for example ``Beauty.txt``), where
    each line is one user's reviews written as ``user_id item_id item_id
    ...``, oldest first, with 1-based ids: user ``u`` is row ``u - 1`` and
    item ``i`` is column ``i - 1``. Every review is a positive, whatever its
    stars (the files hold none). Nothing is downloaded.

    Parameters
    ----------
    path : str or path-like
        Folder holding one ``<Name>.txt`` (``<Name>_sample.txt`` files are
        not candidates; if several ``.txt`` files remain, the one with a
        ``<Name>_item2attributes.json`` beside it is read).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        interactions : scipy.sparse.csr_matrix of shape (n_users, n_items)
            1.0 (float32) where the user reviewed the item, once per
            (user, item) pair however often the line repeats it; sorted
            indices. ``n_users`` is the number of lines; ``n_items`` is the
            largest item id (ids no line uses get an all-zero column; in
            the S3-Rec files every id is used). The time order of a line is
            not kept.
        user_ids : ndarray of shape (n_users,), dtype int64
            Id of each row in the file: ``1 .. n_users``.
        item_ids : ndarray of shape (n_items,), dtype int64
            Id of each column in the file: ``1 .. n_items``.
        item_names : None
            The files hold no product names (nor the Amazon ids).
        DESCR : str
            The file read, the counts (repeated pairs included) and the
            terms of use.

    Raises
    ------
    FileNotFoundError
        If the folder is missing or holds no ``<Name>.txt``.
    ValueError
        If the folder holds several candidate files, the file is empty, or a
        line is blank, holds anything but non-negative integers, or has a
        user id that is not in ``1 .. n_lines`` or is on an earlier line, or
        an item id that is 0 or above 2**31 - 1. The message names the file
        and the line.

    See Also
    --------
    load_amazon_attributes : The attributes of the items, one row per column.

    Examples
    --------
    >>> from sklearn_cml.datasets import load_amazon
    >>> beauty = load_amazon("data/amazon-beauty")  # doctest: +SKIP
    >>> beauty.interactions.shape, beauty.interactions.nnz  # doctest: +SKIP
    ((22363, 12101), 198502)
    """
    file = _interactions_file(path)
    line_format = "'user_id item_id item_id ...'"
    tokens_per_line, values, line_text = _read_integer_lines(file, line_format)
    n_users = tokens_per_line.size
    if n_users == 0:
        raise ValueError(
            f"{file} is empty: expected one line {line_format} per user."
        )
    if (tokens_per_line == 0).any():
        k = int(np.argmax(tokens_per_line == 0))
        raise ValueError(
            f"{file}, line {k + 1} is blank: expected {line_format}, one line "
            "per user."
        )

    first_token = np.r_[0, np.cumsum(tokens_per_line)[:-1]]
    user_ids = values[first_token]
    out_of_range = (user_ids < 1) | (user_ids > n_users)
    if out_of_range.any():
        k = int(np.argmax(out_of_range))
        raise ValueError(
            f"{file}, line {k + 1}: user id {int(user_ids[k])} is out of range; "
            f"the file has {n_users} lines, one per user, so the ids run from "
            f"1 to {n_users}."
        )
    first_line_of_user = np.full(n_users + 1, -1, np.int64)
    # Reversed, so that each user keeps the first of its lines.
    first_line_of_user[user_ids[::-1]] = np.arange(n_users)[::-1]
    repeated = first_line_of_user[user_ids] != np.arange(n_users)
    if repeated.any():
        k = int(np.argmax(repeated))
        raise ValueError(
            f"{file}, line {k + 1}: user id {int(user_ids[k])} is on line "
            f"{int(first_line_of_user[user_ids[k]]) + 1} already; expected one "
            "line per user."
        )

    is_item = np.ones(values.size, dtype=bool)
    is_item[first_token] = False
    items = values[is_item]
    items_per_line = tokens_per_line - 1
    bad_item = (items < 1) | (items > _MAX_ID)
    if bad_item.any():
        position = int(np.argmax(bad_item))
        k = int(np.searchsorted(np.cumsum(items_per_line), position, side="right"))
        raise ValueError(
            f"{file}, line {k + 1}: item id {int(items[position])} is out of "
            f"range; item ids run from 1 to {_MAX_ID}. Got {line_text(k)!r}."
        )

    n_items = int(items.max()) if items.size else 0
    rows = np.repeat(user_ids - 1, items_per_line)
    cols = items - 1
    unique_pairs = np.unique(rows * n_items + cols)
    n_repeats = items.size - unique_pairs.size
    rows, cols = np.divmod(unique_pairs, max(n_items, 1))
    shape = (n_users, n_items)
    interactions = _csr_from_pairs(rows, cols, np.ones(rows.size, np.float32), shape)

    n_unused = n_items - int(np.count_nonzero(interactions.getnnz(axis=0)))
    notes = ""
    if n_repeats:
        notes += f"; {n_repeats} repeated (user, item) pairs were counted once"
    if n_unused:
        notes += f"; {n_unused} item ids are on no line (all-zero columns)"
    descr = (
        f"Amazon {_dataset_name(file, '.txt')} 5-core reviews read from "
        f"{file.name}: {n_users} users x {n_items} items, {interactions.nnz} "
        f"user-item pairs{notes}.\n" + _AMAZON_TERMS
    )
    return Bunch(
        interactions=interactions, user_ids=np.arange(1, n_users + 1),
        item_ids=np.arange(1, n_items + 1), item_names=None, DESCR=descr,
    )


# --------------------------------------------------------------------------
# Item side information


class _JSONObject(list):
    """A JSON object's (key, value) pairs in file order, duplicates kept."""


def _read_item_attributes(file):
    """``(item_ids, attribute_lists)`` of the JSON file, checked."""
    try:
        content = json.loads(file.read_bytes(), object_pairs_hook=_JSONObject)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{file}, line {error.lineno}, column {error.colno}: not valid JSON "
            f"({error.msg})."
        ) from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{file}: not UTF-8 text ({error.reason}).") from None
    if not isinstance(content, _JSONObject):
        raise ValueError(
            f"{file}: expected one JSON object mapping item ids to lists of "
            f"attribute ids, got a JSON {type(content).__name__}."
        )
    item_ids, attribute_lists, seen = [], [], set()
    for key, attributes in content:
        if not (key.isascii() and key.isdigit()) or not 1 <= int(key) <= _MAX_ID:
            raise ValueError(
                f"{file}: item id {key[:20]!r} is out of range; expected an "
                f"integer from 1 to {_MAX_ID}, written as a JSON string key."
            )
        item = int(key)
        if item in seen:
            raise ValueError(f"{file}: item {item} is listed more than once.")
        seen.add(item)
        if not isinstance(attributes, list) or isinstance(attributes, _JSONObject) or any(
            type(attribute) is not int for attribute in attributes
        ):
            raise ValueError(
                f"{file}: item {item}: expected a list of integer attribute "
                f"ids, got {json.dumps(attributes)[:60]}."
            )
        bad = [attribute for attribute in attributes if not 1 <= attribute <= _MAX_ID]
        if bad:
            raise ValueError(
                f"{file}: item {item}: attribute id {bad[0]} is out of range; "
                f"attribute ids run from 1 to {_MAX_ID}."
            )
        item_ids.append(item)
        attribute_lists.append(attributes)
    return item_ids, attribute_lists


@validate_params(
    {
        "path": [str, os.PathLike],
        "n_items": [Interval(Integral, 0, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def load_amazon_attributes(path, n_items=None):
    """Load the attributes of Amazon 5-core items as a binary feature matrix.

    Reads the folder's ``<Name>_item2attributes.json``: one JSON object
    mapping each item id (a string, 1-based) to a list of attribute ids
    (1-based; brand and categories, without names). Row ``i`` is item
    ``i + 1``, the same as column ``i`` of :func:`load_amazon`; column ``a``
    is attribute ``a + 1``. An attribute listed twice for an item counts
    once. Nothing is downloaded.

    Parameters
    ----------
    path : str or path-like
        Folder holding one ``<Name>_item2attributes.json`` (if there are
        several, the one whose ``<Name>.txt`` is beside it).
    n_items : int or None, default=None
        Number of rows. None means the largest item id of the file. To line
        the rows up with an interaction matrix ``X`` from
        :func:`load_amazon`, pass ``X.shape[1]``. Rows of items the file
        does not list are all-zero; items above ``n_items`` are dropped. The
        DESCR says which.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        features : scipy.sparse.csr_matrix of shape (n_items, n_attributes)
            1.0 (float32) where the item has the attribute; sorted indices.
            ``n_attributes`` is the largest attribute id of the file
            (whatever ``n_items``).
        feature_ids : ndarray of shape (n_attributes,), dtype int64
            Id of each column in the file: ``1 .. n_attributes``.
        feature_names : None
            The file holds no attribute names (S3-Rec does not ship them).
        DESCR : str
            The file read, the counts (repeats within an item, items without
            attributes, rows padded or dropped) and the terms of use.

    Raises
    ------
    FileNotFoundError
        If the folder is missing or holds no ``<Name>_item2attributes.json``.
    ValueError
        If the file is not valid JSON (the message gives the line and
        column), is not one object of lists of integers, lists an item
        twice, or has an item id or attribute id that is not in
        ``1 .. 2**31 - 1``. The message names the file and the item.

    See Also
    --------
    load_amazon : The reviews whose columns the rows describe.

    Examples
    --------
    >>> from sklearn_cml.datasets import load_amazon, load_amazon_attributes
    >>> X = load_amazon("data/amazon-beauty").interactions  # doctest: +SKIP
    >>> attributes = load_amazon_attributes("data/amazon-beauty", X.shape[1])  # doctest: +SKIP
    >>> attributes.features.shape, attributes.features.nnz  # doctest: +SKIP
    ((12101, 637), 45032)
    """
    file = _attributes_file(path)
    item_ids, attribute_lists = _read_item_attributes(file)
    lengths = np.array([len(attributes) for attributes in attribute_lists], np.int64)
    rows = np.repeat(np.array(item_ids, np.int64) - 1, lengths)
    cols = np.fromiter(
        (attribute for attributes in attribute_lists for attribute in attributes),
        np.int64, count=int(lengths.sum()),
    ) - 1
    n_attributes = int(cols.max()) + 1 if cols.size else 0
    largest_item = max(item_ids, default=0)
    if n_items is None:
        n_items = largest_item
    n_dropped = int(np.count_nonzero(np.array(item_ids, np.int64) > n_items))
    keep = rows < n_items
    unique_pairs = np.unique(rows[keep] * n_attributes + cols[keep])
    n_repeats = int(np.count_nonzero(keep)) - unique_pairs.size
    rows, cols = np.divmod(unique_pairs, max(n_attributes, 1))
    features = _csr_from_pairs(
        rows, cols, np.ones(rows.size, np.float32), (n_items, n_attributes)
    )

    notes = ""
    if n_repeats:
        notes += f"; {n_repeats} repeated attribute ids within an item counted once"
    if n_dropped:
        notes += (
            f"; {n_dropped} items above n_items={n_items} (the file goes up to "
            f"item {largest_item}) were dropped"
        )
    n_without = int(np.count_nonzero(np.diff(features.indptr) == 0))
    descr = (
        f"Amazon {_dataset_name(file, _ATTRIBUTES_SUFFIX)} item attributes read "
        f"from {file.name}: {n_items} items x {n_attributes} attributes, "
        f"{features.nnz} item-attribute pairs{notes}; {n_without} items have no "
        "attribute (all-zero rows). The file holds no attribute names.\n"
        + _AMAZON_TERMS
    )
    return Bunch(
        features=features, feature_ids=np.arange(1, n_attributes + 1),
        feature_names=None, DESCR=descr,
    )
