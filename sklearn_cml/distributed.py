"""Training and batch recommendation on a Dask cluster.

``fit`` trains a model data-parallel: the users are sharded across the
workers, each trains on its shard against its own copy of the items, and
the copies are combined on a schedule (``_distributed_fit``, ``_shard``).
``recommend_batches`` sends the model (its item vectors above all) to every
worker once; each chunk of users is then one small task, ``model.recommend``
on that chunk, so a worker holds the model plus one chunk's queries and
results at a time.  Dask is an optional dependency (``pip install 'sklearn-cml[dask]'``): it is
imported when a function of this module is called, not when the package is.

Tuning (``GridSearchCV`` and the like) needs nothing from this module: run it
under ``joblib.parallel_backend("dask")``, as ``docs/scaling.md`` shows.
"""

import os
from collections import deque

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._interactions import validate_count

__all__ = ["fit", "recommend_batches"]

# Epochs between two combinations of the item vectors, by default (see
# docs/scaling.md, "Training on a Dask cluster", for the measurement).
COMBINE_EVERY = 1

_INSTALL_HINT = "Install it with: pip install 'sklearn-cml[dask]'"


def _distributed(caller="recommend_batches"):
    """``dask.distributed``, or an ImportError that says how to install it."""
    try:
        import dask.distributed
    except ImportError as error:
        raise ImportError(
            f"{caller} needs dask.distributed, which is not installed. {_INSTALL_HINT}"
        ) from error
    return dask.distributed


def _client(distributed, client, caller):
    """``client``, or the current one, or a ValueError that says how to make one."""
    if client is not None:
        return client
    try:
        return distributed.default_client()
    except ValueError as error:
        raise ValueError(
            f"{caller} found no Dask client: create one first, e.g. "
            "Client(LocalCluster(n_workers=2, threads_per_worker=1)) or "
            "Client('scheduler-address:8786'), or pass client=."
        ) from error


def _recommend_chunk(model, users, n_items, filter_seen):
    """One task: the chunk's users, their distances and their items."""
    distances, items = model.recommend(
        users, n_items=n_items, filter_seen=filter_seen, return_distance=True
    )
    return users, distances, items


def _fitted_model(model):
    """The model to send: a fitted CMLRecommender or RecommenderPipeline, or
    one loaded from its file."""
    from ._estimator import CMLRecommender
    from ._loading import load_model
    from ._pipeline import RecommenderPipeline

    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if not isinstance(model, (CMLRecommender, RecommenderPipeline)):
        raise TypeError(
            f"model must be a fitted CMLRecommender or RecommenderPipeline, or the path "
            f"of a saved one, got {type(model).__name__}."
        )
    check_is_fitted(model)
    return model


def _chunks(user_chunks, client):
    """Each chunk as a 1-D array, or as a future of one for a dask array's blocks."""
    import dask.array as da

    if isinstance(user_chunks, da.Array):
        if user_chunks.ndim != 1:
            raise ValueError(
                f"user_chunks as a dask array must be 1-D (one user per entry), got "
                f"{user_chunks.ndim} dimensions: ravel it or pass its rows."
            )
        for block in user_chunks.blocks:
            yield client.compute(block)
        return
    if isinstance(user_chunks, (str, bytes, np.ndarray)) or not hasattr(user_chunks, "__iter__"):
        raise TypeError(
            "user_chunks must be an iterable of 1-D arrays of users (one array per chunk) or a "
            f"1-D dask array, got {type(user_chunks).__name__}: to split one array of users, "
            "pass np.array_split(users, n_chunks)."
        )
    for position, chunk in enumerate(user_chunks):
        users = np.asarray(chunk)
        if users.ndim != 1 or users.size == 0:
            raise ValueError(
                f"Chunk {position} of user_chunks has shape {users.shape}: each chunk must be "
                "a non-empty 1-D array of users."
            )
        yield users


