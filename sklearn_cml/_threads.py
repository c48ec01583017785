"""Threads of the Numba kernels: how many, and when they may run.

Numba runs parallel kernels on one of three threading layers: OpenMP or TBB
when their libraries load, else its own ``workqueue``.  OpenMP and TBB let
several Python threads run parallel kernels at once; the workqueue layer
does not, and aborts the process when two threads enter it together.  So
every parallel kernel runs inside ``thread_limits``, which serialises the
kernels of concurrent Python threads under the workqueue layer (and before
the first kernel has run, when the layer is not chosen yet), and leaves
them concurrent under the others.
"""

import threading
from contextlib import contextmanager, nullcontext

import numba
from threadpoolctl import threadpool_limits

# Re-entrant: early stopping scores the model (a parallel kernel) from
# inside training's own section.
_WORKQUEUE_LOCK = threading.RLock()


def effective_n_threads(n_jobs):
    """Threads for ``n_jobs`` (joblib's convention), capped at Numba's pool."""
    available = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, available + 1 + n_jobs)
    return min(n_jobs, available)


def _serialise():
    """Whether parallel kernels must not run from two Python threads at once."""
    try:
        return numba.threading_layer() == "workqueue"
    except ValueError:  # no parallel kernel has run yet: the layer is not chosen
        return True


@contextmanager
def thread_limits(n_threads):
    """Run Numba kernels on ``n_threads`` and BLAS on one, restoring both.

    The BLAS calls (K x K covariance products) are small; a multi-threaded
    BLAS keeps its threads spinning after each call, stealing the cores of
    the next Numba kernel.  Under the workqueue threading layer, one Python
    thread at a time runs inside.
    """
    with _WORKQUEUE_LOCK if _serialise() else nullcontext():
        previous = numba.get_num_threads()
        numba.set_num_threads(n_threads)
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                yield
        finally:
            numba.set_num_threads(previous)
