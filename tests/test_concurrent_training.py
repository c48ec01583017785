"""Training calls on one estimator from several threads take turns.

Each ``partial_fit`` resumes from the state the previous call left: two
threads each running five epochs on a model of one epoch end at eleven,
none lost.  The lock that orders them is not part of the estimator, so
pickling and ``clone`` see nothing of it.
"""

import pickle
import threading

import numpy as np
from sklearn.base import clone

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions

N_CALLS = 5


def _train_from_threads(model, X, n_threads=2):
    start = threading.Barrier(n_threads)
    errors = []

    def work():
        start.wait()
        try:
            for _ in range(N_CALLS):
                model.partial_fit(X)
        except Exception as error:  # reported by the test, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_partial_fit_from_two_threads_keeps_every_epoch():
    X = make_interactions(n_users=600, n_items=300, random_state=0)
    model = CMLRecommender(n_components=16, n_epochs=1, random_state=0).fit(X)
    assert model.n_iter_ == 1
    errors = _train_from_threads(model, X)
    assert not errors, errors
    assert model.n_iter_ == 1 + 2 * N_CALLS
    assert len(model.loss_curve_) == 1 + 2 * N_CALLS


def test_an_estimator_used_from_threads_still_pickles_and_clones():
    X = make_interactions(n_users=100, n_items=60, random_state=0)
    model = CMLRecommender(n_components=8, n_epochs=1, random_state=0).fit(X)
    assert not _train_from_threads(model, X)
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.user_embeddings_, model.user_embeddings_)
    copy.partial_fit(X)  # the copy trains on, with a lock of its own
    assert copy.n_iter_ == model.n_iter_ + 1
    assert clone(model).get_params() == model.get_params()
    lock_types = (type(threading.Lock()), type(threading.RLock()))
    assert not any(isinstance(value, lock_types) for value in vars(model).values())
