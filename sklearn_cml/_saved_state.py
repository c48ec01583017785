"""The optimiser's state in a model file, and back.

``save(..., include_optimizer_state=True)`` adds to a model file what
``partial_fit`` continues from (``_engine.TrainingState``) beyond what the
file holds anyway: the per-row AdaGrad sums of the vectors and of the
feature MLP, the random states of the epochs' blocks, the number of
averaged epochs and, while averaging, the SGD vectors behind the averaged
ones.  Everything else of the state is already in the file: the vectors
(the model's own when nothing is averaged, the running means otherwise),
the MLP's weights, the seed, the median user count and the history of
training (epochs, loss curves, resolved parameters).  So a loaded state is
the saved one, field for field, and training goes on bit for bit.

This module turns a state into named arrays and a header section, and
checks them on the way back; ``_persistence`` stores and reads them.
"""

from typing import NamedTuple

import numpy as np

from ._engine import N_BLOCKS, TrainingState
from ._features import EncoderGradSq

PREFIX = "state."
# The largest epoch count a file may hold: each epoch's random streams are
# seeded with it (``_rng.stream_seed``), which must stay within 64 bits.
MAX_EPOCHS = np.iinfo(np.int32).max


class StateError(ValueError):
    """What is wrong with a file's optimiser state (``_persistence`` names the file)."""


class Section(NamedTuple):
    """The header's "optimizer_state" section and the arrays it adds."""

    header: dict
    arrays: dict


def state_section(state, model):
    """The ``Section`` of the ``TrainingState`` behind the ``FittedModel`` ``model``."""
    arrays = {"user_grad_sq": state.user_grad_sq, "item_grad_sq": state.item_grad_sq,
              "rng_states": state.rng_states, "feature_rng_states": state.feature_rng_states}
    # Without averaging, the SGD vectors are the model's: stored once.
    if state.n_averaged:
        arrays["user_embeddings"] = state.user_embeddings
        arrays["item_embeddings"] = state.item_embeddings
    if state.encoder_grad_sq is not None:
        arrays.update({f"encoder_grad_sq.{name}": array
                       for name, array in state.encoder_grad_sq._asdict().items()})
    return Section({"n_averaged": int(state.n_averaged)},
                   {PREFIX + name: array for name, array in arrays.items()})


def read_state(section, get, model):
    """The ``TrainingState`` of a header's "optimizer_state" ``section`` and the
    loaded ``FittedModel`` ``model``.

    ``get(name, dtypes, shape, finite)`` reads one array, checked against
    its dtype and shape (``_persistence._Archive.get``).  Raises
    ``StateError`` naming what is wrong.
    """
    if not (isinstance(section, dict) and set(section) == {"n_averaged"}):
        raise StateError(f"its optimizer state section {section!r} is not "
                         "{'n_averaged': int}")
    history = model.history
    n_iter, n_averaged = history.n_iter, section["n_averaged"]
    if not 0 <= n_iter <= MAX_EPOCHS:
        raise StateError(f"its n_iter_ {n_iter} is not from 0 to {MAX_EPOCHS}")
    if not (type(n_averaged) is int and 0 <= n_averaged <= n_iter):
        raise StateError(f"its number of averaged epochs {n_averaged!r} is not an int "
                         f"from 0 to n_iter_ ({n_iter})")
    n_users, n_items, n_components = model.n_users, model.n_items, model.n_components

    def accumulator(name, length):
        # AdaGrad divides by the square root: start at 0.1, only ever grow.
        array = get(PREFIX + name, [np.float32], (length,), finite=True)
        if array.size and not array.min() > 0:
            raise StateError(f"its AdaGrad sums {PREFIX + name!r} are not all positive")
        return array

    def random_states(name):
        array = get(PREFIX + name, [np.uint64], (N_BLOCKS,))
        # xorshift never leaves the all-zero state.
        if not array.all():
            raise StateError(f"its random states {PREFIX + name!r} hold a zero")
        return array

    user_grad_sq = accumulator("user_grad_sq", n_users)
    item_grad_sq = accumulator("item_grad_sq", n_items)
    rng_states = random_states("rng_states")
    feature_rng_states = random_states("feature_rng_states")
    users, items = model.user_embeddings, model.item_embeddings
    averages = (None, None)
    if n_averaged:
        averages = users, items
        users = get(PREFIX + "user_embeddings", [np.float32], (n_users, n_components),
                    finite=True)
        items = get(PREFIX + "item_embeddings", [np.float32], (n_items, n_components),
                    finite=True)
    encoder_grad_sq = None
    if model.encoder is not None:
        n_features, n_hidden = model.encoder.w1.shape
        encoder_grad_sq = EncoderGradSq(
            accumulator("encoder_grad_sq.w1", n_features),
            accumulator("encoder_grad_sq.w2", n_hidden),
            accumulator("encoder_grad_sq.bias", 2),
        )  # fmt: skip
    return TrainingState(
        user_embeddings=users, item_embeddings=items, user_grad_sq=user_grad_sq,
        item_grad_sq=item_grad_sq, rng_states=rng_states,
        feature_rng_states=feature_rng_states, seed=model.seed,
        median_user_count=model.median_user_count, encoder=model.encoder,
        encoder_grad_sq=encoder_grad_sq, user_average=averages[0], item_average=averages[1],
        n_averaged=n_averaged, n_iter=n_iter, loss_curve=list(history.loss_curve),
        feature_loss_curve=list(history.feature_loss_curve),
        validation_scores=list(history.validation_scores), best_epoch=history.best_epoch,
        resolved=dict(history.resolved),
    )  # fmt: skip
