"""CiteULike-a: the user libraries and the article tags.

``load_citeulike`` reads ``users.dat`` as a user x article matrix and
``load_citeulike_tags`` reads ``item-tag.dat`` and ``tags.dat`` as binary
item features whose rows are the matrix's columns. Everything specific to
CiteULike-a (file names, terms of use) is here; generic file parsing is in
``_parsing``.
"""

import os
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, validate_params

from ._parsing import _csr_from_pairs, _find_file, _read_count_prefixed_lines

# Terms of use, repeated in the DESCR of every loader of the dataset.
_CITEULIKE_TERMS = (
    "Collected from CiteULike; research use only, not shipped with "
    "sklearn-cml. Cite C. Wang and D. M. Blei, KDD 2011, and H. Wang, "
    "B. Chen and W.-J. Li, IJCAI 2013."
)


@validate_params({"path": [str, os.PathLike]}, prefer_skip_nested_validation=True)
def load_citeulike(path):
    """Load the CiteULike-a user libraries from a local folder.

    Reads ``users.dat``, where line ``u`` is user ``u``'s library written as
    ``N item_1 ... item_N`` with 0-based article ids. Nothing is downloaded.

    Parameters
    ----------
    path : str or path-like
        Folder holding ``users.dat``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        interactions : scipy.sparse.csr_matrix of shape (n_users, n_items)
            1.0 (float32) where the article is in the user's library; sorted
            indices. Row ``u`` is line ``u`` of the file; column ``i`` is
            article id ``i``. ``n_items`` is the largest article id plus one
            (articles in no library above that id get no column; in
            CiteULike-a every article is in some library).
        user_ids : ndarray of shape (n_users,), dtype int64
            Id of each row: its line in ``users.dat``, from 0.
        item_ids : ndarray of shape (n_items,), dtype int64
            Id of each column: the article id of the files, from 0.
        item_names : None
            The files read here hold no article titles.
        DESCR : str
            Where the data came from and its terms of use.

    Raises
    ------
    FileNotFoundError
        If the folder is missing or has no ``users.dat``.
    ValueError
        If a line does not start with its number of items, or repeats one.

    Examples
    --------
    >>> from sklearn_cml.datasets import load_citeulike
    >>> citeulike = load_citeulike("data/citeulike-a")  # doctest: +SKIP
    >>> citeulike.interactions.shape  # doctest: +SKIP
    (5551, 16980)
    """
    file = _find_file(path, ("users.dat",), "CiteULike")
    libraries = []
    for line_number, line in enumerate(file.read_bytes().strip().splitlines(), 1):
        fields = np.fromstring(line, dtype=np.int64, sep=" ")
        if fields.size == 0 or fields[0] != fields.size - 1:
            raise ValueError(
                f"{file}, line {line_number}: expected 'N item_1 ... item_N' "
                f"with N the number of items, got {line[:60]!r}."
            )
        libraries.append(fields[1:])

    library_sizes = [library.size for library in libraries]
    rows = np.repeat(np.arange(len(libraries)), library_sizes)
    cols = np.concatenate(libraries) if libraries else np.empty(0, np.int64)
    shape = (len(libraries), int(cols.max()) + 1 if cols.size else 0)
    interactions = _csr_from_pairs(rows, cols, np.ones(cols.size, np.float32), shape)
    descr = (
        f"CiteULike-a user libraries read from {file.name}: {shape[0]} users x "
        f"{shape[1]} articles, {interactions.nnz} user-article pairs.\n"
        + _CITEULIKE_TERMS
    )
    return Bunch(interactions=interactions, user_ids=np.arange(shape[0]),
                 item_ids=np.arange(shape[1]), item_names=None, DESCR=descr)


# --------------------------------------------------------------------------
# Item side information


