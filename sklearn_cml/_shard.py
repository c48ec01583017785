"""One shard of a distributed fit: some users' rows, trained where they live.

A ``Shard`` is a Dask actor (``client.submit(Shard, ..., actor=True)``):
it holds a contiguous range of users, their interactions (with every item
column), their vectors and AdaGrad sums, and its own copy of the item
vectors.  The driver (``_distributed_fit``) asks every shard to train for
some epochs, then combines their item copies (``combine_item_updates``)
and sends the combination back.  Nothing here imports Dask: a shard is a plain object
that the tests can also drive in one process.
"""

import dataclasses
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from . import _engine
from ._interactions import Interactions, to_interactions
from ._rng import seed_states, stream_seed
from ._sampling import draw_probabilities
from ._sparse_checks import check_matrix
from ._weights import INTERACTION_WEIGHTS

# Shard seeds stay below 2**31, as root seeds do: the solvers mix them into
# 64-bit states (``stream_seed(seed, "pair order", epoch)``).
_SEED_RANGE = np.iinfo(np.int32).max


def shard_seed(seed, index):
    """The root of shard ``index``'s random streams, from the fit's root ``seed``."""
    return stream_seed(seed, "shard", index) % _SEED_RANGE


def balanced_ranges(sizes, n_shards):
    """Split ``len(sizes)`` consecutive parts into ``n_shards`` contiguous runs
    of about equal total size; returns the ``n_shards + 1`` boundaries.

    ``sizes`` are interactions per user (or per block of users).  Every run
    holds at least one part, so ``n_shards`` must be at most ``len(sizes)``.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    n_parts = sizes.shape[0]
    cumulative = np.concatenate(([0.0], np.cumsum(sizes)))
    targets = cumulative[-1] * np.arange(1, n_shards) / n_shards
    inner = np.searchsorted(cumulative, targets, side="left")
    # At least one part per run, however skewed the sizes.
    inner = np.clip(inner, np.arange(1, n_shards), n_parts - n_shards + np.arange(1, n_shards))
    inner = np.maximum.accumulate(inner)
    for position in range(1, inner.shape[0]):  # strictly increasing
        inner[position] = max(inner[position], inner[position - 1] + 1)
    return np.concatenate(([0], inner, [n_parts])).astype(np.int64)


# How fast an item settles: in m steps of a round it covers a share
# 1 - exp(-OVERLAP_RATE * m) of its way to where the round's users and
# negatives would hold it.  Chosen by measurement on six datasets
# (docs/scaling.md, "Against one process").
OVERLAP_RATE = 0.1


def pool_steps(item_counts, shard_pairs, config):
    """Each shard's expected steps on each item as a negative in an epoch:
    (n_shards, n_items) float64.

    The block solver steps every item drawn into a block's pool of
    ``pool_size`` negatives (drawn with probability proportional to
    ``(item_counts + 1) ** negative_sampling_exponent``), and a shard of
    ``shard_pairs[s]`` pairs runs about ``shard_pairs[s] / block_size``
    blocks an epoch.  Where users have many pairs the pools are large and
    every item is stepped in most blocks (MovieLens-1M: some 18 steps an
    epoch in each of 2 shards); on a sparse catalogue, less than once.
    """
    drawn = np.minimum(draw_probabilities(item_counts, config.negative_sampling_exponent),
                       1.0 - 1e-12)
    in_pool = -np.expm1(config.pool_size * np.log1p(-drawn))
    blocks = np.ceil(np.asarray(shard_pairs, dtype=np.float64) / config.block_size)
    return blocks[:, None] * in_pool[None, :]


def overlap_factors(steps, rate=OVERLAP_RATE):
    """The share of the shards' summed change to keep, per item, from each
    shard's steps on it (``pool_steps``).

    An item that covers ``1 - exp(-rate * m)`` of its way in ``m`` steps
    moves, in one process that takes every shard's steps in a row, by that
    of all the steps; side by side from the same start, the shards move it
    by the sum of each one's.  Their ratio is 1 for items few steps move
    (the changes add up) and falls towards ``1 / n_shards`` for items every
    shard moves most of the way (the changes are one move, made by each).
    ``rate=0`` keeps every sum; ``rate=inf`` takes the mean of the changes
    of the shards that stepped the item.
    """
    steps = np.asarray(steps, dtype=np.float64)
    if rate == 0:
        return np.ones(steps.shape[1])
    if np.isinf(rate):
        together, apart = np.ones(steps.shape[1]), np.count_nonzero(steps, axis=0)
    else:
        together = -np.expm1(-rate * steps.sum(axis=0))
        apart = (-np.expm1(-rate * steps)).sum(axis=0)
    return np.where(apart > 0, together / np.where(apart > 0, apart, 1.0), 1.0)


def combine_item_updates(items, grad_sq, item_copies, grad_sq_copies, factors=None):
    """The items and their AdaGrad sums after a round, from every shard's copies.

    ``items`` and ``grad_sq`` are what every shard started the round from.
    An item's AdaGrad sum gains every shard's squared gradients, as in one
    process that trains on every user in turn.  Its vector moves by the sum
    of the shards' changes, each rescaled to the step size that sum implies
    (a shard stepped with ``1 / sqrt(grad_sq + its own increase)``, one
    process would have with ``1 / sqrt(grad_sq + every shard's increase)``),
    times ``factors`` (one per item, ``overlap_factors``; None: 1), the
    share of the sum that is not the same move made by several shards.
    (Measured against other rules in docs/scaling.md.)  The sums run in
    float64, in shard order (deterministic); the caller clips the vectors
    into the ball.
    """
    base = items.astype(np.float64)
    base_sq = grad_sq.astype(np.float64)
    increases = [copy.astype(np.float64) - base_sq for copy in grad_sq_copies]
    total_sq = base_sq + sum(increases)
    change = np.zeros_like(base)
    for copy, increase in zip(item_copies, increases):
        scale = np.sqrt((base_sq + increase) / total_sq)
        change += (copy - base) * scale[:, None]
    if factors is not None:
        change *= np.asarray(factors, dtype=np.float64)[:, None]
    return (base + change).astype(items.dtype), total_sq.astype(grad_sq.dtype)


class Shard:
    """Some users' rows and vectors, and a copy of the items, on one worker.

    Parameters
    ----------
    index : int
        The shard's position, which seeds its random streams.
    blocks : list of sparse matrices or one sparse matrix
        The shard's rows of the interaction matrix (stacked in order), with
        every item column.
    """

    def __init__(self, index, blocks):
        if not isinstance(blocks, (list, tuple)):
            blocks = [blocks]
        for block in blocks:
            if not sp.issparse(block):
                raise TypeError(
                    f"Each block of a dask array X must be a scipy sparse matrix, got "
                    f"{type(block).__name__}: build it with map_blocks(scipy.sparse.csr_matrix)."
                )
        rows = sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]
        checked = check_matrix(rows, "X")
        self.index = index
        self.data, self.values = to_interactions(checked, "X", with_values=True)
        self.item_counts = np.bincount(self.data.indices, minlength=self.data.n_items)
        self.state = self.config = self.weights = self.global_counts = None
        self.snapshot = None

    def alive(self):
        """True: the driver's probe that the actor's worker still answers."""
        return True

    def summary(self):
        """What the driver needs to configure the fit: the shard's shape, its
        interactions per user and per item, and the sums of each
        ``interaction_weight``'s values."""
        return {
            "n_users": self.data.n_users,
            "n_items": self.data.n_items,
            "user_counts": np.diff(self.data.indptr),
            "item_counts": self.item_counts,
            "value_sums": {name: float(np.sum(f(self.values), dtype=np.float64))
                           for name, f in INTERACTION_WEIGHTS.items()},
        }

    def sample(self, n_users, seed):
        """Up to ``n_users`` of the shard's rows, drawn with ``seed``, as CSR."""
        rng = np.random.default_rng(stream_seed(seed, "shard", self.index))
        chosen = np.arange(self.data.n_users)
        if n_users < chosen.shape[0]:
            chosen = np.sort(rng.choice(chosen, n_users, replace=False))
        return self.data.to_csr()[chosen]

    def start(self, config, seed, items, item_grad_sq, global_counts, median_user_count,
              interaction_weight, value_scale, n_interactions, n_iter=0, fold_in=False):
        """Make the training state: new user vectors (or, with ``fold_in``, users
        placed against ``items``, to rebuild a lost shard), the given items.

        ``config`` is the fit's; the covariance step runs after the shard's
        share of ``config.covariance_interval`` pairs, so that each user gets
        as many steps per epoch as in one process.  ``value_scale`` is the
        mean over all pairs of ``interaction_weight``'s values, which the
        shard's weights are divided by.
        """
        share = self.data.n_interactions / max(n_interactions, 1)
        self.config = dataclasses.replace(
            config, covariance_interval=max(1, round(config.covariance_interval * share)),
            verbose=0)
        self.global_counts = np.asarray(global_counts, dtype=np.int64)
        strengths = INTERACTION_WEIGHTS[interaction_weight](self.values)
        self.weights = (strengths / value_scale).astype(np.float32)
        own_seed = shard_seed(seed, self.index)
        # The engine's initial state for the shard's users (its own stream),
        # with the items replaced by the driver's.
        state = _engine.initial_state(Interactions(self.data.indptr, self.data.indices, 0),
                                      self.config, seed=own_seed)
        state.median_user_count = median_user_count
        state.rng_states = seed_states(stream_seed(own_seed, "embedding blocks", n_iter),
                                       _engine.N_BLOCKS)
        state.resolved = {}
        state.item_embeddings = np.array(items, dtype=np.float32)
        state.item_grad_sq = np.array(item_grad_sq, dtype=np.float32)
        state.n_iter = n_iter
        if fold_in:
            # Users without items keep their new random vectors; the others
            # are placed against the items, as transform places new users.
            place = SimpleNamespace(
                item_embeddings=state.item_embeddings, item_counts=self.global_counts,
                user_embeddings=state.item_embeddings, seed=own_seed,
                median_user_count=median_user_count)
            has_items = np.diff(self.data.indptr) > 0
            placed = _engine.fold_in(place, self.data, self.config, self.weights)
            state.user_embeddings[has_items] = placed[has_items]
            if config.average and n_iter >= config.average:
                # Lost with the worker: the running means start again here.
                state.user_average = state.user_embeddings.copy()
                state.item_average = state.item_embeddings.copy()
                state.n_averaged = n_iter - config.average + 1
        self.state = state
        self._keep_snapshot()

    def train(self, n_epochs):
        """Run ``n_epochs`` epochs; their losses (mean per pair of the shard)."""
        before = len(self.state.loss_curve)
        _engine.train(self.state, self.data, self.config, n_epochs, weights=self.weights,
                      item_counts=self.global_counts)
        return self.state.loss_curve[before:]

    def items(self):
        """The shard's copy of the item vectors and their AdaGrad sums."""
        return self.state.item_embeddings, self.state.item_grad_sq

    def set_items(self, items, item_grad_sq):
        """Go on from the combined items; remember this point to roll back to."""
        self.state.item_embeddings = np.array(items, dtype=np.float32)
        self.state.item_grad_sq = np.array(item_grad_sq, dtype=np.float32)
        self._keep_snapshot()

    def rollback(self):
        """Back to the state of the last combination (another shard was lost)."""
        checkpoint, n_iter, n_losses = self.snapshot
        self.state.restore({name: value.copy() if isinstance(value, np.ndarray) else value
                            for name, value in checkpoint.items()})
        self.state.n_iter = n_iter
        del self.state.loss_curve[n_losses:]

    def _keep_snapshot(self):
        self.snapshot = (self.state.checkpoint(), self.state.n_iter,
                         len(self.state.loss_curve))

    def result(self):
        """The shard's part of the fitted state: its rows, its users' vectors,
        sums and running means (those of the items the driver keeps)."""
        state = self.state
        return {
            "indptr": self.data.indptr, "indices": self.data.indices,
            "user_embeddings": state.user_embeddings, "user_grad_sq": state.user_grad_sq,
            "user_average": state.user_average, "n_averaged": state.n_averaged,
        }

