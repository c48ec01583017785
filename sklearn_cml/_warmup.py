"""Compile, once, every Numba kernel that the default calls run.

Numba compiles a kernel at its first call and caches the result on disk
(``_numba_config``); a later process loads it in a fraction of a second.
``warmup`` makes those first calls on a tiny matrix, so that no later call
with default parameters pauses to compile.  The entry points convert their
arrays to one set of dtypes, so the tiny matrix's calls compile what any
user's data needs.
"""

import time

import numpy as np
import scipy.sparse as sp

from ._numba_config import NUMBA_CACHE


def warmup(verbose=True):
    """Compile and cache the Numba kernels of the default calls.

    Runs, on a tiny matrix, what a first session runs: ``fit`` and
    ``partial_fit`` with the default loss and solver (with the temperature
    measurement), placing new users (``transform``, ``predict``),
    ``score``, ``recommend``, ``kneighbors_items`` and
    :func:`~sklearn_cml.metrics.ranking_metrics`.  The compiled code is
    cached on disk, so this takes about a minute once per install (a
    second or two afterwards).  Other losses and solvers compile at their
    first use, which ``verbose`` announces.

    Parameters
    ----------
    verbose : bool, default=True
        Print one line before compiling and one when done.

    Returns
    -------
    seconds : float
        How long the warm-up took.

    Examples
    --------
    >>> from sklearn_cml import warmup
    >>> seconds = warmup(verbose=False)
    """
    from ._estimator import CMLRecommender
    from .datasets import make_interactions
    from .metrics import ranking_metrics

    start = time.perf_counter()
    if verbose:
        where = ("and caching them on disk, once per install" if NUMBA_CACHE else
                 "for this process only: SKLEARN_CML_NUMBA_CACHE=0 turns the disk cache off")
        print(f"Compiling the Numba kernels of sklearn_cml ({where}; about a minute)...",
              flush=True)
    X = make_interactions(n_users=40, n_items=30, random_state=0)
    model = CMLRecommender(n_components=4, n_epochs=1, random_state=0).fit(X)
    model.partial_fit(X)
    model.predict(X[:2], n_items=3)
    model.score(X)
    model.recommend([0, 1], n_items=3)
    model.kneighbors_items([0, 1], n_neighbors=3)
    ranking_metrics(X, model, k=3)
    # Validating a matrix with int64 indices: the one second structure
    # (``_sparse_checks._scan_dtypes``).
    wide = sp.csr_matrix((X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)),
                         shape=X.shape)
    model.transform(wide[:2])
    seconds = time.perf_counter() - start
    if verbose:
        print(f"Done in {seconds:.0f} s: later calls with default parameters start at once.",
              flush=True)
    return seconds


def default_kernels_ready():
    """Whether a default ``fit`` and its scoring start without compiling.

    True when every kernel they run is compiled in this process or cached
    on disk (after :func:`warmup`, say), so callers can tell the user
    about a compile only when one is coming.
    """
    from ._covariance import covariance_step
    from ._estimator import CMLRecommender
    from ._losses import LOSSES
    from ._progress import compilation_notice
    from ._ranking import ranking_stats
    from ._rng import holdout_mask
    from ._solvers import SOLVERS

    defaults = CMLRecommender().get_params()
    solver = SOLVERS[defaults["solver"]]
    kernels = (*solver.epoch_kernels(LOSSES[defaults["loss"]]), covariance_step,
               holdout_mask, ranking_stats)
    return compilation_notice(kernels) is None
