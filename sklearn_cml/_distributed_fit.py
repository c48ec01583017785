"""The driver of a data-parallel fit on a Dask cluster (``distributed.fit``).

Users are split into contiguous shards balanced by interactions, each a
``_shard.Shard`` actor on a worker, which keeps the shard's rows, user
vectors and AdaGrad sums where they are.  Every round the driver asks each
shard to train ``combine_every`` epochs against its own copy of the items,
gathers the copies, combines them (``_shard.combine_item_updates``: the
round's start plus every shard's change, at one process's step size,
less the overlap of items that every shard moved most of their way),
sends the combination back, and keeps the running means of the combined
items (``average``).  It keeps the last combination, so a round that
loses a worker is run again from it: the surviving shards roll back, a
lost one is rebuilt from its data's source with its users placed against
the combined items.
"""

import dataclasses
import time
from numbers import Integral

import numpy as np
import scipy.sparse as sp

from . import _engine
from . import _temperature as temperature
from ._config import training_config
from ._holdout import split_holdout
from ._interactions import Interactions, to_interactions, validate_interactions
from ._progress import resolved_summary
from ._rng import seed_states, stream_seed
from ._shard import (
    OVERLAP_RATE,
    Shard,
    balanced_ranges,
    combine_item_updates,
    overlap_factors,
    pool_steps,
)
from ._steps import clip_rows
from ._weights import INTERACTION_WEIGHTS

# temperature="auto" is measured on the driver, on a sample of at most this
# many users (drawn evenly from the shards), after the calibration epochs.
CALIBRATION_USERS = 5000
# Rounds in a row that may lose a worker before the fit gives up.
MAX_RETRIES = 3


def _shape_of(user_counts, n_items):
    """A stand-in for ``Interactions`` that ``training_config`` reads: the
    rows' lengths and the number of items, without the pairs."""
    indptr = np.concatenate(([0], np.cumsum(user_counts, dtype=np.int64)))
    return _Outline(indptr, n_items)


class _Outline:
    def __init__(self, indptr, n_items):
        self.indptr, self.n_items = indptr, n_items

    n_users = property(lambda self: self.indptr.shape[0] - 1)
    n_interactions = property(lambda self: int(self.indptr[-1]))


def check_supported(model, item_features):
    """Refuse, naming the parameter and the fix, what a distributed fit does not do."""
    from ._estimator import CMLRecommender

    if not isinstance(model, CMLRecommender):
        raise TypeError(
            f"model must be a CMLRecommender (its parameters say how to train), got "
            f"{type(model).__name__}. For a RecommenderPipeline, encode the table with its "
            "InteractionEncoder first and pass the encoded matrix with the pipeline's "
            "CMLRecommender."
        )
    if item_features is not None:
        raise ValueError(
            "item_features are not supported by the distributed fit: the feature network "
            "trains on all items at once. Fit on one machine (model.fit(X, "
            "item_features=...)), or fit without item_features."
        )
    if model.solver != "block":
        raise ValueError(
            f"solver={model.solver!r} is not supported by the distributed fit, which runs "
            "the block solver on each shard (its combination of the shards' items counts "
            "the block solver's steps). Set solver='block'."
        )
    if model.early_stopping is not False:
        raise ValueError(
            f"early_stopping={model.early_stopping!r} is not supported by the distributed "
            "fit, which runs every one of n_epochs. Set early_stopping=False and choose "
            "n_epochs (a single-process fit with early stopping on a sample says how many)."
        )


def check_count(value, name, fix):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}. {fix}")
    return int(value)


class Sources:
    """Where each shard's rows come from, to load them again if a worker is lost.

    For a scipy matrix on the driver, row ranges of it; for a dask array,
    the delayed blocks of each shard (recomputed by the cluster).
    """

    def __init__(self, client, X, n_shards):
        self.client = client
        if sp.issparse(X):
            self.matrix, self.blocks = X, None
            bounds = balanced_ranges(np.diff(X.indptr), n_shards)
        else:
            self.matrix = None
            self.blocks = list(X.to_delayed().ravel())
            futures = client.compute(self.blocks)
            sizes = client.gather(client.map(_block_size, futures))
            bounds = balanced_ranges(sizes, n_shards)
            self.first_load = futures
        self.bounds = bounds

    def load(self, shard, first=False):
        """What ``Shard`` takes: the rows (or futures of the blocks) of ``shard``."""
        start, stop = self.bounds[shard], self.bounds[shard + 1]
        if self.matrix is not None:
            return self.client.scatter(self.matrix[start:stop], hash=False)
        if first:
            return self.first_load[start:stop]
        return self.client.compute(self.blocks[start:stop])


