"""Data and measures shared by several test modules.

A test module imports these from here, never from another test module.
"""

import numpy as np
import scipy.sparse as sp

# Small, fast estimator parameters for tests that train to a known answer.
SMALL = dict(n_components=8, n_negatives=5, n_epochs=10, fold_in_epochs=10)


def planted_blocks(n_blocks=4, users_per_block=30, items_per_block=15, density=0.7, seed=0):
    """Users of block b interact only with (a random 70% of) the items of block b.

    Returns ``(X, user_block, item_block)``: the float32 CSR matrix and the
    block of each user and of each item.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items = n_blocks * users_per_block, n_blocks * items_per_block
    user_block = np.arange(n_users) // users_per_block
    item_block = np.arange(n_items) // items_per_block
    same_block = user_block[:, None] == item_block[None, :]
    dense = same_block & (rng.random((n_users, n_items)) < density)
    return sp.csr_matrix(dense.astype(np.float32)), user_block, item_block


def hold_out(X, fraction, seed=0):
    """Split each row's entries at random into (train, held-out) matrices."""
    coo = X.tocoo()
    held = np.random.default_rng(seed).random(coo.nnz) < fraction

    def part(mask):
        return sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=X.shape)

    return part(~held), part(held)


def held_out_dense_blocks():
    """Fully dense planted blocks (a checkerboard), 20% of entries held out.

    Returns ``(train, test, user_block, item_block)``.
    """
    X, user_block, item_block = planted_blocks(density=1.0)
    train, test = hold_out(X, 0.2)
    return train, test, user_block, item_block


def recall_of_recommendations(model, train, test, n_items):
    """Mean recall@n_items of known users' held-out items (plain loop)."""
    recommended = model.recommend(np.arange(train.shape[0]), n_items=n_items)
    recalls = [
        len(set(test[user].indices) & set(recommended[user])) / test[user].nnz
        for user in range(train.shape[0])
        if test[user].nnz
    ]
    return np.mean(recalls)


def config_of(data=None, **params):
    """The training ``Config`` of ``CMLRecommender``'s defaults with
    ``params``, for ``data`` (``Interactions``; by default a one-item matrix
    without users), as ``fit`` builds it."""
    from sklearn_cml import CMLRecommender
    from sklearn_cml._config import training_config
    from sklearn_cml._interactions import Interactions

    if data is None:
        data = Interactions(np.zeros(1, np.int64), np.zeros(0, np.int32), 1)
    return training_config({**CMLRecommender().get_params(), **params}, data)