@validate_params(
    {
        "path": [str, os.PathLike],
        "n_items": [Interval(Integral, 0, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def load_citeulike_tags(path, n_items=None):
    """Load the CiteULike-a article tags as a binary item feature matrix.

    Reads ``item-tag.dat``, where line ``i`` lists the tags of article ``i``
    as ``N tag_1 ... tag_N`` (0-based tag ids; ``N`` may be 0), and
    ``tags.dat``, where line ``t`` is the name of tag ``t``. Row ``i`` is
    article ``i``, the same as column ``i`` of :func:`load_citeulike`.
    Nothing is downloaded.

    Parameters
    ----------
    path : str or path-like
        Folder holding ``item-tag.dat`` and ``tags.dat``.
    n_items : int or None, default=None
        Number of rows. None means one per line of ``item-tag.dat``. To line
        the rows up with an interaction matrix ``X`` from
        :func:`load_citeulike`, pass ``X.shape[1]`` (which is above the
        largest article id in ``X``). Rows past the end of the file are
        all-zero; lines past ``n_items`` are dropped. The DESCR says which.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        features : scipy.sparse.csr_matrix of shape (n_items, n_tags)
            1.0 (float32) where the article has the tag; sorted indices.
            ``n_tags`` is the number of lines of ``tags.dat``.
        feature_names : ndarray of shape (n_tags,), dtype object
            Tag names (str), by tag id.
        DESCR : str
            The files read, the number of untagged articles, and the terms
            of use.

    Raises
    ------
    FileNotFoundError
        If the folder is missing or lacks ``item-tag.dat`` or ``tags.dat``.
    ValueError
        If a line of ``item-tag.dat`` does not start with its number of tags,
        holds anything but non-negative integers, repeats a tag, or names a
        tag id that ``tags.dat`` does not have.

    See Also
    --------
    load_citeulike : The user libraries whose columns the rows describe.

    Examples
    --------
    >>> from sklearn_cml.datasets import load_citeulike, load_citeulike_tags
    >>> X = load_citeulike("data/citeulike-a").interactions  # doctest: +SKIP
    >>> tags = load_citeulike_tags("data/citeulike-a", X.shape[1])  # doctest: +SKIP
    >>> tags.features.shape, tags.features.nnz  # doctest: +SKIP
    ((16980, 46391), 239253)
    >>> tags.feature_names[0]  # doctest: +SKIP
    'ucsc-browser'
    """
    item_tag_file = _find_file(path, ("item-tag.dat",), "CiteULike")
    tags_file = _find_file(path, ("tags.dat",), "CiteULike")

    raw_names = tags_file.read_bytes()
    try:
        names_text = raw_names.decode("utf-8")
    except UnicodeDecodeError:
        names_text = raw_names.decode("latin-1")
    # Line t is tag t: keep inner blank lines, drop the final newline only.
    names_text = names_text.replace("\r\n", "\n").removesuffix("\n")
    feature_names = np.array(names_text.split("\n") if names_text else [], dtype=object)
    n_tags = feature_names.size

    lengths, tag_ids = _read_count_prefixed_lines(item_tag_file, "tag")
    n_lines = lengths.size
    is_unknown = tag_ids >= n_tags
    if is_unknown.any():
        first = int(np.argmax(is_unknown))
        item = int(np.searchsorted(np.cumsum(lengths), first, side="right"))
        raise ValueError(
            f"{item_tag_file}, line {item + 1}: tag id {int(tag_ids[first])} is "
            f"out of range; {tags_file.name} names {n_tags} tags (ids 0 to "
            f"{n_tags - 1})."
        )
    if n_items is None:
        n_items = n_lines
    if n_items < n_lines:
        lengths = lengths[:n_items]
        tag_ids = tag_ids[: lengths.sum()]
    rows = np.repeat(np.arange(lengths.size), lengths)
    features = sp.csr_matrix(
        (np.ones(tag_ids.size, np.float32), (rows, tag_ids)), shape=(n_items, n_tags)
    )
    if features.nnz != tag_ids.size:  # duplicates were summed
        codes = rows * n_tags + tag_ids
        unique_codes, code_counts = np.unique(codes, return_counts=True)
        item, tag = divmod(int(unique_codes[np.argmax(code_counts > 1)]), n_tags)
        raise ValueError(
            f"{item_tag_file}, line {item + 1}: tag {tag} is listed more than once."
        )
    features.sort_indices()

    if n_items > n_lines:
        extent = (
            f"; n_items={n_items} is past the file's {n_lines} lines, so the "
            f"last {n_items - n_lines} rows are all-zero"
        )
    elif n_items < n_lines:
        extent = f"; lines past n_items={n_items} (of {n_lines}) were dropped"
    else:
        extent = ""
    n_untagged = int(np.count_nonzero(np.diff(features.indptr) == 0))
    descr = (
        f"CiteULike-a tags read from {item_tag_file.name} and {tags_file.name}: "
        f"{n_items} articles x {n_tags} tags, {features.nnz} article-tag pairs; "
        f"{n_untagged} articles have no tag{extent}.\n" + _CITEULIKE_TERMS
    )
    return Bunch(features=features, feature_names=feature_names, DESCR=descr)
