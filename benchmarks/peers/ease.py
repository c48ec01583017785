"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

A closed form, one "epoch": with ``G = X.T @ X`` (item co-occurrence
counts of the training matrix) and ``P = (G + l2 * I)^-1``, the item-item
weights are ``B = -P / diag(P)`` (column ``j`` divided by ``P[j, j]``) with
``diag(B) = 0``, and a user's scores are ``X[user] @ B``.  There are no
embeddings: ``n_components``, ``n_epochs`` and ``random_state`` are unused.

Computation, all in float32 and in place: ``G`` is built dense from the
sparse ``X``, a block of rows at a time (``X.T[rows] @ X``, each block at
most ``_BLOCK_ELEMENTS`` entries), ``l2`` is added to its diagonal, and
LAPACK's Cholesky factorisation and inverse (``spotrf`` then ``spotri``,
through ``scipy.linalg.lapack``, on the Fortran-ordered view of the
symmetric matrix with ``overwrite`` set) turn it into ``P`` in the same
buffer; the triangle LAPACK leaves is mirrored and ``B`` made in that buffer
too.  Peak memory of ``train``: one ``n_items x n_items`` float32 matrix
(``4 * n_items**2`` bytes: 0.59 GB for 12,101 items, 1.35 GB for 18,357,
1.15 GB for CiteULike-a's 16,980) plus the small block temporaries, never
a second copy.  ``compare.py`` keeps the best setting's ``B`` while it
trains the next one, so two such matrices are alive during a grid.
Before allocating, ``train`` compares that need with the memory available
(``MemAvailable`` of ``/proc/meminfo``, capped by a cgroup limit if there is
one) and raises ``Skipped`` ("needs X GB, Y GB available") if it does not
fit; ``compare.py`` then reports EASE as skipped on that dataset.

Threads: the factorisation and inverse (BLAS-3 inside LAPACK) run on
``threads`` BLAS threads (``threadpoolctl``), but on one past 20,000 items:
scipy's OpenBLAS ``spotrf`` has crashed (segmentation fault) with several
threads at about 41,000 items on this project's machine (not reproduced
for this module).  The sparse products are single-threaded.
Fit time grows as ``n_items ** 3``.  On the 2-core benchmark machine,
shared (load average 2 to 4.7 with the fit itself), a fit on 2 threads
took 9 to 48 s for the 12,000-item Amazon sets, 31 to 105
s for Sports and Outdoors' 18,357 items and 48 to 93 s for CiteULike-a's
16,980, 3 to 10 s for MovieLens-1M's 3,706.  With another process on one
of the two cores, 2 OpenBLAS threads can be far slower than one (the
threads wait for each other): MovieLens-1M's factorisation and inverse
took 9.7 s on 2 threads against 0.6 s on 1 in the same minute; read the
"other processes" figure of the report with the times.

Grid: ``l2`` 50, 200, 500, 1000 (Steck used 200 to 1000 for ML-20M,
Netflix and MSD).  Pilot, validation Recall@50 on the benchmark split
(60/20/20 per user, every item but the training ones ranked), by ``l2``:

- MovieLens-1M (ratings >= 4): 1: 0.258, 10: 0.300, 50: 0.340,
  100: 0.358, 200: 0.375, 500: 0.389, 1000: 0.391, 2000: 0.383,
  5000: 0.356.
- CiteULike-a: 5: 0.318, 10: 0.330, 20: 0.340, 50: 0.347, 100: 0.348,
  200: 0.341, 500: 0.328, 1000: 0.317.
- Amazon Beauty: 10: 0.139, 50: 0.156, 100: 0.161, 200: 0.162,
  500: 0.162, 1000: 0.160.
- Amazon Toys and Games: 50: 0.141, 200: 0.144, 500: 0.144, 1000: 0.144.
- Amazon Sports and Outdoors: 50: 0.100, 200: 0.108, 500: 0.110,
  1000: 0.110, 2000: 0.110, 4000: 0.110.

