"""CMLRecommender: parameters, validation and the public methods.

Training and fold-in run in ``_engine``; this module validates what users
pass and publishes what the engine returns.
"""

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import TransformerTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _engine
from ._ann import INDEXES, SEARCHES, check_search, graph_may_answer
from ._content import feature_matrix, fit_content, place_by_neighbors, tfidf_rows, top_k_by_score
from ._docs import DocLinkMixin
from ._features import validate_item_features
from ._ids import IdLookup
from ._interactions import validate_count, validate_ids, validate_interactions
from ._losses import LOSSES
from ._rng import stream_seed
from ._solvers import SOLVERS
from ._threads import effective_n_threads
from ._topk import BATCH_ENTRIES, top_k_nearest
from ._weights import INTERACTION_WEIGHTS, fold_in_weights, pair_weights
from .metrics import make_ranking_scorer


class _Integer(Interval):
    """``Interval(Integral, ...)`` that refuses booleans, which are Integral."""

    def __init__(self, left, right, *, closed):
        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


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
        compares the two.
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
    temperature : float, default=0.3
        With ``loss="softmax"``: the scale of squared distances in the
        softmax.  Lower values concentrate the push on the closest
        negatives.  Compare with ``max_norm``, as for ``margin``.
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
        (docs/user_guide.md, "Interaction strength").
    covariance_weight : float, default=1.0
        Weight of the covariance loss, applied once per
        ``covariance_interval`` pairs (and at the end of each epoch) over
        all user and item vectors.  0 turns it off.
    max_norm : float, default=1.0
        Radius of the ball that every user and item vector is kept in.
    learning_rate : float, default=0.15
        AdaGrad learning rate.
    n_epochs : int, default=60
        Passes over the interactions made by ``fit``.
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
    pool_size : int, default=2048
        ``solver="block"``: negatives drawn per block (with replacement, as
        ``negative_sampling_exponent`` says), shared by all its pairs; the
        user's own items among them are skipped.  Memory: two float32
        matrices of (users in a block) x ``pool_size``.
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
    early_stopping : bool, default=False
        In ``fit``, hold out ``validation_fraction`` of each user's
        interactions, measure their recall@``top_k`` every
        ``validation_interval`` epochs, stop when it has not improved by
        more than ``tol`` for ``n_iter_no_change`` validations in a row, and
        keep the vectors of the best validated epoch.
    validation_fraction : float, default=0.1
        Fraction of each user's interactions held out for early stopping
        (users with at least two interactions; see
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
    search : {"exact", "nndescent"}, default="exact"
        How ``recommend``, ``predict`` and ``kneighbors_items`` find the
        nearest items.  ``"exact"``: every distance, then a partial sort.
        ``"nndescent"``: an approximate search in a nearest-neighbour graph
        of the item vectors (needs pynndescent: ``pip install
        'sklearn-cml[ann]'``), built on the first query after ``fit`` and
        kept until the vectors change; worth it on large catalogues (on
        100,000 items, 12 times faster than exact with seen items left
        out, at recall@50 0.995; on MovieLens-1M's 3,706, no faster).
        Items excluded from a query (``filter_seen``, ``filter_items``, the
        item itself) are never returned either way: the graph is asked for
        that many more.  A query that would ask it for more than 2% of the
        catalogue (where the exact search costs less), or that recommends
        among ``items``, is answered exactly.  ``score`` and the metrics
        always rank every item exactly.  See docs/performance.md,
        "Approximate top-k".
    search_params : dict, default=None
        With ``search="nndescent"``: ``"n_neighbors"`` (int >= 2, default
        30), the degree of the graph, and ``"epsilon"`` (float in [0, 10],
        default 0.1), how far beyond the current candidates a query
        searches: larger is slower and finds more of the exact answer.
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
        When positive, print progress: a line before Numba compiles the
        training kernels (first use only, about a minute), then for each
        epoch its loss, its validation recall (when scored), the time
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
        "temperature": [Interval(Real, 0, None, closed="neither")],
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
        "pool_size": [_Integer(1, None, closed="left")],
        "fold_in_epochs": [_Integer(1, None, closed="left")],
        "cold_start": [StrOptions({"neighbors", "network"})],
        "cold_start_neighbors": [_Integer(1, None, closed="left")],
        "content_weight": [Interval(Real, 0, None, closed="left")],
        "feature_weight": [Interval(Real, 0, None, closed="left")],
        "hidden_size": [_Integer(1, None, closed="left")],
        "feature_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [_Integer(1, None, closed="left")],
        "validation_interval": [_Integer(1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "top_k": [_Integer(1, None, closed="left")],
        "search": [StrOptions(set(SEARCHES))],
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
        temperature=0.3,
        temperature_exponent=0.15,
        negative_sampling_exponent=0.1,
        rank_weight=True,
        interaction_weight="binary",
        covariance_weight=1.0,
        max_norm=1.0,
        learning_rate=0.15,
        n_epochs=60,
        average=5,
        solver="block",
        block_size=4096,
        pool_size=2048,
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
        check_search(self.search, self.search_params)  # before training, not after
        with _unchanged_on_error(self):
            data, values = validate_interactions(self, X, reset=True, with_values=True)
            self._check_trainable(data)
            weights, value_scales = pair_weights(data, values, self.interaction_weight,
                                                sample_weight)
            features = None
            if item_features is not None:
                features = validate_item_features(item_features, data.n_items)
            ids = _ids_of(X)
            state = _engine.fit(data, self, self._network_features(features), weights)
            state.value_scales = value_scales
            self._store(state, data, features)
            self.user_ids_, self.item_ids_ = ids
        return self

    def _network_features(self, features):
        """The features the training engine sees: only the network learns from them."""
        return features if self.cold_start == "network" else None

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, item_features=None, sample_weight=None):
        """Run one more epoch over ``X``, starting from the current vectors.

        On an unfitted estimator the vectors are initialised first.  ``X``
        must have the shape of the matrix given to ``fit``: its rows are the
        same users.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Interactions, as in ``fit``.
        y : None
            Ignored; present for API consistency.
        item_features : {array-like, sparse matrix}, default=None
            Of shape (n_items, n_item_features); required if and only if the
            model was fitted with item features.
        sample_weight : array-like or sparse matrix, default=None
            Weights of the interactions, as in ``fit``; normalised over the
            pairs of this ``X``.

        Returns
        -------
        self : CMLRecommender
            The updated estimator.
        """
        check_search(self.search, self.search_params)
        with _unchanged_on_error(self):
            first_call = not hasattr(self, "user_embeddings_")
            data, values = validate_interactions(self, X, reset=first_call, with_values=True)
            self._check_trainable(data)
            weights, value_scales = pair_weights(data, values, self.interaction_weight,
                                                sample_weight)
            features = self._partial_fit_features(item_features, data, first_call)
            if first_call:
                ids = _ids_of(X)
                state = _engine.initial_state(data, self, self._network_features(features))
            else:
                self._check_fitted()
                if data.n_users != self.user_embeddings_.shape[0]:
                    raise ValueError(
                        f"X has {data.n_users} users (rows) but the model was fitted on "
                        f"{self.user_embeddings_.shape[0]}. partial_fit continues "
                        "training on the same users; use fit to start again, or "
                        "transform to place new users."
                    )
                ids = self._check_same_ids(X)
                state = self._state.resumed()
            state.value_scales = value_scales
            _engine.train(state, data, self, 1, self._network_features(features),
                          weights=weights)
            self._store(state, data, features)
            self.user_ids_, self.item_ids_ = ids
        return self

    def _check_same_ids(self, X):
        """The fitted ids, after checking that an encoded ``X`` has them too."""
        ids = _ids_of(X)
        fitted = (self.user_ids_, self.item_ids_)
        for given, known, what in zip(ids, fitted, ("users", "items")):
            if given is not None and known is not None and not np.array_equal(given, known):
                raise ValueError(
                    f"X's {what} are not those of the table the model was fitted on: "
                    "partial_fit continues on the same users and items."
                )
        return fitted

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
        fitted_values = {"n_components": self.item_embeddings_.shape[1]}
        if self.n_item_features_in_ is not None:
            fitted_values["cold_start"] = self._fitted_cold_start
        if self.feature_encoder_ is not None:
            fitted_values["hidden_size"] = self.feature_encoder_["b1"].shape[0]
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

    def _store(self, state, data, features=None):
        """Keep a trained state, and publish it as fitted attributes."""
        self._state = state
        self._fitted_parameters = self._parameter_values()
        self.user_embeddings_, self.item_embeddings_ = state.model_vectors()
        # Training may have moved the vectors in place: the graph is stale.
        self.__dict__.pop("_search_index", None)
        self.n_iter_ = state.n_iter
        self.loss_curve_ = state.loss_curve
        encoder = state.encoder
        self.feature_encoder_ = None if encoder is None else encoder._asdict()
        self.feature_loss_curve_ = state.feature_loss_curve if encoder is not None else None
        # Training pairs per item: fold-in draws negatives by this popularity.
        self._item_counts = np.bincount(data.indices, minlength=data.n_items)
        self._content = None
        self.n_item_features_in_ = self.feature_idf_ = self._fitted_cold_start = None
        if features is not None:
            self._content = fit_content(features, self._item_counts)
            self.n_item_features_in_ = features.n_features
            self.feature_idf_ = self._content.tfidf.idf_
            self._fitted_cold_start = self.cold_start
        scores = state.validation_scores or None
        self.validation_scores_ = scores
        self.best_validation_score_ = max(scores) if scores else None
        self.best_epoch_ = state.best_epoch
        # A copy: data.indices may be the caller's X.indices.
        self.user_items_ = data.to_csr(copy=True)

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
        if item_features is not None:
            if items is not None or filter_items is not None or user_items is not None:
                raise ValueError(
                    "items, filter_items and user_items select among the items of fit; "
                    "with item_features the candidates are the new items: give one or the other."
                )
            candidates, new_rows = self._place(item_features)
            if self.content_weight > 0:
                trained_on = self._training_matrix(
                    "the content term (content_weight > 0) needs to profile each user by "
                    "their items. Set content_weight=0 to rank the new items by distance alone"
                )
                distances, found = top_k_by_score(
                    self.user_embeddings_[users], trained_on[users], candidates, new_rows,
                    self._content, self.content_weight, self.max_norm, n_items,
                )  # fmt: skip
                return (distances, found) if return_distance else found  # rows of features
            distances, found = top_k_nearest(self.user_embeddings_[users], candidates, n_items)
            return (distances, found) if return_distance else found
        seen = self._seen_items(users, filter_seen, user_items)
        if self.search != "exact" and items is None:
            filtered = None if filter_items is None else np.unique(self._item_columns(
                filter_items, "filter_items", "Items not seen in fit cannot be recommended."))
            n_filtered = 0 if filtered is None else filtered.size
            # The exact search's width: capped by the candidates left.
            width = min(n_items, seen.shape[1] - n_filtered)
            # A long filter sends every query to the exact search: the
            # candidates' path below does that without an entry per user.
            if filtered is None or graph_may_answer(width + n_filtered, seen.shape[1]):
                return self._recommend_from_graph(users, width, seen, filtered,
                                                  return_distance)
        candidates = self._candidate_items(items, filter_items)
        vectors = self.item_embeddings_
        if candidates is not None:  # the same candidates for every user
            vectors = vectors[candidates]
            seen = seen[:, candidates].tocsr()
            seen.sort_indices()
        distances, found = top_k_nearest(
            self.user_embeddings_[users], vectors, n_items, (seen.indptr, seen.indices)
        )
        if candidates is not None:  # positions among the candidates back to item ids
            found = np.where(found >= 0, candidates[np.maximum(found, 0)], -1)
        found = self._labels("item", found)
        return (distances, found) if return_distance else found

    def _recommend_from_graph(self, users, width, seen, filtered, return_distance):
        """``recommend`` by the approximate search, ``width`` items per user.
        The graph holds every item, so the ``filtered`` columns join each
        user's excluded items: an entry per user and filtered item, so users
        go a chunk at a time."""
        queries = self.user_embeddings_[users]
        if filtered is None:
            distances, found = self._nearest_items(queries, width, (seen.indptr, seen.indices))
        else:
            step = max(1, BATCH_ENTRIES // max(filtered.size, 1))
            answers = [
                self._nearest_items(queries[start:start + step], width,
                                    _plus_columns(seen[start:start + step], filtered))
                for start in range(0, max(users.size, 1), step)
            ]  # fmt: skip
            distances = np.vstack([answer[0] for answer in answers])
            found = np.vstack([answer[1] for answer in answers])
        found = self._labels("item", found)
        return (distances, found) if return_distance else found

    def _nearest_items(self, queries, k, exclude=None):
        """``top_k_nearest`` over the item vectors, by the search ``search`` names."""
        if self.search == "exact":
            return top_k_nearest(queries, self.item_embeddings_, k, exclude)
        params = check_search(self.search, self.search_params)
        index_class = INDEXES[self.search]
        index = self.__dict__.get("_search_index")
        if not (isinstance(index, index_class) and index.answers_for(self.item_embeddings_,
                                                                     params)):
            index = index_class(
                self.item_embeddings_, params,
                stream_seed(self._state.seed, "search graph"), effective_n_threads(self.n_jobs),
            )  # fmt: skip
            self._search_index = index
        return index.top_k(queries, k, exclude, params)

    def __getstate__(self):
        # A copy: object.__getstate__ may return the instance's own __dict__.
        state = dict(super().__getstate__())
        state.pop("_search_index", None)  # a cache: rebuilt on first use
        return state

    def _candidate_items(self, items, filter_items):
        """Sorted ids of the items ``items`` and ``filter_items`` leave to
        recommend, or None for all of them."""
        if items is None and filter_items is None:
            return None
        n_known = self.item_embeddings_.shape[0]
        allowed = np.ones(n_known, bool)
        if items is not None:
            allowed[:] = False
            allowed[self._item_columns(items, "items",
                                       "Items not seen in fit have no vector.")] = True
        if filter_items is not None:
            allowed[self._item_columns(filter_items, "filter_items",
                                       "Items not seen in fit cannot be recommended.")] = False
        return np.flatnonzero(allowed)

    def _seen_items(self, users, filter_seen, user_items):
        """CSR (one row per user) of the items ``filter_seen`` leaves out."""
        n_users, n_known = users.shape[0], self.item_embeddings_.shape[0]
        current = None
        if user_items is not None:  # checked even when filter_seen is off
            current = validate_interactions(self, user_items, reset=False)
            if current.n_users != n_users:
                raise ValueError(
                    f"user_items has {current.n_users} rows but {n_users} users were given: "
                    "give one row of current interactions per user of user_ids."
                )
        if not filter_seen:
            return sparse.csr_matrix((n_users, n_known), dtype=np.float32)
        if current is None:
            return self._training_matrix(
                "filter_seen needs to leave out the items each user has seen. Pass the "
                "users' current items as user_items=, or filter_seen=False"
            )[users]
        return current.to_csr(copy=True)

    def _training_matrix(self, why_and_fix):
        """``user_items_``; when the model was loaded from a file saved without
        it, a ValueError that says what needs it and what to do instead."""
        if self.user_items_ is None:
            raise ValueError(
                f"This model was saved without its training matrix (user_items_), which "
                f"{why_and_fix}; or save the model with include_training_matrix=True."
            )
        return self.user_items_

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
        n_known = self.item_embeddings_.shape[0]
        if item_features is not None:
            if item_ids is not None:
                raise ValueError("Give item_ids or item_features, not both.")
            distances, neighbors = self._nearest_items(
                self.transform_items(item_features), n_neighbors
            )
        else:
            items = np.arange(n_known) if item_ids is None else self._item_columns(
                item_ids, "item_ids", "Items not seen in fit have no vector.")
            distances, neighbors = self._nearest_items(
                self.item_embeddings_[items], n_neighbors, _themselves(items))
        neighbors = self._labels("item", neighbors)
        return (distances, neighbors) if return_distance else neighbors

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
        n_known = self.user_embeddings_.shape[0]
        users = np.arange(n_known) if user_ids is None else self._user_rows(
            user_ids, "Use transform for users not seen in fit.")
        distances, neighbors = _nearest_others(self.user_embeddings_, users, n_users)
        neighbors = self._labels("user", neighbors)
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
        difference = self.user_embeddings_[users] - self.item_embeddings_[items]
        return np.sqrt(np.einsum("ij,ij->i", difference, difference))

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
        new_rows = tfidf_rows(self._content, feature_matrix(features))
        if self.cold_start == "network":
            return _engine.place_items(self._state, features, self), new_rows
        return place_by_neighbors(self._content, new_rows, self.item_embeddings_,
                                  self.cold_start_neighbors), new_rows

    # ------------------------------------------------------------- saving

    def save(self, file, *, include_training_matrix=False, compress=False):
        """Write the fitted model to a file that ``sklearn_cml.load_model`` reads.

        The file (a numpy ``.npz`` archive with a JSON header) holds what
        the model answers with: the user and item vectors, the parameters,
        the fitted attributes, what fold-in and cold start from item
        features need, and, with ``include_training_matrix``, the training
        interactions.  Loading it runs no code from the file, unlike
        pickle.  The loaded model answers every query as this one does,
        but cannot continue training with ``partial_fit``: pickle the model
        for that.

        Parameters
        ----------
        file : str, path-like or binary file object
            Where to write; a name is used as given (no suffix is added).
        include_training_matrix : bool, default=False
            Also save ``user_items_``, which ``recommend`` reads to leave
            out the items each user has seen (``filter_seen=True``) and to
            profile users for the content term of ``item_features``.
            Without it, such calls on the loaded model need the users'
            items (``user_items=``) or ``filter_seen=False``; every other
            query works the same.
        compress : bool, default=False
            Compress the arrays (zip deflate): smaller when the training
            matrix is included, slower to save and load.

        Raises
        ------
        ValueError
            If a parameter or fitted attribute cannot be written without
            pickle (a ``RandomState`` instance as ``random_state``: set an
            int, which changes none of a fitted model's answers).

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
        ...     model.save(path, include_training_matrix=True)
        ...     loaded = load_model(path)
        >>> bool((loaded.recommend([0, 1]) == model.recommend([0, 1])).all())
        True
        >>> bool((loaded.transform(X[:5]) == model.transform(X[:5])).all())
        True
        """
        from ._persistence import save_model

        save_model(self, file, include_training_matrix=include_training_matrix,
                   compress=compress)

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
        _, items = self._nearest_items(
            self._fold_in(data, values), n_items, (data.indptr, data.indices)
        )
        return self._labels("item", items)

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

    def _lookup(self, kind):
        """The ``IdLookup`` of the fitted user or item ids, built on first use."""
        ids = self.user_ids_ if kind == "user" else self.item_ids_
        lookups = self.__dict__.setdefault("_id_lookups", {})
        if kind not in lookups or lookups[kind].ids is not ids:
            lookups[kind] = IdLookup(ids)
        return lookups[kind]

    def _user_rows(self, user_ids, fix):
        """Rows of the given users: ids of fit's table, or row numbers."""
        if self.user_ids_ is None:
            return validate_ids(user_ids, self.user_embeddings_.shape[0], "user_ids", fix)
        return self._lookup("user").positions(user_ids, "user_ids", fix)

    def _item_columns(self, item_ids, what, fix):
        """Columns of the given items: ids of fit's table, or column numbers."""
        if self.item_ids_ is None:
            return validate_ids(item_ids, self.item_embeddings_.shape[0], what, fix)
        return self._lookup("item").positions(item_ids, what, fix)

    def _labels(self, kind, positions):
        """Ids of ``positions`` (rows for ``kind="user"``, columns for
        ``"item"``; -1: none) when fitted on an encoded table, else the
        positions themselves."""
        ids = self.user_ids_ if kind == "user" else self.item_ids_
        return positions if ids is None else self._lookup(kind).labels(positions)

    def _fold_in(self, data, values):
        """Vectors of new users (``Interactions``, X's ``values``): see ``transform``."""
        weights = fold_in_weights(values, self.interaction_weight, self._state.value_scales)
        return _engine.fold_in(self._state, data, self, self._item_counts, weights)


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


def _plus_columns(rows, columns):
    """CSR structure of ``rows`` (a CSR matrix) with ``columns`` added to every row."""
    n_rows, n_columns = rows.shape[0], columns.size
    added = sparse.csr_matrix(
        (np.ones(n_rows * n_columns, np.float32), np.tile(columns, n_rows),
         np.arange(0, n_rows * n_columns + 1, n_columns)), shape=rows.shape)
    union = (rows + added).tocsr()
    return union.indptr, union.indices


def _themselves(rows):
    """CSR structure that excludes, for the query of each of ``rows``, that row."""
    return np.arange(rows.shape[0] + 1, dtype=np.int64), rows.astype(np.int32)


def _nearest_others(vectors, rows, k):
    """The ``k`` rows of ``vectors`` nearest to each of ``rows``, never the row itself."""
    return top_k_nearest(vectors[rows], vectors, k, _themselves(rows))


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
