"""CMLRecommender: parameters, validation and the public methods.

The estimator checks what users pass, builds the typed ``_config.Config``
of its parameters, and hands the work on: training and fold-in to
``_engine``, queries to ``_query``, files to ``_persistence``.  What it has
learnt is one ``_model.FittedModel``, which its fitted attributes read.
"""

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import TransformerTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _engine, _explain, _growth, _persistence, _query
from ._config import training_config
from ._docs import DocLinkMixin
from ._features import validate_item_features
from ._ids import IdLookup
from ._interactions import validate_count, validate_ids, validate_interactions
from ._locking import exclusive
from ._losses import LOSSES
from ._memory import answer_need, check_memory, fold_in_needs, training_needs
from ._solvers import SOLVERS
from ._weights import INTERACTION_WEIGHTS, fold_in_weights, pair_weights
from .metrics import make_ranking_scorer


class _Integer(Interval):
    """``Interval(Integral, ...)`` that refuses booleans, which are Integral."""

    def __init__(self, left, right, *, closed):
        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


class _Fitted:
    """A fitted attribute: a view of the estimator's ``FittedModel``.

    What the model learnt is defined once, in the ``FittedModel``; the
    attribute reads it (``read(model)``), and is missing (AttributeError)
    until ``fit``.
    """

    def __init__(self, read):
        self.read = read

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, estimator, owner=None):
        if estimator is None:
            return self
        model = estimator.__dict__.get("_model")
        if model is None:
            raise AttributeError(
                f"This {type(estimator).__name__} is not fitted yet, so it has no "
                f"{self.name}: call fit first."
            )
        return self.read(model)