The best ``l2`` runs from about 100 (CiteULike-a) to 1000 and more
(MovieLens-1M, Sports and Outdoors), so the grid spans 50 to 1000; on
every set its best is within 0.001 of the best value tried.
"""

import contextlib
import os
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from ._skip import Skipped

NAME = "EASE"
SCHEDULE = "none"
GRID = tuple({"l2": l2} for l2 in (50.0, 200.0, 500.0, 1000.0))

# Past this many items the factorisation runs on one BLAS thread (see above).
SINGLE_THREAD_ITEMS = 20_000
# Entries of one block of rows of the Gram matrix built from the sparse X.
_BLOCK_ELEMENTS = 1 << 22


def missing():
    return None


def version():
    return scipy.__version__


def warm_up(threads):
    """Nothing to compile."""


def peak_bytes(n_items):
    """Bytes ``train`` needs at its peak: the n_items x n_items float32
    matrix and, at most, three block temporaries of ``_BLOCK_ELEMENTS``
    float32 entries (the sparse block product and its dense copy)."""
    return 4 * n_items * n_items + 3 * 4 * min(_BLOCK_ELEMENTS, n_items * n_items)


def available_bytes():
    """Memory this process could still allocate: ``MemAvailable`` of
    ``/proc/meminfo`` (else free physical pages), capped by the cgroup's
    limit minus its use; None when nothing can be read."""
    candidates = []
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
    if not candidates:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
         "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # cgroup v1
    ):
        with contextlib.suppress(OSError, ValueError):
            limit = Path(limit_file).read_text().strip()
            if limit != "max":
                candidates.append(int(limit) - int(Path(usage_file).read_text()))
    return min(candidates) if candidates else None


def check_memory(n_items):
    """Raise ``Skipped`` when the peak of ``train`` exceeds the memory available."""
    needed, available = peak_bytes(n_items), available_bytes()
    if available is not None and needed > available:
        raise Skipped(f"needs {needed / 1e9:.1f} GB for its {n_items} x {n_items} "
                      f"float32 matrix, {available / 1e9:.1f} GB available")


def gram_matrix(X):
    """``X.T @ X`` as a dense C-ordered float32 array, a block of rows at a time."""
    X = sp.csr_matrix(X, dtype=np.float32)
    n_items = X.shape[1]
    items_by_users = X.T.tocsr()
    gram = np.zeros((n_items, n_items), dtype=np.float32)
    block = max(1, _BLOCK_ELEMENTS // max(n_items, 1))
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        (items_by_users[start:stop] @ X).toarray(out=gram[start:stop])
    return gram


def _mirror_lower_triangle(matrix):
    """Copy the lower triangle of a square C-ordered array onto its upper one,
    in place, a band of rows at a time."""
    n = matrix.shape[0]
    band = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, n, band):
        stop = min(start + band, n)
        matrix[start:stop, stop:] = matrix[stop:, start:stop].T
        square = matrix[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        square[upper] = square.T[upper]


def ease_weights(X, l2):
    """EASE's item-item weights ``B`` (float32, n_items x n_items, zero
    diagonal) for the training matrix ``X``, built in one buffer."""
    weights = gram_matrix(X)
    weights[np.diag_indices_from(weights)] += np.float32(l2)
    # The matrix is symmetric, so its transpose (a Fortran-ordered view of the
    # same buffer) is the same matrix; LAPACK works on it without a copy.  Its
    # upper triangle is the C-ordered array's lower one.
    factor, info = lapack.spotrf(weights.T, lower=0, clean=0, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"spotrf: G + {l2} I is not positive definite "
                                    f"(info {info}); use a larger l2")
    inverse, info = lapack.spotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"spotri failed (info {info})")
    if not np.shares_memory(inverse, weights):  # pragma: no cover - LAPACK copied
        weights[...] = inverse.T
    del factor, inverse
    _mirror_lower_triangle(weights)
    diagonal = weights.diagonal().copy()
    weights /= -diagonal  # column j divided by -P[j, j]
    np.fill_diagonal(weights, 0.0)
    return weights


def train(X, setting, *, n_components, threads, n_epochs, random_state, after_epoch):
    """Solve the closed form for ``setting["l2"]``; one "epoch".

    Raises ``Skipped`` when the n_items x n_items matrix does not fit in the
    memory available.
    """
    n_items = X.shape[1]
    check_memory(n_items)
    blas_threads = threads if n_items <= SINGLE_THREAD_ITEMS else 1
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        weights = ease_weights(X, setting["l2"])
    history = sp.csr_matrix(X, dtype=np.float32)

    def scores(user_indices):
        return np.asarray(history[user_indices] @ weights)

    after_epoch(1, lambda: scores)
