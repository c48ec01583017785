"""Score functions built from copies of a model's arrays."""

import numpy as np


def dot_product_scores(user_factors, item_factors, item_bias=None):
    """``user @ item.T (+ item_bias)`` for a batch of users, from copies of the arrays.

    The user bias of a factorization model is the same for all of a user's
    items, so it does not change the ranking and is left out.
    """
    users = np.array(user_factors, dtype=np.float32, copy=True)
    items = np.array(item_factors, dtype=np.float32, copy=True)
    bias = None if item_bias is None else np.array(item_bias, dtype=np.float32, copy=True)

    def scores(user_indices):
        result = users[user_indices] @ items.T
        if bias is not None:
            result += bias
        return result

    return scores