def recommend_batches(
    model, user_chunks, n_items=10, *, filter_seen=True, client=None, max_pending=None
):
    """Recommend to users chunk by chunk on a Dask cluster.

    The model is sent to every worker once; each chunk is then one task
    that runs ``model.recommend(chunk, n_items, filter_seen=filter_seen,
    return_distance=True)``, so each worker's memory is the model plus one
    chunk of queries and results.  Chunks are submitted as results are
    consumed, at most ``max_pending`` at a time, so the client's memory is
    bounded too, even for a generator of chunks.

    Needs ``dask.distributed`` (``pip install 'sklearn-cml[dask]'``).

    Parameters
    ----------
    model : CMLRecommender, RecommenderPipeline or path-like
        A fitted model or pipeline (``make_recommender``), or the file of
        one saved by its ``save`` (read here, then sent to the workers).
        A pipeline takes user ids and returns item ids.
    user_chunks : iterable of array-like, or 1-D dask array
        Chunks of users, each a non-empty 1-D array of what ``recommend``
        takes (row numbers, or user ids for a model fitted on an encoded
        table); a generator is read lazily.  For a dask array, each of its
        blocks is a chunk.
    n_items : int, default=10
        Number of items per user, as for ``recommend``.
    filter_seen : bool, default=True
        Leave out the items each user interacted with in ``fit``.
    client : dask.distributed.Client, default=None
        The cluster to run on; by default the current client (the last
        one created in this process).
    max_pending : int, default=None
        Chunks in flight at once; by default twice the number of worker
        threads.

    Returns
    -------
    batches : iterator of tuple (users, distances, items)
        One tuple per chunk, in the order of the chunks, computed as the
        iterator is read:

        - ``users``, ndarray of shape (n_chunk,): the chunk's users, as
          given;
        - ``distances``, float32 ndarray of shape (n_chunk, n_items),
          ascending in each row;
        - ``items``, ndarray of shape (n_chunk, n_items): item indices, or
          item ids, nearest first.

        Distances and items are those of ``model.recommend(users, n_items,
        filter_seen=filter_seen, return_distance=True)`` on the chunk.
        (One call on all the users may differ in the last bit of some
        distances: the matrix product behind them rounds differently for a
        different number of rows.)

    Raises
    ------
    ImportError
        When ``dask.distributed`` is not installed.
    ValueError
        When there is no client, or a chunk is not a non-empty 1-D array;
        errors of ``recommend`` (an unknown user, say) are raised when the
        results of their chunk are reached.

    Examples
    --------
    >>> import numpy as np
    >>> from dask.distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from sklearn_cml import CMLRecommender
    >>> from sklearn_cml.datasets import make_interactions
    >>> from sklearn_cml.distributed import recommend_batches
    >>> X = make_interactions(n_users=100, n_items=60, random_state=0)
    >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0).fit(X)
    >>> with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, \\
    ...         Client(cluster) as client:  # doctest: +SKIP
    ...     for users, distances, items in recommend_batches(
    ...             model, np.array_split(np.arange(100), 4), n_items=5):
    ...         print(users.shape, items.shape)
    (25,) (25, 5)
    (25,) (25, 5)
    (25,) (25, 5)
    (25,) (25, 5)
    """
    distributed = _distributed()
    model = _fitted_model(model)
    n_items = validate_count(n_items, "n_items")
    client = _client(distributed, client, "recommend_batches")
    if max_pending is None:
        max_pending = 2 * max(1, sum(client.nthreads().values()))
    max_pending = validate_count(max_pending, "max_pending")
    return _stream(client, model, user_chunks, n_items, bool(filter_seen), max_pending)


