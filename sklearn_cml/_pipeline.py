"""A Pipeline that ends in a CMLRecommender, and answers its queries itself.

``make_pipeline(InteractionEncoder(...), CMLRecommender())`` takes tables,
but its query methods live on its last step (``pipeline[-1].recommend``),
and only pickle keeps it whole.  ``RecommenderPipeline`` is that Pipeline
with the final recommender's id queries as its own methods, and a ``save``
that writes the encoder and the model to one model file, which
``load_model`` reads back into a pipeline without pickle.
"""

import numpy as np
from sklearn.pipeline import Pipeline, _name_estimators
from sklearn.utils._available_if import available_if
from sklearn.utils.validation import check_is_fitted

from . import _persistence
from ._docs import DocLinkMixin
from ._estimator import CMLRecommender
from ._ids import as_ids
from .preprocessing import InteractionEncoder

__all__ = ["RecommenderPipeline", "make_recommender"]


def _final_step_has(name):
    """For ``available_if``: the method exists when the final step has it."""

    def check(pipeline):
        getattr(pipeline._final_estimator, name)  # its AttributeError, if any
        return True

    return check


class RecommenderPipeline(DocLinkMixin, Pipeline):
    """A Pipeline of an ``InteractionEncoder`` and a ``CMLRecommender``, queried by ids.

    A scikit-learn :class:`~sklearn.pipeline.Pipeline` in every respect
    (``fit``, ``predict``, ``transform`` and ``score`` take tables;
    ``clone``, ``get_params``, ``set_params``, ``GridSearchCV`` and pickle
    work as for any Pipeline), with the final recommender's queries as its
    own methods: ``recommend``, ``kneighbors_items``, ``similar_users``,
    ``pair_distances`` and ``explain`` take the table's user and item ids
    and return item ids.  ``save`` writes the whole pipeline to one file that
    :func:`~sklearn_cml.load_model` reads back without pickle.
    :func:`make_recommender` builds one and names its steps.

    Parameters
    ----------
    steps : list of (str, estimator) tuples
        As for :class:`~sklearn.pipeline.Pipeline`; the last step is the
        recommender.  ``save`` needs exactly an ``InteractionEncoder``
        then a ``CMLRecommender``.
    transform_input, memory, verbose
        As for :class:`~sklearn.pipeline.Pipeline`.

    See Also
    --------
    make_recommender : build one, naming the steps.

    Examples
    --------
    >>> from sklearn_cml import CMLRecommender, RecommenderPipeline
    >>> from sklearn_cml.preprocessing import InteractionEncoder
    >>> table = [("ann", "Heat"), ("ann", "Alien"), ("bob", "Heat"), ("bob", "Brazil"),
    ...          ("cid", "Alien"), ("cid", "Brazil"), ("dee", "Heat")]
    >>> model = RecommenderPipeline([
    ...     ("encoder", InteractionEncoder()),
    ...     ("cml", CMLRecommender(n_components=4, n_epochs=2, random_state=0)),
    ... ]).fit(table)
    >>> sorted(model.recommend(["dee"], n_items=2)[0].tolist())  # ids in, ids out
    ['Alien', 'Brazil']
    """

    @available_if(_final_step_has("recommend"))
    def recommend(self, user_ids, n_items=10, **options):
        """Recommend items to users of the training table, by their ids.

        The final step's ``CMLRecommender.recommend``; see it for
        ``options`` (``filter_seen``, ``return_distance``, ``items``,
        ``filter_items``, ``user_items``, ``item_features``).

        Parameters
        ----------
        user_ids : id or array-like of shape (n_queries,)
            Users of the table given to ``fit``.
        n_items : int, default=10
            Number of items per user.
        **options
            Passed on to ``CMLRecommender.recommend``.

        Returns
        -------
        items : ndarray of shape (n_queries, n_items)
            Item ids, nearest first (with ``return_distance=True``, the
            distances first).

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender, make_recommender
        >>> from sklearn_cml.preprocessing import InteractionEncoder
        >>> table = [("ann", 1), ("ann", 2), ("bob", 2), ("bob", 3), ("cid", 1)]
        >>> model = make_recommender(
        ...     InteractionEncoder(),
        ...     CMLRecommender(n_components=4, n_epochs=2, random_state=0)).fit(table)
        >>> sorted(model.recommend(["cid"], n_items=2)[0].tolist())
        [2, 3]
        """
        check_is_fitted(self)
        return self._final_estimator.recommend(user_ids, n_items, **options)

    @available_if(_final_step_has("kneighbors_items"))
    def kneighbors_items(self, item_ids=None, n_neighbors=10, **options):
        """Find the items nearest to given items, by their ids.

        The final step's ``CMLRecommender.kneighbors_items``; see it for
        ``options`` (``return_distance``, ``item_features``).

        Parameters
        ----------
        item_ids : id or array-like, default=None
            Items of the table given to ``fit``; None means every item.
        n_neighbors : int, default=10
            Number of neighbours per item.
        **options
            Passed on to ``CMLRecommender.kneighbors_items``.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors), float32
            Unless ``return_distance=False``.
        neighbors : ndarray of shape (n_queries, n_neighbors)
            Item ids, nearest first.

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender, make_recommender
        >>> from sklearn_cml.preprocessing import InteractionEncoder
        >>> table = [("ann", 1), ("ann", 2), ("bob", 2), ("bob", 3), ("cid", 1)]
        >>> model = make_recommender(
        ...     InteractionEncoder(),
        ...     CMLRecommender(n_components=4, n_epochs=2, random_state=0)).fit(table)
        >>> sorted(model.kneighbors_items([1], n_neighbors=2, return_distance=False)[0].tolist())
        [2, 3]
        """
        check_is_fitted(self)
        return self._final_estimator.kneighbors_items(item_ids, n_neighbors, **options)

    @available_if(_final_step_has("similar_users"))
    def similar_users(self, user_ids=None, n_users=10, **options):
        """Find the users nearest to given users, by their ids.

        The final step's ``CMLRecommender.similar_users``.

        Parameters
        ----------
        user_ids : id or array-like, default=None
            Users of the table given to ``fit``; None means every user.
        n_users : int, default=10
            Number of neighbours per user.
        **options
            Passed on to ``CMLRecommender.similar_users`` (``return_distance``).

        Returns
        -------
        distances : ndarray of shape (n_queries, n_users), float32
            Unless ``return_distance=False``.
        neighbors : ndarray of shape (n_queries, n_users)
            User ids, nearest first.

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender, make_recommender
        >>> from sklearn_cml.preprocessing import InteractionEncoder
        >>> table = [("ann", 1), ("ann", 2), ("bob", 2), ("bob", 3), ("cid", 1)]
        >>> model = make_recommender(
        ...     InteractionEncoder(),
        ...     CMLRecommender(n_components=4, n_epochs=2, random_state=0)).fit(table)
        >>> sorted(model.similar_users(["ann"], n_users=2, return_distance=False)[0].tolist())
        ['bob', 'cid']
        """
        check_is_fitted(self)
        return self._final_estimator.similar_users(user_ids, n_users, **options)

    @available_if(_final_step_has("pair_distances"))
    def pair_distances(self, user_ids, item_ids):
        """Euclidean distance of each given (user id, item id) pair.

        The final step's ``CMLRecommender.pair_distances``.

        Parameters
        ----------
        user_ids : array-like of shape (n_pairs,)
            Users of the table given to ``fit``.
        item_ids : array-like of shape (n_pairs,)
            Items of that table.

        Returns
        -------
        distances : ndarray of shape (n_pairs,), float32

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender, make_recommender
        >>> from sklearn_cml.preprocessing import InteractionEncoder
        >>> table = [("ann", 1), ("ann", 2), ("bob", 2), ("bob", 3), ("cid", 1)]
        >>> model = make_recommender(
        ...     InteractionEncoder(),
        ...     CMLRecommender(n_components=4, n_epochs=2, random_state=0)).fit(table)
        >>> model.pair_distances(["ann", "bob"], [3, 1]).shape
        (2,)
        """
        check_is_fitted(self)
        return self._final_estimator.pair_distances(user_ids, item_ids)

    @available_if(_final_step_has("explain"))
    def explain(self, user_id, item_id, n=5, *, user_items=None):
        """Why an item is near a user, by ids: the user's items that pull it there.

        The final step's ``CMLRecommender.explain``, which defines the
        shares; ids in and out.

        Parameters
        ----------
        user_id : id or None
            A user of the table given to ``fit``; None for a new user,
            given by ``user_items``.
        item_id : id
            An item of that table, typically one that ``recommend``
            returned.
        n : int, default=5
            Items returned at most.
        user_items : table, default=None
            The user's rows, as the pipeline's first steps take them (the
            columns of the table given to ``fit``), encoded by them: a new
            user's (``user_id=None``), or a known user's current ones,
            which replace those seen in ``fit``.  The rows of one user.

        Returns
        -------
        explanation : :class:`~sklearn.utils.Bunch`
            As ``CMLRecommender.explain`` returns it: ``neighbors`` (item
            ids), ``shares``, ``distances``, ``other_share``, ``distance``
            and ``temperature``.

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender, make_recommender
        >>> from sklearn_cml.preprocessing import InteractionEncoder
        >>> table = [("ann", "Heat"), ("ann", "Alien"), ("bob", "Heat"), ("bob", "Brazil"),
        ...          ("cid", "Alien"), ("cid", "Brazil"), ("dee", "Heat")]
        >>> model = make_recommender(
        ...     InteractionEncoder(),
        ...     CMLRecommender(n_components=4, n_epochs=2, random_state=0)).fit(table)
        >>> why = model.explain("ann", "Brazil")
        >>> sorted(why.neighbors.tolist())  # ann's items
        ['Alien', 'Heat']
        >>> why = model.explain(None, "Heat", user_items=[("eve", "Alien"), ("eve", "Brazil")])
        >>> sorted(why.neighbors.tolist())  # eve's items
        ['Alien', 'Brazil']
        """
        check_is_fitted(self)
        if user_items is not None:
            if len(self.steps) > 1:
                user_items = self[:-1].transform(user_items)
            table_users = getattr(user_items, "user_ids", None)
            if user_items.shape[0] != 1:
                raise ValueError(
                    f"user_items has the rows of {user_items.shape[0]} users: give the rows "
                    "of one user, the one to explain."
                )
            if user_id is not None and table_users is not None and \
                    not np.array_equal(table_users, as_ids([user_id], "user_id")):
                raise ValueError(
                    f"user_items holds the rows of user {table_users.tolist()[0]!r}, not of "
                    f"{user_id!r}: give the rows of the user to explain."
                )
        return self._final_estimator.explain(user_id, item_id, n, user_items=user_items)

    @available_if(_final_step_has("partial_fit"))
    def partial_fit(self, X, y=None, **fit_params):
        """Update the fitted pipeline with a table that may hold new users and items.

        Each step before the last learns from ``X`` with its own
        ``partial_fit`` where it has one (an ``InteractionEncoder`` learns
        the new ids and appends them, so known ids keep their rows and
        columns) and transforms it; the final step then runs
        ``partial_fit`` on the result with ``fit_params``.  A
        ``CMLRecommender`` places the new users and items and trains
        (``CMLRecommender.partial_fit``).  On an unfitted pipeline this
        fits it.  If a step fails, every step is left as it was.

        Parameters
        ----------
        X : table
            One row per interaction, as for ``fit``.
        y : None
            Ignored; present for API consistency.
        **fit_params
            Keyword arguments of the final step's ``partial_fit``
            (``n_epochs``, ``item_features``, ``sample_weight``).

        Returns
        -------
        self : RecommenderPipeline

        Examples
        --------
        >>> from sklearn_cml import CMLRecommender, make_recommender
        >>> from sklearn_cml.preprocessing import InteractionEncoder
        >>> table = [("ann", 1), ("ann", 2), ("bob", 2), ("bob", 3), ("cid", 1)]
        >>> model = make_recommender(
        ...     InteractionEncoder(),
        ...     CMLRecommender(n_components=4, n_epochs=2, random_state=0)).fit(table)
        >>> model = model.partial_fit(table + [("dee", 4), ("dee", 1), ("ann", 4)], n_epochs=2)
        >>> model[-1].user_ids_.tolist(), model[-1].item_ids_.tolist()
        (['ann', 'bob', 'cid', 'dee'], [1, 2, 3, 4])
        """
        steps = [step for _, step in self.steps if step not in (None, "passthrough")]
        saved = [dict(step.__dict__) for step in steps[:-1]]
        try:
            transformed = X
            for step in steps[:-1]:
                if hasattr(step, "partial_fit"):
                    step.partial_fit(transformed)
                transformed = step.transform(transformed)
            steps[-1].partial_fit(transformed, **fit_params)
        except BaseException:
            # The final step restores itself; the earlier ones are put back
            # here, so that the encoder's ids stay those of the model.
            for step, state in zip(steps[:-1], saved):
                step.__dict__.clear()
                step.__dict__.update(state)
            raise
        return self

    def save(self, file, *, include_training_matrix=True, compress=False,
             include_optimizer_state=False):
        """Write the fitted pipeline to one file that ``sklearn_cml.load_model`` reads.

        The file is a model file (see ``CMLRecommender.save``) that also
        holds the encoder: its parameters and its user and item ids.
        ``load_model`` returns the pipeline, which takes tables and ids as
        this one does, without running code from the file.  The
        Pipeline's own parameters (``memory``, ``verbose``,
        ``transform_input``) are not kept: they change no answer.

        Parameters
        ----------
        file : str, path-like or binary file object
            Where to write, as for ``CMLRecommender.save``.
        include_training_matrix : bool, default=True
            Keep the training matrix, which ``recommend`` reads to leave
            out the items each user has seen (see ``CMLRecommender.save``).
        compress : bool, default=False
            Compress the arrays (zip deflate).
        include_optimizer_state : bool, default=False
            Keep the model's optimiser state, so that the loaded model
            (``loaded[-1]``) continues training with ``partial_fit`` as
            this one would (see ``CMLRecommender.save``).

        Raises
        ------
        ValueError
            If the pipeline is not an ``InteractionEncoder`` then a
            ``CMLRecommender`` (save its last step alone, or pickle it), or
            cannot be saved as ``CMLRecommender.save`` says.

        Examples
        --------
        >>> import io
        >>> from sklearn_cml import CMLRecommender, load_model, make_recommender
        >>> from sklearn_cml.preprocessing import InteractionEncoder
        >>> table = [("ann", 1), ("ann", 2), ("bob", 2), ("bob", 3), ("cid", 1)]
        >>> model = make_recommender(
        ...     InteractionEncoder(),
        ...     CMLRecommender(n_components=4, n_epochs=2, random_state=0)).fit(table)
        >>> file = io.BytesIO()
        >>> model.save(file)
        >>> loaded = load_model(io.BytesIO(file.getvalue()))
        >>> type(loaded).__name__
        'RecommenderPipeline'
        >>> loaded.recommend(["cid"]).tolist() == model.recommend(["cid"]).tolist()
        True
        """
        check_is_fitted(self)
        kinds = [type(step) for _, step in self.steps]
        if len(kinds) != 2 or kinds[0] is not InteractionEncoder or \
                not issubclass(kinds[1], CMLRecommender):
            raise ValueError(
                "A pipeline file holds an InteractionEncoder then a CMLRecommender; this "
                f"pipeline's steps are {[kind.__name__ for kind in kinds]}. Save its last "
                "step alone (pipeline[-1].save), or pickle the pipeline."
            )
        (encoder_name, encoder), (model_name, model) = self.steps
        check_is_fitted(encoder)
        fitted = _persistence.FittedEncoder((encoder_name, model_name),
                                            encoder.get_params(deep=False),
                                            encoder.user_ids_, encoder.item_ids_)
        model._write(file, include_training_matrix, compress, fitted,
                     include_optimizer_state=include_optimizer_state)


def make_recommender(*steps, memory=None, transform_input=None, verbose=False):
    """Build a :class:`RecommenderPipeline`, naming its steps as ``make_pipeline`` does.

    Each step is named after its class in lower case, so that the
    parameters are ``interactionencoder__...`` and
    ``cmlrecommender__...``, as with :func:`~sklearn.pipeline.make_pipeline`.

    Parameters
    ----------
    *steps : estimators
        The steps, the last one the recommender; typically an
        ``InteractionEncoder`` and a ``CMLRecommender``.
    memory, transform_input, verbose
        As for :func:`~sklearn.pipeline.make_pipeline`.

    Returns
    -------
    pipeline : RecommenderPipeline

    Examples
    --------
    >>> from sklearn_cml import CMLRecommender, make_recommender
    >>> from sklearn_cml.preprocessing import InteractionEncoder
    >>> model = make_recommender(InteractionEncoder("user", "movie"), CMLRecommender())
    >>> [name for name, _ in model.steps]
    ['interactionencoder', 'cmlrecommender']
    """
    return RecommenderPipeline(_name_estimators(steps), memory=memory,
                               transform_input=transform_input, verbose=verbose)


def encoder_of(params):
    """An InteractionEncoder of ``params``, validated (for ``load_model``)."""
    encoder = InteractionEncoder(**params)
    encoder._validate_params()
    return encoder


def pipeline_of(fitted, model):
    """The ``RecommenderPipeline`` of a pipeline file's ``FittedEncoder`` and
    loaded model (for ``load_model``)."""
    encoder = encoder_of(fitted.params)
    encoder._keep(fitted.user_ids, fitted.item_ids)
    pipeline = RecommenderPipeline(list(zip(fitted.step_names, (encoder, model))))
    try:
        pipeline._validate_steps()  # the names, as Pipeline.fit checks them
    except (TypeError, ValueError) as error:
        raise _persistence.corrupt(f"its pipeline's step names are not valid ({error})") \
            from error
    return pipeline
