"""One lock per estimator, so that training calls on it run one at a time.

Two threads calling ``partial_fit`` on one estimator would each resume
from the same state and keep only their own epoch: the other's is lost
without a word.  The lock makes the calls take turns instead.  It lives in
a table keyed weakly by the estimator, not in the estimator: pickling,
``clone``, ``get_params`` and the estimator's ``__dict__`` never see it.
"""

import threading
import weakref
from contextlib import contextmanager

_LOCKS = weakref.WeakKeyDictionary()
_CREATING = threading.Lock()  # two first calls must not make two locks


@contextmanager
def exclusive(estimator):
    """Hold ``estimator``'s lock (made on first use) for the block.

    Re-entrant: a training call may call another on the same estimator.
    """
    with _CREATING:
        lock = _LOCKS.get(estimator)
        if lock is None:
            lock = _LOCKS[estimator] = threading.RLock()
    with lock:
        yield