def _stream(client, model, user_chunks, n_items, filter_seen, max_pending):
    """The generator behind ``recommend_batches``: submit ahead, yield in order."""
    # hash=False: a key of its own, not shared with (and freed by) an earlier call.
    model_on_workers = client.scatter(model, broadcast=True, hash=False)
    pending = deque()
    try:
        for users in _chunks(user_chunks, client):
            pending.append(client.submit(
                _recommend_chunk, model_on_workers, users, n_items, filter_seen, pure=False
            ))
            if len(pending) >= max_pending:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def fit(model, X, *, client=None, n_shards=None, combine_every=COMBINE_EVERY,
        item_features=None):
    """Train ``model`` on ``X`` across the workers of a Dask cluster.

    The users (rows of ``X``) are split into ``n_shards`` contiguous ranges
    holding about as many interactions each; each shard lives on a worker
    (a Dask actor) with its rows, its users' vectors and their AdaGrad sums,
    and its own copy of the item vectors.  Every ``combine_every`` epochs
    the driver gathers the shards' item copies, combines them (per item,
    where the round started plus every shard's change, each rescaled to
    the step size of the combined AdaGrad sum, the sum shrunk where every
    shard stepped the item so often that their changes are one move made
    by each) and sends the combination back to every shard.  Negatives are drawn by
    the popularity of the items in all of ``X``, each shard from its own
    random stream, so a fit is reproducible for a given ``random_state`` and
    ``n_shards`` (wherever the shards run).  A worker lost during a round
    costs that round only: it runs again from the last combination, the
    lost shard rebuilt on a live worker with its users placed against the
    combined items (as ``transform`` places new users).

    The result is an ordinary fitted ``CMLRecommender``: it recommends,
    saves, places new users and trains on with ``partial_fit`` as after
    ``model.fit(X)``.  It differs from ``model.fit(X)`` in three ways:
    each shard trains against its own copy of the items between two
    combinations, ``temperature="auto"`` is measured before training (on
    up to 5,000 users sampled across the shards, after the usual
    calibration epochs, in this process) and then kept for every epoch, and
    each shard runs the covariance step on its own users and items.

    Needs ``dask.distributed`` (``pip install 'sklearn-cml[dask]'``).

    Parameters
    ----------
    model : CMLRecommender
        The estimator to fit, in place; its parameters say how to train.
        ``n_jobs`` is the threads of each shard.  ``early_stopping`` must be
        False and ``solver`` "block".
    X : sparse matrix or dask array of shape (n_users, n_items)
        Interactions, as in ``CMLRecommender.fit`` (an encoded table keeps
        its ids).  A dask array must be chunked by rows only, each block a
        scipy sparse matrix of some users' rows: each shard then loads its
        blocks on its worker, and the matrix is only gathered here at the
        end, as the model's ``user_items_``.
    client : dask.distributed.Client, default=None
        The cluster; by default the current client.
    n_shards : int, default=None
        Shards of users; by default one per worker.  The result depends on
        it (not on where the shards run).
    combine_every : int, default=1
        Epochs each shard trains between two combinations of the items.
        Each combination moves ``2 * n_shards * n_items * (4 *
        n_components + 4)`` bytes through this process.
    item_features : None
        Not supported: the feature network trains on all items at once.

    Returns
    -------
    model : CMLRecommender
        The fitted estimator.

    Raises
    ------
    ValueError
        When there is no client, ``n_shards`` or ``combine_every`` is not a
        positive integer, ``X`` has fewer users (or row blocks) than
        ``n_shards``, a dask array is chunked by columns, or the model asks
        for ``early_stopping``, ``item_features`` or the hogwild solver.  The model is then
        unchanged.
    RuntimeError
        When a round loses a worker four times in a row.

    Examples
    --------
    Two worker processes (the doctest is skipped: starting them takes a
    few seconds; ``tests/test_distributed_fit.py`` runs the same steps):

    >>> from dask.distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from sklearn_cml import CMLRecommender, distributed
    >>> from sklearn_cml.datasets import make_interactions
    >>> X = make_interactions(n_users=300, n_items=100, random_state=0)
    >>> model = CMLRecommender(n_components=16, n_epochs=10, random_state=0, n_jobs=1)
    >>> with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, \\
    ...         Client(cluster) as client:  # doctest: +SKIP
    ...     model = distributed.fit(model, X)
    >>> model.recommend([0], n_items=5).shape  # doctest: +SKIP
    (1, 5)
    """
    from ._distributed_fit import distributed_fit

    distributed = _distributed("fit")
    client = _client(distributed, client, "distributed.fit")
    return distributed_fit(model, X, client, n_shards, combine_every, item_features)[0]
