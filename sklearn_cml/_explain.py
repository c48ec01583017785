"""Why an item is near a user: the user's items that pull it there.

Training pulls a user's items near the user, so an item near the user is,
by the triangle inequality, near some of the user's items: "users who
liked A liked B" read off distances.  ``explanation`` says which of the
user's items, and how much each: the share of item j is the probability,
under the model's own similarity kernel, that j is the user's item nearest
to the recommended one,

    share_j = softmax_j(-|v_j - v_item|^2 / T)   over all the user's items j,

so the shares of all the user's items add up to 1.  ``T`` is the softmax
loss's temperature; a loss without one (the hinge) takes the median of the
squared distances, which makes the shares independent of the space's scale.
"""

import numpy as np
from sklearn.utils import Bunch

from . import _temperature


def kernel_temperature(loss, temperature, resolved):
    """``T`` of the shares: with ``loss="softmax"``, the temperature it
    trains with (``temperature``, or what ``"auto"`` resolved to, in
    ``resolved``); None for a loss without one (the shares then take the
    median scale, see ``explanation``)."""
    if loss != "softmax":
        return None
    if temperature == "auto":
        return float(resolved.get("temperature", _temperature.START))
    return float(temperature)


def explanation(user_vector, item_embeddings, user_items, item, n, temperature):
    """The user's items that pull ``item`` nearest, and their shares.

    Parameters
    ----------
    user_vector : ndarray of shape (n_components,)
    item_embeddings : ndarray of shape (n_items, n_components)
    user_items : ndarray of int
        Distinct columns of the user's items; ``item`` among them is left
        out (an item does not explain itself).
    item : int
        Column of the recommended item.
    n : int
        Items returned at most.
    temperature : float or None
        ``T``; None: the median of the squared distances.

    Returns
    -------
    Bunch
        ``neighbors`` (columns, largest share first, ties by column),
        ``shares``, ``distances`` (item to item), ``other_share`` (of the
        items not returned), ``distance`` (user to item) and
        ``temperature`` (the ``T`` used).

    Raises
    ------
    ValueError
        If the user has no items besides ``item``.
    """
    columns = np.asarray(user_items, dtype=np.int64)
    columns = columns[columns != item]
    if columns.size == 0:
        raise ValueError(
            "The user has no items besides the item to explain, so no item of theirs can "
            "explain it. Give the user's items (user_items=) if they have more than the "
            "model was trained on."
        )
    # float64 from here: shares of items at nearly equal distances differ in
    # the last bits of float32.
    target = item_embeddings[item].astype(np.float64)
    differences = item_embeddings[columns].astype(np.float64)
    differences -= target
    squared = np.einsum("ij,ij->i", differences, differences)
    if temperature is None:
        # Scale-free: the median item keeps at least exp(-1) of the nearest
        # one's weight.  A median of 0 leaves the items at distance 0 sharing
        # all of it (the tiny floor below).
        temperature = float(np.median(squared))
    logits = -squared / max(temperature, np.finfo(np.float64).tiny)
    weights = np.exp(logits - logits.max())
    shares = weights / weights.sum()
    order = np.lexsort((columns, -shares))
    kept, rest = order[:n], order[n:]
    user_difference = np.asarray(user_vector, dtype=np.float64) - target
    return Bunch(
        neighbors=columns[kept],
        shares=shares[kept],
        distances=np.sqrt(squared[kept]),
        other_share=float(shares[rest].sum()),
        distance=float(np.sqrt(user_difference @ user_difference)),
        temperature=float(temperature),
    )
