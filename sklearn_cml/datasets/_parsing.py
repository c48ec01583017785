"""File helpers shared by the dataset loaders (and the generator).

Finding a dataset's file in a user's folder (with the "never downloads"
message), splitting bytes into lines, reading whitespace- or '::'-separated
number tables, reading lines of integers (whitespace-separated, such as
count-prefixed lines ``N id_1 ... id_N``) and building a float32 CSR matrix
from (row, column) pairs. They know file formats, not datasets, so each
source module (``_movielens``, ``_citeulike``, ``_amazon``) and
``_synthetic`` import them from here instead of keeping copies.
"""

import gzip
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def _csr_from_pairs(rows, cols, data, shape):
    """Build a float32 CSR matrix with sorted indices, refusing duplicate pairs."""
    X = sp.csr_matrix((data, (rows, cols)), shape=shape, dtype=np.float32)
    # The COO -> CSR conversion sums duplicates, so fewer entries means some.
    if X.nnz != len(rows):
        raise ValueError(
            f"{len(rows) - X.nnz} duplicate (user, item) pairs in the input."
        )
    X.sort_indices()
    return X


def _find_file(folder, candidates, dataset):
    """Return the first of ``candidates`` present in ``folder``."""
    folder = Path(folder)
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    looked_for = ", ".join(candidates)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{dataset} folder {str(folder)!r} does not exist (or is not a "
            f"folder); expected a folder holding one of: {looked_for}. "
            "sklearn-cml never downloads data."
        )
    raise FileNotFoundError(
        f"None of {looked_for} found in the {dataset} folder {str(folder)!r}."
    )


def _read_number_table(file):
    """Parse a file of whitespace- or '::'-separated numbers into a 2-D array.

    Whole ratings are parsed as int64 (five times faster than float64, which
    is used only when the file holds a decimal point, e.g. ML-10M's half
    stars).
    """
    raw = file.read_bytes()
    if file.suffix == ".gz":
        raw = gzip.decompress(raw)
    # np.fromstring takes any run of whitespace, newlines included, as one
    # separator, so once ML-1M's '::' is a space the whole file is parsed by
    # one C call (np.loadtxt is about four times slower here).
    text = raw.replace(b"::", b" ").strip()
    n_lines = text.count(b"\n") + 1 if text else 0
    n_columns = len(text.partition(b"\n")[0].split())
    if n_columns < 3:
        raise ValueError(
            f"{file}: expected at least 3 fields per line (user, item, rating)."
        )
    dtype = np.float64 if b"." in text else np.int64
    try:
        values = np.fromstring(text, dtype=dtype, sep=" ")
    except ValueError as exc:
        raise ValueError(f"{file}: could not parse as numbers ({exc}).") from None
    if values.size != n_lines * n_columns:
        raise ValueError(
            f"{file}: expected {n_columns} fields on each of {n_lines} lines, "
            f"found {values.size} numbers in total."
        )
    return values.reshape(n_lines, n_columns)


def _file_lines(raw):
    """Split file bytes into lines: CRLF or LF, trailing blank lines dropped."""
    text = raw.replace(b"\r\n", b"\n").rstrip()
    return text.split(b"\n") if text else []


def _read_integer_lines(file, expected):
    """Split a file of whitespace-separated non-negative integers into lines.

    Vectorised over the bytes of the whole file: digits and whitespace are
    classified once, tokens are numbered by a cumulative sum, and a single
    ``np.fromstring`` call reads every number. Trailing blank lines are
    dropped; other blank lines are kept (with no token), for the caller to
    judge. ``expected`` describes a line in the error raised for any byte
    that is neither a digit nor whitespace.

    Returns
    -------
    tokens_per_line : ndarray of shape (n_lines,), dtype int64
        How many numbers each line holds.
    values : ndarray of shape (tokens_per_line.sum(),), dtype int64
        The numbers of all lines, concatenated.
    line_text : callable
        ``line_text(k)``: the first 60 bytes of line ``k`` (0-based), for
        error messages.
    """
    text = file.read_bytes().rstrip()
    if not text:
        return np.empty(0, np.int64), np.empty(0, np.int64), lambda k: b""
    byte = np.frombuffer(text, dtype=np.uint8)
    newlines = np.flatnonzero(byte == ord("\n"))
    line_starts = np.r_[0, newlines + 1]
    line_ends = np.r_[newlines, byte.size]

    def line_text(k):
        return text[line_starts[k] : line_ends[k]][:60]

    is_digit = (byte >= ord("0")) & (byte <= ord("9"))
    is_space = np.zeros(256, dtype=bool)
    is_space[list(b" \t\r\n")] = True
    is_other = ~is_digit & ~is_space[byte]
    if is_other.any():
        k = int(np.searchsorted(newlines, np.argmax(is_other)))
        raise ValueError(
            f"{file}, line {k + 1}: expected non-negative integers "
            f"{expected}, got {line_text(k)!r}."
        )
    # Only digits and whitespace are left: a token starts at each digit
    # that follows a non-digit.
    is_token_start = is_digit.copy()
    is_token_start[1:] &= ~is_digit[:-1]
    tokens_before = np.r_[0, np.cumsum(is_token_start)]
    tokens_per_line = tokens_before[line_ends] - tokens_before[line_starts]
    values = np.fromstring(text, dtype=np.int64, sep=" ")
    if values.size != tokens_before[-1]:  # cannot happen with digits only
        raise ValueError(f"{file}: could not parse as integers.")
    return tokens_per_line, values, line_text


def _read_count_prefixed_lines(file, what):
    """Parse a file whose line ``k`` is ``N id_1 ... id_N`` (0-based ids).

    The numbers are read by :func:`_read_integer_lines`. Trailing blank
    lines are ignored; any other blank line is malformed (line ``k`` is
    item ``k``).

    Returns
    -------
    lengths : ndarray of shape (n_lines,), dtype int64
        ``N`` of each line.
    ids : ndarray of shape (lengths.sum(),), dtype int64
        The ids of all lines, concatenated.
    """
    pattern = f"'N {what}_1 ... {what}_N'"
    tokens_per_line, values, line_text = _read_integer_lines(file, pattern)
    if tokens_per_line.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    first_token = np.r_[0, np.cumsum(tokens_per_line)[:-1]]
    heads = values[np.minimum(first_token, values.size - 1)]
    bad = (tokens_per_line == 0) | (heads != tokens_per_line - 1)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(
            f"{file}, line {k + 1}: expected {pattern} with N the number of "
            f"{what}s, got {line_text(k)!r}."
        )
    is_id = np.ones(values.size, dtype=bool)
    is_id[first_token] = False
    return tokens_per_line - 1, values[is_id]