def _block_size(block):
    """Stored entries of one block of a dask array X (its interactions, about)."""
    return int(block.nnz) if sp.issparse(block) else int(np.count_nonzero(block))


class Driver:
    """The loop over rounds, the combination, and the rebuilding of lost shards."""

    def __init__(self, client, sources, n_shards, lost_errors, on_round=None,
                 overlap_rate=OVERLAP_RATE):
        self.client = client
        self.overlap_rate = overlap_rate
        self.sources = sources
        self.n_shards = n_shards
        self.lost_errors = lost_errors
        self.on_round = on_round
        self.workers = sorted(client.scheduler_info()["workers"])
        self.shards = [self._place(index, sources.load(index, first=True))
                       for index in range(n_shards)]
        sources.first_load = None  # the shards hold the rows now
        self.bytes_per_round = []  # (bytes gathered, bytes sent back) per round
        self.round_seconds = []
        self.n_rebuilt = 0

    def _place(self, index, rows):
        workers = sorted(self.client.scheduler_info()["workers"]) or self.workers
        future = self.client.submit(Shard, index, rows, actor=True,
                                    workers=[workers[index % len(workers)]],
                                    allow_other_workers=True, pure=False)
        return future.result()

    def call(self, method, *args):
        """``method(*args)`` on every shard, in parallel; their results in order."""
        futures = [getattr(shard, method)(*args) for shard in self.shards]
        return [future.result() for future in futures]

    def setup(self):
        summaries = self.call("summary")
        self.shard_counts = [summary["item_counts"] for summary in summaries]
        self.global_counts = np.sum(self.shard_counts, axis=0)
        user_counts = np.concatenate([summary["user_counts"] for summary in summaries])
        n_items = summaries[0]["n_items"]
        n_pairs = int(user_counts.sum())
        if n_pairs == 0:
            raise ValueError(
                "X has no positive entry, so there is nothing to learn from. "
                "Pass a matrix where positive values mark interactions."
            )
        self.n_pairs = n_pairs
        self.shard_pairs = np.array([summary["user_counts"].sum() for summary in summaries])
        self.value_scales = {name: sum(summary["value_sums"][name] for summary in summaries)
                             / n_pairs for name in INTERACTION_WEIGHTS}
        self.outline = _shape_of(user_counts, n_items)
        return self.outline

    def start(self, config, seed, median_user_count, interaction_weight):
        self.config, self.seed = config, seed
        self.median_user_count = median_user_count
        self.interaction_weight = interaction_weight
        rng = np.random.default_rng(stream_seed(seed, "initial vectors"))
        self.items = _engine.initial_vectors(rng, self.outline.n_items, config)
        self.item_grad_sq = np.full(self.outline.n_items, _engine.INITIAL_GRAD_SQ, np.float32)
        # Each shard's expected steps on each item in an epoch, for the
        # overlap factors of the combination.
        self.epoch_steps = pool_steps(self.global_counts, self.shard_pairs, config)
        self.n_iter = 0
        self.loss_curve = []
        self.item_average, self.n_averaged = None, 0
        self.call("start", *self._start_args())

    def _start_args(self, n_iter=0, fold_in=False):
        return (self.config, self.seed, self.items, self.item_grad_sq, self.global_counts,
                self.median_user_count, self.interaction_weight,
                self.value_scales[self.interaction_weight], self.n_pairs, n_iter, fold_in)

    def run(self, n_epochs, combine_every, verbose):
        while self.n_iter < n_epochs:
            n_round = min(combine_every, n_epochs - self.n_iter)
            started = time.perf_counter()
            for attempt in range(MAX_RETRIES + 1):
                try:
                    losses, copies = self._round(n_round)
                    break
                except self.lost_errors as error:
                    if attempt == MAX_RETRIES:
                        raise RuntimeError(
                            f"The distributed fit lost a worker in {MAX_RETRIES + 1} tries "
                            f"of epoch {self.n_iter + 1}: check the cluster's workers "
                            f"(memory limits, crashes in their logs). Last error: {error!r}"
                        ) from error
                    self._recover()
            self._combine(copies, self.n_iter + n_round)
            self.round_seconds.append(time.perf_counter() - started)
            received = sum(array.nbytes for copy in copies for array in copy)
            sent = self.n_shards * (self.items.nbytes + self.item_grad_sq.nbytes)
            self.bytes_per_round.append((received, sent))
            for epoch_losses in zip(*losses):
                self.loss_curve.append(float(np.dot(epoch_losses, self.shard_pairs))
                                       / self.n_pairs)
            self.n_iter += n_round
            if verbose:
                print(f"Epoch {self.n_iter}/{n_epochs}: loss {self.loss_curve[-1]:.5f}; "
                      f"item arrays combined across {self.n_shards} shards: "
                      f"{received / 1e6:.2f} MB in, {sent / 1e6:.2f} MB out", flush=True)

    def _round(self, n_epochs):
        futures = [shard.train(n_epochs) for shard in self.shards]
        if self.on_round is not None:
            self.on_round(self)
        losses = [future.result() for future in futures]
        return losses, self.call("items")

    def _combine(self, copies, n_iter):
        """Combine the copies and send the result to every shard; a shard lost
        meanwhile is rebuilt from it, at epoch ``n_iter``."""
        factors = overlap_factors(self.epoch_steps * (n_iter - self.n_iter), self.overlap_rate)
        self.items, self.item_grad_sq = combine_item_updates(
            self.items, self.item_grad_sq, [copy[0] for copy in copies],
            [copy[1] for copy in copies], factors)
        clip_rows(self.items, self.config.max_norm)
        self._average_items(n_iter, n_iter - self.n_iter)
        futures = []
        for shard in self.shards:
            try:
                futures.append(shard.set_items(self.items, self.item_grad_sq))
            except self.lost_errors:
                futures.append(None)
        for index, future in enumerate(futures):
            try:
                if future is None:
                    raise RuntimeError("lost")
                future.result()
            except self.lost_errors:
                self.client.wait_for_workers(1, timeout=60)
                self._rebuild(index, n_iter)

    def _average_items(self, n_iter, n_round):
        """Fold the combined items into their running mean, for the round's
        epochs from ``config.average`` on (as ``TrainingState.average_epoch``
        does each epoch in one process; with ``combine_every`` > 1 the
        round's last combination stands for its epochs)."""
        start = self.config.average
        n_new = n_iter - max(start, n_iter - n_round + 1) + 1 if start else 0
        if n_new <= 0:
            return
        if self.item_average is None:
            self.item_average, self.n_averaged = self.items.copy(), n_new
            return
        self.n_averaged += n_new
        self.item_average += (self.items - self.item_average) * np.float32(n_new / self.n_averaged)

    def _rebuild(self, index, n_iter):
        """Shard ``index`` anew on a live worker, its users placed against the
        last combined items."""
        self.shards[index] = self._place(index, self.sources.load(index))
        self.shards[index].start(*self._start_args(n_iter, True)).result()
        self.n_rebuilt += 1

    def _recover(self):
        """Roll the live shards back to the last combination; rebuild the lost ones."""
        self.client.wait_for_workers(1, timeout=60)
        for index, shard in enumerate(self.shards):
            try:
                shard.rollback().result()
            except self.lost_errors:
                self._rebuild(index, self.n_iter)

    def state(self):
        """The fitted ``TrainingState`` and ``Interactions``, assembled from the shards."""
        parts = self.call("result")
        offsets = np.cumsum([0] + [part["indptr"][-1] for part in parts[:-1]])
        indptr = np.concatenate([[0]] + [part["indptr"][1:] + offset
                                         for part, offset in zip(parts, offsets)])
        data = Interactions(indptr.astype(np.int64),
                            np.concatenate([part["indices"] for part in parts]),
                            self.outline.n_items)
        n_averaged = parts[0]["n_averaged"]
        averaged = n_averaged > 0

        def users(name):
            return np.concatenate([part[name] for part in parts])

        state = _engine.TrainingState(
            user_embeddings=users("user_embeddings"), item_embeddings=self.items,
            user_grad_sq=users("user_grad_sq"), item_grad_sq=self.item_grad_sq,
            rng_states=seed_states(stream_seed(self.seed, "embedding blocks",
                                                       self.n_iter), _engine.N_BLOCKS),
            feature_rng_states=seed_states(stream_seed(self.seed, "feature blocks"),
                                                   _engine.N_BLOCKS),
            seed=self.seed, median_user_count=self.median_user_count,
            user_average=users("user_average") if averaged else None,
            item_average=self.item_average if averaged else None,
            n_averaged=n_averaged, n_iter=self.n_iter, loss_curve=list(self.loss_curve),
            resolved=dict(self.config.resolved),
        )
        return state, data