class CMLRecommender(DocLinkMixin, BaseEstimator):
    """Collaborative Metric Learning recommender (Hsieh et al., WWW 2017).

    Users and items are embedded in one Euclidean space.  Each user's items
    are pulled within ``margin`` of the user and sampled non-items that come
    closer ("impostors") are pushed away, with a WARP weight that grows with
    the estimated rank of the liked item.  Every vector stays in the ball of
    radius ``max_norm``, and a covariance loss decorrelates the dimensions.
    Training is SGD with AdaGrad in Numba kernels, on CPU.

    Recommending for a user means returning the items nearest to the user;
    items near each other are similar, which ``kneighbors_items`` exposes.
    Users not seen in ``fit`` are folded in: their vectors are optimised
    against the frozen item vectors with the same loss (``transform``).

    Parameters
    ----------
    n_components : int, default=100
        Dimension of the embedding space.
    loss : {"hinge", "softmax"}, default="softmax"
        The embedding loss.  ``"softmax"`` is a sampled softmax over minus
        the squared distances divided by ``temperature``: every sampled
        negative is pushed in proportion to its probability of ranking
        above the liked item; ``margin`` and ``rank_weight`` do not apply to
        it.  ``"hinge"`` is the paper's: the triplet hinge on the sampled
        impostors, WARP-weighted (with ``solver="hogwild"``, on the hardest
        of ``n_negatives`` draws: the paper's algorithm).  The user guide
        compares the two ("Choosing the loss").
    margin : float, default=1.0
        Margin of the triplet hinge, in squared distance.  Compare with
        ``max_norm``: two vectors of the ball are at most ``(2 * max_norm)**2``
        apart.
    n_negatives : int, default=10
        Items sampled per (user, item) pair: with the hinge, to find
        impostors and estimate the item's rank; with the softmax, a step
        on a group of up to 16 of a user's items draws ``16 * n_negatives``
        items (160 by default), shared by the group.  Items are drawn with
        replacement, so it may exceed the number of items.  ``solver="block"``
        draws ``pool_size`` per block instead.
    temperature : "auto" or float, default="auto"
        With ``loss="softmax"``: the scale of squared distances in the
        softmax.  Lower values concentrate the push on the closest
        negatives.  Compare with ``max_norm``, as for ``margin``.  The best
        value moves with the data, in both directions (0.2 on CiteULike-a,
        0.3 on MovieLens-1M).  ``"auto"``: ``fit`` trains 5 epochs at 0.3,
        then measures the temperature under which held-out interactions
        (early stopping's, else one of each of up to 2,000 users, which
        rejoin training afterwards) are the most likely against a pool of
        sampled items, and trains on with it; with fewer than 200 pairs to
        hold out, or ``n_epochs`` of 5 or fewer, it stays 0.3.
        ``resolved_params_["temperature"]`` holds the value, which
        ``partial_fit`` and fold-in go on with.  The measurement runs once,
        in about a second.  See the parameters reference, "The temperature".
    temperature_exponent : float, default=0.15
        With ``loss="softmax"``: each user's temperature is ``temperature *
        (n_u / n_median) ** temperature_exponent``, where ``n_u`` is the
        user's number of items and ``n_median`` the median over the users
        of the matrix given to ``fit``.  Positive values soften the softmax
        of users with many (and varied) items and sharpen it for users with
        few.  Rankings are distances either way.  Between -1 and 1.
    negative_sampling_exponent : float, default=0.1
        Items are sampled in proportion to ``(n_j + 1) ** exponent``, where
        ``n_j`` counts item j's interactions in the matrix being fitted
        (for ``transform``, the one ``fit`` was given).  0 samples
        uniformly, as the paper does; the default, slightly above, pushes
        popular items away from the users who do not like them a little
        more often.  The rank estimate is importance-weighted, so it stays
        unbiased.  Between -1 and 1.
    rank_weight : bool, default=True
        Weight each pair's hinge by ``log(rank + 1)`` (WARP).  When False,
        every violating pair has weight 1.
    interaction_weight : {"binary", "values", "log"}, default="binary"
        How much each interaction counts in the loss, from X's value
        ``x`` (a rating, a count): ``"binary"``, equally, whatever the
        value; ``"values"``, in proportion to ``x``; ``"log"``, in
        proportion to ``log(1 + x)``, which tames counts that span orders
        of magnitude.  Each pair's term of the loss (either loss, either
        solver) is multiplied by its weight, normalised to mean 1 over the
        training pairs, so that ``learning_rate`` keeps its meaning and
        only relative strengths matter; ``sample_weight`` multiplies in.
        New users (``transform``, ``predict``, ``score``) are placed with
        their own values, divided by the training mean.  Recommendations
        are ranked by distance either way.  The default, ``"binary"``,
        ranks all held-out ratings of MovieLens-1M best on validation;
        ``"values"`` ranks its held-out ratings of 4 and 5 better
        (docs/benchmarks.md, "Interaction strength").
    covariance_weight : float, default=1.0
        Weight of the covariance loss, applied once per
        ``covariance_interval`` pairs (and at the end of each epoch) over
        all user and item vectors.  0 turns it off.
    max_norm : float, default=1.0
        Radius of the ball that every user and item vector is kept in.
    learning_rate : float, default=0.3
        AdaGrad learning rate.  0.3 reaches a given validation recall in
        about half the epochs of 0.15 on the sparse Amazon sets and as fast
        on MovieLens-1M (docs/ref_parameters.md, "The learning rate").
    n_epochs : int, default=60
        Passes over the interactions made by ``fit`` (at most, with early
        stopping).
    average : bool or int, default=5
        Average the vectors over epochs (Polyak-Ruppert averaging):
        ``user_embeddings_`` and ``item_embeddings_`` are then the mean of
        the vectors at the end of each epoch from epoch ``average`` on
        (True means 1), while SGD carries on from the last epoch's vectors.
        The mean smooths out the noise of the last steps, for one pass over
        the vectors per epoch.  An int larger than 1 leaves the first,
        coarse epochs out of the mean; False (or 0) keeps the last epoch's
        vectors.  Training holds a second copy of the vectors.
    solver : {"hogwild", "block"}, default="block"
        How the embedding loss is minimised.  ``"hogwild"``: SGD on one pair
        (or one group of a user's pairs) at a time against ``n_negatives``
        draws each, threads updating the vectors without locks; the paper's
        algorithm.  ``"block"``: blocks of about ``block_size`` pairs, merged
        by user, against one pool of ``pool_size`` negatives shared by the
        block; distances and gradients come from matrix products (BLAS), and
        training is bitwise reproducible for a fixed ``random_state``
        whatever ``n_jobs``.  ``n_negatives`` is not used.  See the user
        guide, "Choosing a solver".
    block_size : int, default=4096
        ``solver="block"``: training pairs per block (a block holds whole
        users, so it may hold a little more).  Each user and each item
        takes at most one step per block: smaller blocks take more steps
        per epoch, larger ones run the products nearer the machine's peak.
    pool_size : int or "auto", default="auto"
        ``solver="block"``: negatives drawn per block (with replacement, as
        ``negative_sampling_exponent`` says), shared by all its pairs; the
        user's own items among them are skipped.  A block's products cost
        (users in the block) x ``pool_size``.  ``"auto"``: 100 per training
        pair of the mean user, a multiple of 64 between 512 and 2,048
        (2,048 on MovieLens-1M and CiteULike-a, 512 on the Amazon sets,
        whose users have about 5 pairs each), so that an epoch costs about
        the same per pair on any data; ``resolved_params_["pool_size"]``
        holds the value.  See the parameters reference, "The pool".  Memory: two
        float32 matrices of (users in a block) x ``pool_size``.
    covariance_interval : int or "auto", default="auto"
        Number of training pairs between two steps of the covariance loss.
        Each step touches every vector, so it is taken every so many pairs
        rather than after each.  ``"auto"``: 10 pairs per user and item
        vector (about 97,000 on MovieLens-1M), so that the steps cost a
        fixed share of an epoch whatever the data's size.
    fold_in_epochs : int, default=20
        Passes over a new user's interactions made by ``transform``,
        ``predict`` and ``score`` to place that user.
    cold_start : {"neighbors", "network"}, default="neighbors"
        How items are placed from their features (``transform_items``),
        when ``fit`` is given ``item_features``.  ``"neighbors"``: at the
        similarity-weighted mean of the vectors of the
        ``cold_start_neighbors`` trained items most similar in content
        (cosine of TF-IDF feature rows); training is then the same as
        without features.  ``"network"``: the paper's feature MLP f,
        trained with the feature loss, places them at f(x).  See
        docs/features.md for the comparison.
    cold_start_neighbors : int, default=20
        Trained items whose vectors place a new item, with
        ``cold_start="neighbors"``.
    content_weight : float, default=1.0
        Weight of the content term when ``recommend`` ranks items given by
        their features: the score is ``-|u - p|^2 / max_norm^2 +
        content_weight * cos(profile_u, x)``, with ``profile_u`` the sum of
        the TF-IDF feature rows of the user's training items.  0 ranks by
        distance alone.
    feature_weight : float, default=1.0
        Weight of the feature loss ``sum_j |f(x_j) - v_j|^2`` with
        ``cold_start="network"``.
    hidden_size : int, default=256
        Hidden units of the feature MLP f (``cold_start="network"``).
    feature_learning_rate : float, default=0.01
        AdaGrad learning rate of the MLP's weights (the item vectors use
        ``learning_rate``).
    dropout : float, default=0.2
        Dropout rate of the MLP's hidden layer during training.
    early_stopping : bool or "auto", default=False
        How ``fit`` decides that training is done, keeping the vectors of
        the best validated epoch.  False: run all ``n_epochs`` on every
        interaction.  True: hold out ``validation_fraction`` of each user's
        interactions, measure their recall@``top_k`` every
        ``validation_interval`` epochs, and stop when it has not improved by
        more than ``tol`` for ``n_iter_no_change`` validations in a row.
        ``"auto"``: hold out one interaction of each of up to 2,000 users
        (at most 2% of the interactions, from users with three or more),
        and stop when the mean recall of the last ``n_iter_no_change``
        validations is less than 0.25% above the mean of the
        ``n_iter_no_change`` before; with fewer than 200 such pairs, run all
        ``n_epochs``.  It stops too soon on data that improves slowly
        (MovieLens-1M, CiteULike-a: the parameters reference, "When fit stops"), so
        it is not the default.  Held-out interactions still count as the
        user's (``recommend`` filters them).
    validation_fraction : float, default=0.1
        With ``early_stopping=True``: fraction of each user's interactions
        held out (users with at least two interactions; see
        :func:`sklearn_cml.model_selection.train_test_split`).
    n_iter_no_change : int, default=5
        Validations without improvement before early stopping stops: with
        ``validation_interval=N``, ``N * n_iter_no_change`` epochs.
    validation_interval : int, default=1
        With early stopping: measure the validation recall after every
        ``validation_interval``-th epoch (epochs N, 2N, ...) and after the
        last of ``n_epochs``.  Scoring ranks every item for every user, a
        large share of an epoch's time on big catalogues: a larger interval
        saves it, and only validated epochs can be kept.
    tol : float, default=1e-4
        Smallest gain of validation recall that counts as an improvement.
    top_k : int, default=50
        Number of items returned by ``predict`` (at most the number of
        items), and the cut-off of the recall that ``score`` returns.
    search : {"exact", "hnsw", "nndescent"}, default="exact"
        How ``recommend``, ``predict`` and ``kneighbors_items`` find the
        nearest items.  ``"exact"``: every distance, then a partial sort.
        ``"hnsw"`` and ``"nndescent"``: an approximate search in a
        nearest-neighbour graph of the item vectors, built on the first
        query after ``fit`` and kept until the vectors change; worth it on
        large catalogues (pynndescent on 100,000 items: 12 times faster
        than exact with seen items left out, at recall@50 0.995; on
        MovieLens-1M's 3,706, no faster).  ``"hnsw"`` (hnswlib) is compiled ahead of time: a new
        process pays the build only.  ``"nndescent"`` (pynndescent) also
        compiles Numba functions in every process, tens of seconds.  Both
        need ``pip install "sklearn-cml[ann]"``.
        Items excluded from a query (``filter_seen``, ``filter_items``,
        those outside ``items``, the item itself) are never returned either
        way: the graph is asked for that many more.  A query that would ask
        it for more than 2% of the catalogue (where the exact search costs
        less) is answered exactly.  ``score`` and the metrics always rank
        every item exactly.  With ``verbose``, a build that takes seconds
        is announced.  See docs/performance.md, "Approximate top-k".
    search_params : dict, default=None
        With ``search="hnsw"``: ``"M"`` (int, default 16), the graph's
        degree, ``"ef_construction"`` (int, default 100), the breadth of
        the build, and ``"ef"`` (int, default 64), the breadth of a query
        (at least the items it asks for).  With ``search="nndescent"``:
        ``"n_neighbors"`` (int >= 2, default 30), the degree of the graph,
        and ``"epsilon"`` (float in [0, 10], default 0.1), how far beyond
        the current candidates a query searches.  Larger is slower and
        finds more of the exact answer.
    score_holdout : float, default=0.2
        Fraction of each row that ``score`` holds out when called without
        ``y``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial vectors, the order of the pairs and the negative
        sampling.  With an int and ``n_jobs=1`` training is bitwise
        reproducible.
    n_jobs : int, default=None
        Threads used for training and fold-in.  None means 1; -1 means all
        cores.  With the ``"hogwild"`` solver, several threads update the
        vectors without locks: faster, of the same quality, but not bitwise
        reproducible.
    verbose : int, default=0
        When positive, print progress: what the ``"auto"`` parameters
        resolved to, a line before Numba compiles kernels (first use in
        an environment: about a minute for training, less for placing new
        users or scoring; ``sklearn_cml.warmup`` compiles them all once),
        what early stopping watches,
        then for each epoch its loss, its validation recall (when scored), the time
        elapsed and an estimate of the time left, and, with early stopping,
        at which epoch it stopped and which epoch's vectors it kept.

    Attributes
    ----------
    user_embeddings_ : ndarray of shape (n_users, n_components), float32
        Vector of each user (row) of the matrix given to ``fit``: with
        ``average``, the mean over the averaged epochs.
    item_embeddings_ : ndarray of shape (n_items, n_components), float32
        Vector of each item (column), averaged as the users'.
    user_items_ : scipy.sparse.csr_matrix of shape (n_users, n_items) or None
        The training interactions (ones), which ``recommend`` filters out;
        None in a model loaded from a file saved without them (``save``).
    user_ids_ : ndarray of shape (n_users,) or None
        The original id of each row, when ``fit`` was given a table encoded
        by :class:`~sklearn_cml.preprocessing.InteractionEncoder` (directly
        or in a Pipeline); None otherwise.  With ids, the methods that take
        known users (``recommend``, ``similar_users``, ``pair_distances``)
        take these ids instead of row numbers.
    item_ids_ : ndarray of shape (n_items,) or None
        Likewise, the original id of each column.  With ids, every method
        takes and returns item ids instead of column numbers (None where a
        row has fewer items than asked, in an object array).
    n_iter_ : int
        Number of epochs run so far (``fit`` and ``partial_fit``).
    loss_curve_ : list of float
        Mean embedding loss per pair of each epoch.
    validation_scores_ : list of float or None
        Validation recall@``top_k`` of each validated epoch (every
        ``validation_interval``-th and the last of ``n_epochs``), with
        early stopping.
    best_validation_score_ : float or None
        The best of ``validation_scores_``.
    best_epoch_ : int or None
        The epoch (1-based) whose vectors were kept, with early stopping.
    resolved_params_ : dict
        What each parameter left at ``"auto"`` resolved to on the data,
        by name: ``temperature`` (the measured value, with the softmax),
        ``pool_size`` (an int, with ``solver="block"``),
        ``covariance_interval`` (an int) and, with ``early_stopping="auto"``,
        ``early_stopping`` (whether ``fit`` held out pairs to stop on; not
        set by ``partial_fit``, which never stops early).
    feature_encoder_ : dict of ndarray or None
        The feature MLP's weights ``w1, b1, w2, b2`` when ``fit`` was given
        ``item_features`` with ``cold_start="network"``: ``f(x) = w2.T
        relu(w1.T x + b1) + b2``.
    feature_idf_ : ndarray of shape (``n_item_features_in_``,) or None
        Inverse document frequency of each feature column over the items
        with training interactions, which weighs the features in content
        similarities; None without item features.
    n_item_features_in_ : int or None
        Number of item-feature columns seen in ``fit``.
    feature_loss_curve_ : list of float or None
        Mean feature loss per item of each epoch, with item features.
    n_features_in_ : int
        Number of items seen in ``fit``.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Item names, when ``fit`` was given a DataFrame with string columns.

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : the query interface that
        ``kneighbors_items`` follows.

    References
    ----------
    C.-K. Hsieh, L. Yang, Y. Cui, T.-Y. Lin, S. Belongie and D. Estrin,
    "Collaborative Metric Learning", WWW 2017.

    Examples
    --------
    >>> from sklearn_cml import CMLRecommender
    >>> from sklearn_cml.datasets import make_interactions
    >>> X = make_interactions(n_users=200, n_items=100, random_state=0)
    >>> model = CMLRecommender(n_components=16, n_epochs=5, random_state=0).fit(X)
    >>> model.user_embeddings_.shape
    (200, 16)
    >>> model.recommend([0, 1], n_items=3).shape
    (2, 3)
    >>> model.predict(X[:5]).shape
    (5, 50)
    """

    _parameter_constraints = {
        "n_components": [_Integer(1, None, closed="left")],
        "loss": [StrOptions(LOSSES.keys())],
        "margin": [Interval(Real, 0, None, closed="neither")],
        "n_negatives": [_Integer(1, None, closed="left")],
        "temperature": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "temperature_exponent": [Interval(Real, -1.0, 1.0, closed="both")],
        "negative_sampling_exponent": [Interval(Real, -1.0, 1.0, closed="both")],
        "rank_weight": ["boolean"],
        "interaction_weight": [StrOptions(set(INTERACTION_WEIGHTS))],
        "covariance_weight": [Interval(Real, 0, None, closed="left")],
        "max_norm": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "n_epochs": [_Integer(1, None, closed="left")],
        "average": ["boolean", Interval(Integral, 0, None, closed="left")],
        "solver": [StrOptions(SOLVERS.keys())],
        "covariance_interval": [StrOptions({"auto"}), _Integer(1, None, closed="left")],
        "block_size": [_Integer(1, None, closed="left")],
        "pool_size": [StrOptions({"auto"}), _Integer(1, None, closed="left")],
        "fold_in_epochs": [_Integer(1, None, closed="left")],
        "cold_start": [StrOptions({"neighbors", "network"})],
        "cold_start_neighbors": [_Integer(1, None, closed="left")],
        "content_weight": [Interval(Real, 0, None, closed="left")],
        "feature_weight": [Interval(Real, 0, None, closed="left")],
        "hidden_size": [_Integer(1, None, closed="left")],
        "feature_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [_Integer(1, None, closed="left")],
        "validation_interval": [_Integer(1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "top_k": [_Integer(1, None, closed="left")],
        "search": [StrOptions(_query.SEARCHES.keys())],
        "search_params": [dict, None],
        "score_holdout": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "n_jobs": [_Integer(None, -1, closed="right"), _Integer(1, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=100,
        *,
        loss="softmax",
        margin=1.0,
        n_negatives=10,
        temperature="auto",
        temperature_exponent=0.15,
        negative_sampling_exponent=0.1,
        rank_weight=True,
        interaction_weight="binary",
        covariance_weight=1.0,
        max_norm=1.0,
        learning_rate=0.3,
        n_epochs=60,
        average=5,
        solver="block",
        block_size=4096,
        pool_size="auto",
        covariance_interval="auto",
        fold_in_epochs=20,
        cold_start="neighbors",
        cold_start_neighbors=20,
        content_weight=1.0,
        feature_weight=1.0,
        hidden_size=256,
        feature_learning_rate=0.01,
        dropout=0.2,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        validation_interval=1,
        tol=1e-4,
        top_k=50,
        search="exact",
        search_params=None,
        score_holdout=0.2,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.loss = loss
        self.margin = margin
        self.n_negatives = n_negatives
        self.temperature = temperature
        self.temperature_exponent = temperature_exponent
        self.negative_sampling_exponent = negative_sampling_exponent
        self.rank_weight = rank_weight
        self.interaction_weight = interaction_weight
        self.covariance_weight = covariance_weight
        self.max_norm = max_norm
        self.learning_rate = learning_rate
        self.n_epochs = n_epochs
        self.average = average
        self.solver = solver
        self.block_size = block_size
        self.pool_size = pool_size
        self.covariance_interval = covariance_interval
        self.fold_in_epochs = fold_in_epochs
        self.cold_start = cold_start
        self.cold_start_neighbors = cold_start_neighbors
        self.content_weight = content_weight
        self.feature_weight = feature_weight
        self.hidden_size = hidden_size
        self.feature_learning_rate = feature_learning_rate
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.validation_interval = validation_interval
        self.tol = tol
        self.top_k = top_k
        self.search = search
        self.search_params = search_params
        self.score_holdout = score_holdout
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.target_tags.required = False
        # predict returns one column per recommended item.
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        # transform returns float32 embeddings whatever the input dtype.
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        return tags

    # ---------------------------------------------------- fitted attributes

    # Views of the fitted model (``_model.FittedModel``), documented above.
    user_embeddings_ = _Fitted(lambda model: model.user_embeddings)
    item_embeddings_ = _Fitted(lambda model: model.item_embeddings)
    user_items_ = _Fitted(lambda model: model.user_items)
    user_ids_ = _Fitted(lambda model: model.user_ids)
    item_ids_ = _Fitted(lambda model: model.item_ids)
    n_iter_ = _Fitted(lambda model: model.history.n_iter)
    loss_curve_ = _Fitted(lambda model: model.history.loss_curve)
    validation_scores_ = _Fitted(lambda model: model.history.validation_scores or None)
    best_validation_score_ = _Fitted(
        lambda model: max(model.history.validation_scores, default=None))
    best_epoch_ = _Fitted(lambda model: model.history.best_epoch)
    resolved_params_ = _Fitted(lambda model: dict(model.history.resolved))
    feature_encoder_ = _Fitted(
        lambda model: None if model.encoder is None else model.encoder._asdict())
    feature_idf_ = _Fitted(
        lambda model: None if model.content is None else model.content.tfidf.idf_)
    n_item_features_in_ = _Fitted(lambda model: model.n_item_features)
    feature_loss_curve_ = _Fitted(
        lambda model: None if model.encoder is None else model.history.feature_loss_curve)

    def __sklearn_is_fitted__(self):
        return "_model" in self.__dict__

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, item_features=None, sample_weight=None):
        """Learn user and item vectors from an interaction matrix.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Interactions: any positive entry means the user (row) interacted
            with the item (column); its value counts as
            ``interaction_weight`` says.  Negative values are rejected.  A
            long table of (user, item) rows goes through
            :class:`~sklearn_cml.preprocessing.InteractionEncoder` first,
            whose output also gives the model the ids (``user_ids_``).
        y : None
            Ignored; present for API consistency.
        item_features : {array-like, sparse matrix}, default=None
            Of shape (n_items, n_item_features): side information of each
            item (tags, words, genres: non-negative counts or weights), one
            row per column of ``X``.  With it, the model can place items
            from their features alone (``transform_items``: cold start), as
            ``cold_start`` says.
        sample_weight : array-like or sparse matrix, default=None
            How much each interaction counts, multiplying the weight that
            ``interaction_weight`` gives it.  Either a matrix of X's shape
            (dense or sparse) whose entry at each interaction of X is its
            weight, or one weight per user, shape (n_users,), for all of
            the user's interactions.  Finite and non-negative; a sparse
            matrix must store an entry at every interaction of X, and no
            non-zero weight may stand where X has no interaction.  A weight
            of 0 leaves the pair out of the loss, while the item stays one
            of the user's (never a negative for the user, filtered by
            ``recommend``); remove it from ``X`` to forget it entirely.
            The weights are normalised to mean 1 over the pairs, so only
            their ratios matter.  ``GridSearchCV(...).fit(X,
            sample_weight=W)`` passes each fold its rows of ``W``.

        Returns
        -------
        self : CMLRecommender
            The fitted estimator.

        Examples
        --------
        Weigh each interaction, here the first user's first item ten times
        the others (a copy of X with the weights as its values):

        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=100, n_items=60, random_state=0)
        >>> weights = X.copy()
        >>> weights.data[0] = 10.0
        >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0)
        >>> model.fit(X, sample_weight=weights).user_embeddings_.shape
        (100, 8)
        """
        _query.check_search(self.search, self.search_params)  # before training, not after
        with exclusive(self), _unchanged_on_error(self):
            data, values = validate_interactions(self, X, reset=True, with_values=True)
            self._check_trainable(data)
            weights, value_scales = pair_weights(data, values, self.interaction_weight,
                                                sample_weight)
            features = None
            if item_features is not None:
                features = validate_item_features(item_features, data.n_items)
            ids = _ids_of(X)
            config = training_config(self.get_params(deep=False), data)
            self._check_training_memory(config, data, features, "fit")
            training = _engine.fit(data, config, self._network_features(features), weights)
            self._keep(training, data, features, value_scales, ids)
        return self

    def _network_features(self, features):
        """The features the training engine sees: only the network learns from them."""
        return features if self.cold_start == "network" else None

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, item_features=None, sample_weight=None, *, n_epochs=1):
        """Train ``n_epochs`` more epochs on ``X``, from the current vectors;
        new users and items join the model.

        On an unfitted estimator the vectors are initialised first.  On a
        fitted one, ``X`` holds the model's users and items and possibly
        new ones, which are placed before training (see the user guide,
        "Updating a fitted model"):

        - a plain matrix has at least the model's rows and columns: the
          first are its users and items, in order, the extra ones new;
        - an encoded table (``InteractionEncoder``, grown with its
          ``partial_fit``) has columns that start with ``item_ids_``, in
          order; its rows may be any users, matched to the model's by id,
          and unknown ids are appended as new users.  Users missing from
          ``X`` have no pairs in these epochs.

        A new item goes where its features put it (``transform_items``)
        when the model has item features; else to the mean of the known
        users who took it; else to a random starting vector.  New users are
        then placed by fold-in (``transform``) against every item.  Known
        users and items keep their rows and, until training moves them,
        their vectors.  ``user_items_`` becomes ``X`` (in the model's row
        order).
        Calls from several threads on one estimator take turns, each
        continuing from the state the previous one left.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Interactions, as in ``fit``, with the model's users and items
            first (or named by ids, as above).
        y : None
            Ignored; present for API consistency.
        item_features : {array-like, sparse matrix}, default=None
            Of shape (n_items, n_item_features), one row per column of
            ``X`` (new items included); required if and only if the model
            was fitted with item features.
        sample_weight : array-like or sparse matrix, default=None
            Weights of the interactions, as in ``fit``, aligned with ``X``;
            normalised over the pairs of this ``X``.
        n_epochs : int, default=1
            Epochs this call runs.

        Returns
        -------
        self : CMLRecommender
            The updated estimator.

        Raises
        ------
        ValueError
            If ``X`` has fewer users or items than the model, an encoded
            ``X`` moves or lacks one of the model's items or repeats an id,
            ``item_features`` has not one row per item of ``X``, or
            ``n_epochs`` is not a positive integer.  The model is then
            unchanged.

        Examples
        --------
        Fit on the first 50 items, then add the other 10 (a new column
        block) and 20 new users (new rows):

        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=120, n_items=60, random_state=0)
        >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0)
        >>> model = model.fit(X[:100, :50])
        >>> model = model.partial_fit(X, n_epochs=2)
        >>> model.user_embeddings_.shape, model.item_embeddings_.shape, model.n_iter_
        ((120, 8), (60, 8), 5)
        """
        _query.check_search(self.search, self.search_params)
        n_epochs = _check_n_epochs(n_epochs)
        # Calls from several threads take turns: each resumes from the
        # state the previous one left, so no epoch is lost.
        with exclusive(self), _unchanged_on_error(self):
            if not self.__sklearn_is_fitted__():
                self._first_partial_fit(X, item_features, sample_weight, n_epochs)
            else:
                self._update(X, item_features, sample_weight, n_epochs)
        return self

    def _first_partial_fit(self, X, item_features, sample_weight, n_epochs):
        """``partial_fit`` on an unfitted estimator: fresh vectors, then training."""
        data, values = validate_interactions(self, X, reset=True, with_values=True)
        self._check_trainable(data)
        weights, value_scales = pair_weights(data, values, self.interaction_weight,
                                            sample_weight)
        features = self._partial_fit_features(item_features, data, True)
        config = training_config(self.get_params(deep=False), data)
        self._check_training_memory(config, data, features, "partial_fit")
        ids = _ids_of(X)
        training = _engine.initial_state(data, config, self._network_features(features))
        _engine.train(training, data, config, n_epochs, self._network_features(features),
                      weights=weights)
        self._keep(training, data, features, value_scales, ids)

    def _update(self, X, item_features, sample_weight, n_epochs):
        """``partial_fit`` on a fitted estimator: grow with X's new users and
        items (``_growth``), then train."""
        model = self._model
        given_ids = _ids_of(X)
        rows = grown_ids = None
        if given_ids[0] is not None and model.user_ids is not None:
            rows, *grown_ids = _growth.match_ids(model.user_ids, model.item_ids, *given_ids)
        data, values = self._validate_update(X, model.n_items)
        self._check_fitted()
        if rows is None:
            _growth.check_not_shrunk(data.n_users, data.n_items, model.n_users, model.n_items,
                                     type(self).__name__)
            if model.user_ids is not None and (data.n_users, data.n_items) != (
                    model.n_users, model.n_items):
                raise ValueError(
                    "The model knows its users and items by id (it was fitted on an encoded "
                    "table), so new users and items need ids: encode the table with the "
                    "model's InteractionEncoder grown by InteractionEncoder.partial_fit "
                    "(RecommenderPipeline.partial_fit does both)."
                )
            grown_ids = (model.user_ids, model.item_ids)
        self._check_trainable(data)
        weights, value_scales = pair_weights(data, values, self.interaction_weight,
                                            sample_weight)
        if rows is not None:
            n_users = max(model.n_users, int(rows.max()) + 1)
            data, weights = _growth.move_rows(data, weights, rows, n_users)
        features = self._partial_fit_features(item_features, data, False)
        config = training_config(self.get_params(deep=False), data, model.history.resolved)
        self._check_training_memory(config, data, features, "partial_fit")
        training = _engine.resume(self._training)
        new_items = None
        if features is not None and data.n_items > model.n_items:
            new_items = _query.place_items(
                model, _growth.feature_rows_from(features, model.n_items),
                self.cold_start_neighbors, self.max_norm, self.n_jobs)[0]
        training = _growth.grow(training, data, config, new_items, weights)
        _engine.train(training, data, config, n_epochs, self._network_features(features),
                      weights=weights)
        self._keep(training, data, features, value_scales, tuple(grown_ids))

    def _validate_update(self, X, n_items):
        """``(Interactions, values)`` of a ``partial_fit`` X for a fitted model.

        X of the model's width is checked as every query checks it (the
        number of columns and their names); a wider X records its own
        width, and its column names must start with the model's.
        """
        width = _width(X)
        if width is None or width <= n_items:
            # Fewer columns pass here, to be refused by the shape check,
            # whose message says what partial_fit takes.
            narrower = width is not None and width < n_items
            return validate_interactions(self, X, reset=narrower, with_values=True)
        names = getattr(self, "feature_names_in_", None)
        data, values = validate_interactions(self, X, reset=True, with_values=True)
        given = getattr(self, "feature_names_in_", None)
        if names is not None and (given is None or not np.array_equal(given[:n_items], names)):
            raise ValueError(
                "The model was fitted on a DataFrame whose columns name its items: X's "
                "columns must start with those names, in their order (new items after "
                "them). Select them first, for example X[list(model.feature_names_in_) + "
                "new_items]."
            )
        return data, values

    def _check_training_memory(self, config, data, features, action):
        """Refuse, before allocating, a training run that cannot fit in memory."""
        network = self._network_features(features)
        check_memory(training_needs(config, data, None if network is None
                                    else network.n_features), action)

    def _partial_fit_features(self, item_features, data, first_call):
        """Validated item features for partial_fit, consistent with fit."""
        if first_call:
            if item_features is None:
                return None
            return validate_item_features(item_features, data.n_items)
        fitted_with = self.n_item_features_in_ is not None
        if (item_features is None) == fitted_with:
            raise ValueError(
                "partial_fit takes item_features exactly when the model was fitted with "
                f"them (it was fitted {'with' if fitted_with else 'without'})."
            )
        if item_features is None:
            return None
        return validate_item_features(item_features, data.n_items, self.n_item_features_in_)

    def _check_fitted(self):
        """Check that the model is fitted and that its parameters still fit it.

        Parameters may change after ``fit`` (``set_params``): each public
        method re-validates them, and refuses the ones that define the
        shapes of the fitted arrays, which only ``fit`` can change.
        """
        check_is_fitted(self)
        # Validating every parameter costs a third of a millisecond: skip it
        # while they are those that fit validated.
        if self._parameter_values() != getattr(self, "_fitted_parameters", None):
            self._validate_params()
        model = self._model
        fitted_values = {"n_components": model.n_components}
        if model.cold_start is not None:
            fitted_values["cold_start"] = model.cold_start
        if model.encoder is not None:
            fitted_values["hidden_size"] = model.encoder.b1.shape[0]
        for name, fitted in fitted_values.items():
            if getattr(self, name) != fitted:
                raise ValueError(
                    f"{name}={getattr(self, name)!r}, but the model was fitted with "
                    f"{name}={fitted!r}, which shapes what it learnt. Set it back "
                    f"(set_params({name}={fitted!r})), or call fit to train a new model."
                )

    def _parameter_values(self):
        return tuple(getattr(self, name) for name in self._parameter_constraints)

    def _check_trainable(self, data):
        if data.n_interactions == 0:
            raise ValueError(
                "X has no positive entry, so there is nothing to learn from. "
                "Pass a matrix where positive values mark interactions."
            )

    def _keep(self, training, data, features, value_scales, ids):
        """Keep what training made: the optimiser's state (for ``partial_fit``)
        and the fitted model of it (for everything else)."""
        model = _engine.fitted_model(
            training, data, features, cold_start=self.cold_start, value_scales=value_scales,
            ids=ids, item_names=getattr(self, "feature_names_in_", None),
        )  # fmt: skip
        self._attach(training, model)

    def _attach(self, training, model):
        self._training, self._model = training, model
        self._fitted_parameters = self._parameter_values()

    # -------------------------------------------------------- known users

    def recommend(
        self, user_ids, n_items=10, filter_seen=True, return_distance=False, item_features=None,
        *, items=None, filter_items=None, user_items=None,
    ):
        """Recommend the items nearest to users seen in ``fit``.

        Parameters
        ----------
        user_ids : int, str or array-like of shape (n_queries,)
            Rows of the matrix given to ``fit``, or user ids when it was an
            encoded table (see ``user_ids_``).
        n_items : int, default=10
            Number of items per user, at most the number of candidate
            items (a larger value returns them all).  Users with fewer
            eligible items get index -1 (None with item ids) and distance
            inf in the remaining places.
        filter_seen : bool, default=True
            Leave out the items the user interacted with in ``fit``.
        return_distance : bool, default=False
            Also return the Euclidean distances.
        item_features : {array-like, sparse matrix}, default=None
            Of shape (n_new_items, n_item_features): recommend among these
            new items instead (cold start), placed by ``transform_items``
            and ranked by distance and content together (see
            ``content_weight``); returned indices are their rows, and
            ``filter_seen`` does not apply.  Needs a model fitted with item
            features.
        items : array-like, default=None
            Recommend only among these items (column numbers, or item ids,
            as ``item_ids_`` says; repeats ignored).
        filter_items : array-like, default=None
            Items never to recommend, to any of the users.  With ``items``,
            the candidates are the items of ``items`` not in
            ``filter_items``; ``n_items`` is capped by their number.
        user_items : {array-like, sparse matrix} of shape (n_queries, n_items), default=None
            The users' current interactions, one row per user of
            ``user_ids``: with ``filter_seen``, these are left out instead
            of the interactions seen in ``fit`` (items a user took since).

        Returns
        -------
        distances : ndarray of shape (n_queries, n_items), float32
            Only when ``return_distance=True``; ascending in each row
            (with ``item_features`` and ``content_weight > 0`` the items
            are ranked by score, so the distances of the returned items
            need not be).
        items : ndarray of shape (n_queries, n_items)
            Item indices (int64), or item ids when fitted on an encoded
            table, nearest first.

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=100, n_items=60, random_state=0)
        >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0).fit(X)
        >>> distances, items = model.recommend([3, 7], n_items=5, return_distance=True)
        >>> items.shape, bool((distances[:, :-1] <= distances[:, 1:]).all())
        ((2, 5), True)
        """
        self._check_fitted()
        n_items = validate_count(n_items, "n_items")
        users = self._user_rows(user_ids, "Use transform or predict for users not seen in fit.")
        check_memory([answer_need(users.shape[0], min(n_items, self._model.n_items), "items",
                                  "Ask for fewer users at a time, or fewer n_items")],
                     "recommend")
        if item_features is not None:
            if items is not None or filter_items is not None or user_items is not None:
                raise ValueError(
                    "items, filter_items and user_items select among the items of fit; "
                    "with item_features the candidates are the new items: give one or the other."
                )
            placed, new_rows = self._place(item_features)
            distances, found = _query.recommend_new_items(
                self._model, users, n_items, placed, new_rows, self.content_weight,
                self.max_norm,
            )  # fmt: skip
        else:
            current = self._current_items(user_items, users.shape[0])
            if items is not None:
                items = self._item_columns(items, "items", "Items not seen in fit have no vector.")
            if filter_items is not None:
                filter_items = self._item_columns(
                    filter_items, "filter_items", "Items not seen in fit cannot be recommended.")
            distances, found = _query.recommend(
                self._model, self._search(), users, n_items, filter_seen=filter_seen,
                items=items, filter_items=filter_items, user_items=current,
            )  # fmt: skip
        return (distances, found) if return_distance else found

    def _current_items(self, user_items, n_users):
        """``recommend``'s ``user_items``, validated (checked even when
        ``filter_seen`` is off), or None."""
        if user_items is None:
            return None
        current = validate_interactions(self, user_items, reset=False)
        if current.n_users != n_users:
            raise ValueError(
                f"user_items has {current.n_users} rows but {n_users} users were given: "
                "give one row of current interactions per user of user_ids."
            )
        return current

    def _search(self):
        """The search that the ``search`` parameters name, checked."""
        return _query.search_settings(self.search, self.search_params, self.n_jobs,
                                     self.verbose)

    def kneighbors_items(
        self, item_ids=None, n_neighbors=10, return_distance=True, item_features=None
    ):
        """Find the items nearest to given items, in the style of ``kneighbors``.

        An item is never returned as its own neighbour.

        Parameters
        ----------
        item_ids : int, str or array-like, default=None
            Columns of the matrix given to ``fit`` (or item ids, as
            ``item_ids_`` says); None means every item.
        n_neighbors : int, default=10
            Number of neighbours per item, at most the number of items.
        return_distance : bool, default=True
            Also return the Euclidean distances.
        item_features : {array-like, sparse matrix}, default=None
            Of shape (n_new_items, n_item_features): query new items placed
            from these features instead
            (``transform_items``); ``item_ids`` must then be None.  The
            neighbours are known items.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors), float32
            Only when ``return_distance=True``; ascending in each row.
        neighbors : ndarray of shape (n_queries, n_neighbors)
            Indices (int64) or ids of the nearest items, nearest first (-1,
            or None, where there are fewer than ``n_neighbors`` other items).

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=100, n_items=60, random_state=0)
        >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0).fit(X)
        >>> distances, neighbors = model.kneighbors_items([0, 1], n_neighbors=4)
        >>> neighbors.shape
        (2, 4)
        """
        self._check_fitted()
        n_neighbors = validate_count(n_neighbors, "n_neighbors")
        if item_features is not None:
            if item_ids is not None:
                raise ValueError("Give item_ids or item_features, not both.")
            vectors = self.transform_items(item_features)
            self._check_neighbors_memory(vectors.shape[0], n_neighbors)
            distances, neighbors = _query.item_neighbors(
                self._model, self._search(), n_neighbors, vectors=vectors)
        else:
            items = np.arange(self._model.n_items) if item_ids is None else self._item_columns(
                item_ids, "item_ids", "Items not seen in fit have no vector.")
            self._check_neighbors_memory(items.shape[0], n_neighbors)
            distances, neighbors = _query.item_neighbors(self._model, self._search(),
                                                         n_neighbors, items=items)
        return (distances, neighbors) if return_distance else neighbors

    def _check_neighbors_memory(self, n_queries, n_neighbors):
        check_memory([answer_need(n_queries, min(n_neighbors, self._model.n_items),
                                  "neighbours", "Ask for fewer n_neighbors, or fewer items "
                                  "at a time")], "kneighbors_items")

    def similar_users(self, user_ids=None, n_users=10, return_distance=True):
        """Find the users nearest to given users seen in ``fit``.

        A user is never returned as its own neighbour.

        Parameters
        ----------
        user_ids : int, str or array-like, default=None
            Rows of the matrix given to ``fit`` (or user ids, as
            ``user_ids_`` says); None means every user.
        n_users : int, default=10
            Number of neighbours per user, at most the number of users.
        return_distance : bool, default=True
            Also return the Euclidean distances.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_users), float32
            Only when ``return_distance=True``; ascending in each row.
        neighbors : ndarray of shape (n_queries, n_users)
            Indices (int64) or ids of the nearest users, nearest first (-1,
            or None, where there are fewer than ``n_users`` other users).

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=100, n_items=60, random_state=0)
        >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0).fit(X)
        >>> distances, neighbors = model.similar_users([0, 1], n_users=4)
        >>> neighbors.shape
        (2, 4)
        """
        self._check_fitted()
        n_users = validate_count(n_users, "n_users")
        users = np.arange(self._model.n_users) if user_ids is None else self._user_rows(
            user_ids, "Use transform for users not seen in fit.")
        check_memory([answer_need(users.shape[0], min(n_users, self._model.n_users), "users",
                                  "Ask for fewer n_users, or fewer user_ids at a time")],
                     "similar_users")
        distances, neighbors = _query.similar_users(self._model, users, n_users)
        return (distances, neighbors) if return_distance else neighbors

    def pair_distances(self, user_ids, item_ids):
        """Euclidean distance of each given (user, item) pair: smaller ranks higher.

        Parameters
        ----------
        user_ids : array-like of shape (n_pairs,)
            Rows of the matrix given to ``fit`` (or user ids, as
            ``user_ids_`` says).
        item_ids : array-like of shape (n_pairs,)
            Columns of the matrix given to ``fit`` (or item ids).

        Returns
        -------
        distances : ndarray of shape (n_pairs,), float32

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=100, n_items=60, random_state=0)
        >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0).fit(X)
        >>> model.pair_distances([0, 0, 5], [3, 4, 3]).shape
        (3,)
        """
        self._check_fitted()
        users = self._user_rows(user_ids, "Use transform for users not seen in fit.")
        items = self._item_columns(item_ids, "item_ids", "Items not seen in fit have no vector.")
        if users.shape != items.shape:
            raise ValueError(
                f"user_ids has {users.shape[0]} ids and item_ids {items.shape[0]}: give one "
                "user and one item per pair."
            )
        return _query.pair_distances(self._model, users, items)

    def explain(self, user, item, n=5, *, user_items=None):
        """Why ``item`` is near ``user``: the user's items that pull it there.

        Training pulls a user's items near the user, so an item near the
        user is, by the triangle inequality, near some of the user's items.
        Each of the user's items j gets a share of the explanation: the
        probability, under the model's own similarity kernel, that j is the
        user's item nearest to ``item``,
        ``share_j = softmax_j(-d(v_j, v_item)^2 / T)`` over all the user's
        items, so that the shares add up to 1.  With ``loss="softmax"``,
        ``T`` is the temperature the model trains with (``temperature``,
        or ``resolved_params_["temperature"]`` when it is ``"auto"``; the
        same for every user: the per-user factor of
        ``temperature_exponent`` is left out, so that shares read alike
        for every user).  The hinge has no temperature: ``T`` is then the
        median of ``d(v_j, v_item)^2`` over the user's items, which makes
        the shares independent of the scale of the space (the median item
        keeps at least ``exp(-1)`` of the nearest one's weight).

        Parameters
        ----------
        user : int, str or None
            A row of the matrix given to ``fit`` (or a user id, as
            ``user_ids_`` says); None for a new user, given by
            ``user_items`` and placed as ``transform`` places it.
        item : int or str
            A column of that matrix (or an item id), typically one that
            ``recommend`` returned.  When it is one of the user's items, it
            is left out of its own explanation: the other items explain it.
        n : int, default=5
            Items returned at most; the rest add up to ``other_share``.
        user_items : {array-like, sparse matrix} of shape (1, n_items), default=None
            The user's items (any positive entry): those of a new user
            (``user=None``), or a known user's current ones, which replace
            those seen in ``fit`` (needed when the model was loaded from a
            file saved without its training matrix).

        Returns
        -------
        explanation : :class:`~sklearn.utils.Bunch`
            ``neighbors`` : ndarray of shape (min(n, n_user_items),)
                The user's items with the largest shares, largest first
                (ties by column), which are the user's items nearest to
                ``item``: column indices (int64), or item ids when fitted
                on an encoded table.  (Not ``items``: a Bunch is a dict,
                whose ``.items`` is the dict method.)
            ``shares`` : ndarray of float64
                Each one's share.
            ``distances`` : ndarray of float64
                Each one's distance to ``item``.
            ``other_share`` : float
                The share of the user's other items:
                ``shares.sum() + other_share`` is 1.
            ``distance`` : float
                The distance from the user to ``item``.
            ``temperature`` : float
                The ``T`` of the shares.

        Raises
        ------
        ValueError
            If the user or the item is unknown, ``n`` is not a positive
            integer, ``user_items`` is not one row of the items of ``fit``,
            or the user has no items besides ``item``.

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=100, n_items=60, random_state=0)
        >>> model = CMLRecommender(n_components=8, n_epochs=5, random_state=0).fit(X)
        >>> item = model.recommend([1], n_items=1)[0, 0]
        >>> why = model.explain(1, item, n=3)
        >>> len(why.neighbors), bool(abs(why.shares.sum() + why.other_share - 1) < 1e-9)
        (3, True)
        >>> set(why.neighbors.tolist()) <= set(X[1].indices.tolist())  # the user's own items
        True
        """
        self._check_fitted()
        n = validate_count(n, "n")
        model = self._model
        column = _single(self._item_columns(item, "item", "Items not seen in fit have no vector."),
                         "item")
        if user is None:
            if user_items is None:
                raise ValueError(
                    "user is None and no user_items were given: give a user seen in fit, or "
                    "a new user's items as user_items= (one row of the items of fit)."
                )
            data, values = self._user_items_row(user_items)
            _check_has_items(data.indices, "The new user (user_items)")
            vector = self._fold_in(data, values)[0]
            columns = data.indices
        else:
            row = _single(self._user_rows(
                user, "For a new user, pass user=None and the user's items as user_items=."),
                "user")
            vector = model.user_embeddings[row]
            if user_items is None:
                trained_on = _query.training_matrix(
                    model, "explain reads to find the user's items. Pass them as user_items=")
                columns = trained_on.indices[trained_on.indptr[row]:trained_on.indptr[row + 1]]
            else:
                columns = self._user_items_row(user_items)[0].indices
            _check_has_items(columns, f"User {user}")
        temperature = _explain.kernel_temperature(self.loss, self.temperature,
                                                  model.history.resolved)
        found = _explain.explanation(vector, model.item_embeddings, columns, column, n,
                                     temperature)
        found.neighbors = model.labels("item", found.neighbors)
        return found

    def _user_items_row(self, user_items):
        """``explain``'s ``user_items``: ``(Interactions, values)`` of one row."""
        if not sp.issparse(user_items) and np.ndim(user_items) == 1:
            user_items = np.asarray(user_items).reshape(1, -1)
        data, values = validate_interactions(self, user_items, reset=False, name="user_items",
                                             with_values=True)
        if data.n_users != 1:
            raise ValueError(
                f"user_items has {data.n_users} rows: explain takes the items of one user, "
                "one row of shape (1, n_items)."
            )
        return data, values

    def transform_items(self, item_features):
        """Place items from their features alone (cold start).

        With ``cold_start="neighbors"``, an item goes to the mean of the
        vectors of the ``cold_start_neighbors`` trained items most similar
        to it in content (cosine of TF-IDF feature rows), each weighted by
        its similarity squared; an item that shares no feature with any
        trained item goes to the mean of the trained items.  With
        ``"network"``, to ``f(x)``, the feature MLP's output, projected into
        the ball.  New items can then be recommended to known users
        (``recommend(..., item_features=)``) and matched to known items
        (``kneighbors_items(item_features=)``).

        Parameters
        ----------
        item_features : {array-like, sparse matrix} of shape (n_new_items, n_item_features)
            Features of the items, with the columns used in ``fit``.

        Returns
        -------
        embeddings : ndarray of shape (n_new_items, n_components), float32

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X, _, item_clusters = make_interactions(n_users=200, n_items=60, n_clusters=4,
        ...                                         random_state=0, return_labels=True)
        >>> features = np.eye(4)[item_clusters]  # one-hot cluster of each item
        >>> model = CMLRecommender(n_components=8, n_epochs=5, random_state=0)
        >>> model = model.fit(X, item_features=features)
        >>> model.transform_items(np.eye(4)).shape
        (4, 8)
        """
        return self._place(item_features)[0]

    def _place(self, item_features):
        """``(vectors, unit TF-IDF rows)`` of items given by their features."""
        self._check_fitted()
        if self.n_item_features_in_ is None:
            raise ValueError(
                "This model was fitted without item_features, so it cannot place items "
                "from features: fit it with item_features=..."
            )
        features = validate_item_features(item_features, None, self.n_item_features_in_)
        return _query.place_items(self._model, features, self.cold_start_neighbors,
                                  self.max_norm, self.n_jobs)

    # ------------------------------------------------------------- saving

    def save(self, file, *, include_training_matrix=True, compress=False,
             include_optimizer_state=False):
        """Write the fitted model to a file that ``sklearn_cml.load_model`` reads.

        The file (a numpy ``.npz`` archive with a JSON header) holds what
        the model answers with: the user and item vectors, the parameters,
        the fitted attributes, what fold-in and cold start from item
        features need, and the training interactions (unless
        ``include_training_matrix=False``).  Loading it runs no code from the file, unlike
        pickle.  The loaded model answers every query as this one does; it
        can continue training with ``partial_fit`` only if saved with
        ``include_optimizer_state=True``.

        Parameters
        ----------
        file : str, path-like or binary file object
            Where to write; a name is used as given (no suffix is added).
            A file at a path is replaced atomically: the model goes to a
            temporary file in the same folder, renamed over ``file`` once
            whole, so a save that fails or is interrupted leaves the old
            file as it was.  A file object is written to directly.
        include_training_matrix : bool, default=True
            Save ``user_items_``, which ``recommend`` reads to leave out
            the items each user has seen (``filter_seen=True``, its
            default) and to profile users for the content term of
            ``item_features``.  False leaves it out, for a file about half
            the size: such calls on the loaded model then need the users'
            items (``user_items=``) or ``filter_seen=False``; every other
            query works the same.
        compress : bool, default=False
            Compress the arrays (zip deflate): smaller when the training
            matrix is included, slower to save and load.
        include_optimizer_state : bool, default=False
            Also save the optimiser state (AdaGrad sums, random states,
            with averaging the SGD vectors behind the averaged ones), so
            that ``partial_fit`` on the loaded model gives, bit for bit,
            the model this one's ``partial_fit`` gives.  It adds one number
            per user and item and, once ``average`` averages, the SGD
            vectors behind the averaged ones: as much again as the vectors.

        Raises
        ------
        ValueError
            If a parameter or fitted attribute cannot be written without
            pickle (a ``RandomState`` instance as ``random_state``: set an
            int, which changes none of a fitted model's answers), or if
            ``include_optimizer_state=True`` for a model loaded from a file
            saved without it.

        See Also
        --------
        sklearn_cml.load_model : read the file back.

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_cml import CMLRecommender, load_model
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=100, n_items=60, random_state=0)
        >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0).fit(X)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "model.npz")
        ...     model.save(path)
        ...     loaded = load_model(path)
        >>> bool((loaded.recommend([0, 1]) == model.recommend([0, 1])).all())
        True
        >>> bool((loaded.transform(X[:5]) == model.transform(X[:5])).all())
        True
        """
        self._write(file, include_training_matrix, compress,
                    include_optimizer_state=include_optimizer_state)

    def _write(self, file, include_training_matrix, compress, encoder=None,
               include_optimizer_state=False):
        """``save``, and the pipeline's (with its ``FittedEncoder``)."""
        self._check_fitted()
        _persistence.save_model(file, self.get_params(deep=False), self._model,
                                include_training_matrix=include_training_matrix,
                                compress=compress, encoder=encoder, training=self._training,
                                include_optimizer_state=include_optimizer_state)

    # ---------------------------------------------------------- new users

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit on ``X``, then place its rows as ``transform`` would.

        The result equals ``fit(X, sample_weight=sample_weight).transform(X)``:
        fold-in vectors, which differ slightly from the training vectors in
        ``user_embeddings_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Interactions, as in ``fit``.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like or sparse matrix, default=None
            Weights of the interactions in ``fit`` (see ``fit``).

        Returns
        -------
        embeddings : ndarray of shape (n_users, n_components), float32
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def transform(self, X):
        """Place users not seen in ``fit`` (fold-in).

        Each row's vector starts at the centroid of its items and is
        optimised with the training loss against the frozen item vectors
        for ``fold_in_epochs`` passes, its pairs weighted by their values
        as ``interaction_weight`` says.  A row's result depends only on its
        own items (and ``random_state``), not on the other rows.  A row
        without interactions gets the mean of the training users.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_items)
            Interactions of the new users, with the items of ``fit``.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_components), float32

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=120, n_items=60, random_state=0)
        >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0).fit(X[:100])
        >>> model.transform(X[100:]).shape
        (20, 8)
        """
        self._check_fitted()
        return self._fold_in(*validate_interactions(self, X, reset=False, with_values=True))

    def predict(self, X, n_items=None):
        """Recommend ``n_items`` items to each row of ``X``, a new user.

        The row's own items are never recommended.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_items)
            Interactions of the users, with the items of ``fit``.
        n_items : int, default=None
            Items per row; None means ``top_k``.

        Returns
        -------
        items : ndarray of shape (n_samples, min(n_items, n_items_in_fit))
            Item indices (int64), nearest first; -1 where fewer items are
            left.  Item ids (None where fewer are left) when fitted on an
            encoded table.

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=120, n_items=60, random_state=0)
        >>> model = CMLRecommender(n_components=8, n_epochs=3, top_k=5, random_state=0)
        >>> model.fit(X[:100]).predict(X[100:]).shape
        (20, 5)
        """
        self._check_fitted()
        n_items = self.top_k if n_items is None else validate_count(n_items, "n_items")
        data, values = validate_interactions(self, X, reset=False, with_values=True)
        return _query.predict(self._model, self._search(), self._fold_in(data, values), n_items,
                              data)

    def score(self, X, y=None):
        """Mean recall@``top_k`` of new users' held-out items.

        Each row of ``X`` is a user, folded in from its items (see
        ``transform``); its recommendations (own items excluded) are
        compared with its held-out items.  Recall of a row is the number of
        held-out items among the ``top_k`` recommended, divided by the
        number of held-out items; rows without held-out items are skipped,
        not counted as zero (see :mod:`sklearn_cml.metrics`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_items)
            Interactions of the users.
        y : {array-like, sparse matrix} of shape (n_samples, n_items), default=None
            Held-out interactions of the same users (positive entries), not
            overlapping ``X``.  When None, a deterministic ``score_holdout``
            fraction of each row of ``X`` with at least two items is held
            out, the same whatever the model.  This is what lets
            ``GridSearchCV(CMLRecommender(), grid).fit(X)`` score its
            folds of unseen users.

        Returns
        -------
        score : float
            Mean recall@``top_k`` over rows with held-out items.

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender
        >>> from sklearn_cml.datasets import make_interactions
        >>> X = make_interactions(n_users=150, n_items=60, random_state=0)
        >>> model = CMLRecommender(n_components=8, n_epochs=5, top_k=10, random_state=0)
        >>> 0.0 <= model.fit(X[:100]).score(X[100:]) <= 1.0
        True
        """
        self._check_fitted()
        return make_ranking_scorer("recall", k=self.top_k)(self, X, y)

    # ---------------------------------------------------------- original ids

    def _user_rows(self, user_ids, fix):
        """Rows of the given users: ids of fit's table, or row numbers."""
        model = self._model
        if model.user_ids is None:
            return validate_ids(user_ids, model.n_users, "user_ids", fix)
        return model.lookup("user").positions(user_ids, "user_ids", fix)

    def _item_columns(self, item_ids, what, fix):
        """Columns of the given items: ids of fit's table, or column numbers."""
        model = self._model
        if model.item_ids is None:
            return validate_ids(item_ids, model.n_items, what, fix)
        return model.lookup("item").positions(item_ids, what, fix)

    def _fold_in(self, data, values):
        """Vectors of new users (``Interactions``, X's ``values``): see ``transform``."""
        weights = fold_in_weights(values, self.interaction_weight, self._model.value_scales)
        config = training_config(self.get_params(deep=False), data,
                                 self._model.history.resolved)
        check_memory(fold_in_needs(config, data, self._model.n_items), "Placing new users")
        return _engine.fold_in(self._model, data, config, weights)


def _check_n_epochs(n_epochs):
    """``partial_fit``'s ``n_epochs``, a positive int, or a ValueError."""
    if isinstance(n_epochs, (bool, np.bool_)) or not isinstance(n_epochs, Integral) or \
            n_epochs < 1:
        raise ValueError(
            f"n_epochs must be a positive integer (the epochs partial_fit runs), got "
            f"{n_epochs!r}. Pass n_epochs=1 for one pass over X."
        )
    return int(n_epochs)


def _width(X):
    """X's number of columns, read before validation (None when it has no 2-d shape)."""
    shape = getattr(X, "shape", None)
    if shape is None:
        try:
            shape = np.shape(X)
        except ValueError:  # a ragged list
            return None
    return shape[1] if len(shape) == 2 and isinstance(shape[1], Integral) else None


def _ids_of(X):
    """``(user_ids, item_ids)`` of an encoded matrix, checked; Nones otherwise."""
    user_ids, item_ids = getattr(X, "user_ids", None), getattr(X, "item_ids", None)
    if user_ids is None or item_ids is None:
        return None, None
    for ids, size, what in ((user_ids, X.shape[0], "user_ids"),
                            (item_ids, X.shape[1], "item_ids")):
        if not isinstance(ids, np.ndarray) or ids.shape != (size,):
            raise ValueError(f"X.{what} must be an array of one id per {what[:4]} ({size}).")
        if IdLookup(ids).has_repeats():
            raise ValueError(f"X.{what} repeats an id: each row and column needs its own id.")
    return user_ids, item_ids


def _single(positions, what):
    """The one position of ``positions``, for a method that takes one ``what``."""
    if positions.shape != (1,):
        raise ValueError(
            f"{what} must be one {what}, got {positions.shape[0]}: explain answers for one "
            "(user, item) pair at a time."
        )
    return int(positions[0])


def _check_has_items(columns, who):
    """Refuse a user without items (``columns``), whom no item of theirs can explain."""
    if columns.size == 0:
        raise ValueError(
            f"{who} has no items, so none of their items can explain a recommendation. "
            "Give the user's items as user_items= (a row with positive entries)."
        )


@contextmanager
def _unchanged_on_error(estimator):
    """Restore the estimator's attributes if the block raises."""
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise
