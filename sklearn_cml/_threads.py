"""Threads of the Numba kernels: which layer runs them, how many, and when.

Numba runs parallel kernels on one of three threading layers, chosen once
per process when the first parallel kernel runs: TBB, OpenMP or its own
``workqueue``.  Two properties of a layer matter here:

- Fork: a child forked after GNU OpenMP has run (multiprocessing's default
  start method on Linux, gunicorn, Celery) is killed by its first parallel
  kernel.  TBB and workqueue survive a fork.  So, unless the user chose a
  layer (``NUMBA_THREADING_LAYER``) or one is already running, importing the
  package asks Numba for a fork-safe layer (``prefer_fork_safe_layer``):
  TBB when it loads, else workqueue.  In a child forked from a GNU OpenMP
  process, the package's kernels refuse to run with an error that says
  what to do, instead of the process being killed.
- Concurrent Python threads: OpenMP and TBB let several run parallel
  kernels at once; workqueue aborts the process when two threads enter it
  together.  So every parallel kernel runs inside ``thread_limits``, which
  serialises the kernels of concurrent Python threads under workqueue (and
  before the first kernel has run, when the layer is not chosen yet).
"""

import ctypes
import os
import site
import sys
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numba
from threadpoolctl import threadpool_limits

# Re-entrant: early stopping scores the model (a parallel kernel) from
# inside training's own section.
_WORKQUEUE_LOCK = threading.RLock()

# pip's tbb wheel puts the library in <prefix>/lib, where the loader of a
# virtual environment does not look: loaded by path first, Numba's TBB layer
# then finds it by its soname.
_TBB_LIBRARY = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib"}

# Set in a child forked from a process whose kernels ran on GNU OpenMP.
_forked_from_gnu_openmp = False


def _layer():
    """The running threading layer, or None before the first parallel kernel."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def _preload_tbb():
    """Load pip's libtbb by path, so that Numba's TBB layer can start."""
    name = _TBB_LIBRARY.get(sys.platform)
    if name is None:
        return
    for folder in (Path(sys.prefix) / "lib", Path(site.getuserbase()) / "lib"):
        path = folder / name
        if path.is_file():
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                return
            except OSError:  # a broken install: Numba falls back to workqueue
                continue


def prefer_fork_safe_layer():
    """Before the first parallel kernel: make pip's TBB loadable, and ask Numba
    for a fork-safe layer (TBB, else workqueue) unless the user chose one
    (``NUMBA_THREADING_LAYER``)."""
    if _layer() is not None:  # too late: another library started one
        return
    _preload_tbb()
    if os.environ.get("NUMBA_THREADING_LAYER") or numba.config.THREADING_LAYER != "default":
        return
    numba.config.THREADING_LAYER = "forksafe"


def _openmp_vendor():
    try:
        from numba.np.ufunc import omppool
    except ImportError:
        return None
    return getattr(omppool, "openmp_vendor", None)


def _after_fork_in_child():
    global _forked_from_gnu_openmp
    if _layer() == "omp" and _openmp_vendor() == "GNU":
        _forked_from_gnu_openmp = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def check_fork_safety():
    """Raise a RuntimeError, before any kernel runs, in a child forked after
    GNU OpenMP ran kernels in its parent: its first parallel kernel would kill it."""
    if _forked_from_gnu_openmp:
        raise RuntimeError(
            "This process was forked from one whose Numba kernels ran on GNU OpenMP "
            "(NUMBA_THREADING_LAYER=omp), which cannot run in a forked child. Start "
            "the parent with NUMBA_THREADING_LAYER=workqueue or tbb (or leave it unset), "
            "or start children with the 'spawn' or 'forkserver' method of multiprocessing."
        )


def effective_n_threads(n_jobs):
    """Threads for ``n_jobs`` (joblib's convention), capped at Numba's pool."""
    available = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, available + 1 + n_jobs)
    return min(n_jobs, available)


def _serialise():
    """Whether parallel kernels must not run from two Python threads at once
    (under workqueue, or before the layer is chosen)."""
    return _layer() in (None, "workqueue")


@contextmanager
def thread_limits(n_threads):
    """Run Numba kernels on ``n_threads`` and BLAS on one, restoring both.

    The BLAS calls (K x K covariance products) are small; a multi-threaded
    BLAS keeps its threads spinning after each call, stealing the cores of
    the next Numba kernel.  Under the workqueue threading layer, one Python
    thread at a time runs inside.  Refuses to start in a child that forked
    from GNU OpenMP (``check_fork_safety``).
    """
    check_fork_safety()
    with _WORKQUEUE_LOCK if _serialise() else nullcontext():
        previous = numba.get_num_threads()
        numba.set_num_threads(n_threads)
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                yield
        finally:
            numba.set_num_threads(previous)