def calibrated_temperature(driver, config, seed):
    """temperature="auto" for a distributed fit: measured on the driver, on a
    sample of the users, after ``CALIBRATION_EPOCHS`` single-process epochs."""
    per_shard = max(1, CALIBRATION_USERS // driver.n_shards)
    rows = sp.vstack(driver.call("sample", per_shard, seed), format="csr")
    sample = to_interactions(rows)
    split = split_holdout(sample, None, seed)
    if split is None:
        return temperature.START
    train_part, holdout, _ = split
    sample_config = dataclasses.replace(config, verbose=0, calibrate_temperature=False)
    state = _engine.initial_state(train_part, sample_config, seed=seed)
    _engine.train(state, train_part, sample_config, temperature.CALIBRATION_EPOCHS)
    return temperature.calibrated_temperature(
        *state.model_vectors(), train_part, holdout,
        np.bincount(train_part.indices, minlength=train_part.n_items), config,
        state.median_user_count, seed)


def distributed_fit(model, X, client, n_shards, combine_every, item_features=None,
                    on_round=None, overlap_rate=OVERLAP_RATE):
    """The body of ``distributed.fit``; also returns the ``Driver`` (its byte
    counts).  ``overlap_rate``: that of ``_shard.overlap_factors`` (the
    benchmarks compare others)."""
    from distributed.comm import CommClosedError

    from ._estimator import _ids_of, _unchanged_on_error
    from ._locking import exclusive

    check_supported(model, item_features)
    model._validate_params()
    combine_every = check_count(combine_every, "combine_every",
                                "Pass 1 to combine the item vectors after every epoch.")
    n_workers = len(client.scheduler_info()["workers"])
    if n_shards is None:
        n_shards = max(1, n_workers)
    n_shards = check_count(n_shards, "n_shards",
                           "Pass None for one shard per worker of the cluster.")
    ids = _ids_of(X)
    lost = (OSError, CommClosedError, RuntimeError)
    with exclusive(model), _unchanged_on_error(model):
        X = _checked_input(model, X, n_shards)
        sources = Sources(client, X, n_shards)
        driver = Driver(client, sources, n_shards, lost, on_round, overlap_rate)
        try:
            outline = driver.setup()
            params = model.get_params(deep=False)
            config = training_config(params, outline)
            seed = _engine.root_seed(config.random_state)
            if config.calibrate_temperature:
                measured = calibrated_temperature(driver, config, seed)
                config = dataclasses.replace(
                    config, temperature=measured, calibrate_temperature=False,
                    resolved={**config.resolved, "temperature": measured})
            if config.verbose and config.resolved:
                print(resolved_summary(config.resolved), flush=True)
            median = _engine._median_user_count(outline.indptr)
            driver.start(config, seed, median, model.interaction_weight)
            driver.run(config.n_epochs, combine_every, config.verbose)
            state, data = driver.state()
        finally:
            driver.shards = []
        if not sp.issparse(X):
            model.n_features_in_ = data.n_items
            model.__dict__.pop("feature_names_in_", None)
        model._keep(state, data, None, driver.value_scales, ids)
    return model, driver


def _checked_input(model, X, n_shards):
    """X as a validated CSR matrix (its fitted attributes recorded on the
    model), or as a dask array of row blocks."""
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask.distributed needs dask.array
        da = None
    if da is not None and isinstance(X, da.Array):
        if X.ndim != 2 or X.numblocks[1] != 1:
            raise ValueError(
                f"A dask array X must be 2-D and chunked by rows only (each block some users' "
                f"rows with every item column), got {X.numblocks} blocks: rechunk it with "
                "X.rechunk({1: -1})."
            )
        if X.numblocks[0] < n_shards:
            raise ValueError(
                f"n_shards={n_shards} is more than X's {X.numblocks[0]} row blocks, and a "
                "shard holds whole blocks: pass a smaller n_shards or rechunk X into more "
                "row blocks."
            )
        return X
    data, values = validate_interactions(model, X, reset=True, with_values=True)
    if data.n_users < n_shards:
        raise ValueError(
            f"n_shards={n_shards} is more than X's {data.n_users} users: pass a smaller "
            "n_shards."
        )
    return sp.csr_matrix((values, data.indices, data.indptr),
                         shape=(data.n_users, data.n_items))
