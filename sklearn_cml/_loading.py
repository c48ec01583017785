"""Reading a model file back: a CMLRecommender, or the RecommenderPipeline it came in.

Apart from ``_estimator`` so that the estimator does not import the
pipeline module, which builds on it.
"""

from . import _persistence
from ._estimator import CMLRecommender
from ._pipeline import encoder_of, pipeline_of

__all__ = ["load_model"]


def load_model(file):
    """Read a model written by ``CMLRecommender.save`` or ``RecommenderPipeline.save``.

    Parameters
    ----------
    file : str, path-like or binary file object
        The model file.

    Returns
    -------
    model : CMLRecommender or RecommenderPipeline
        What was saved, fitted, answering every query exactly as it did:
        a ``RecommenderPipeline`` (its ``InteractionEncoder`` and its
        ``CMLRecommender``) for a file its ``save`` wrote, which takes
        tables and ids as it did.  A model saved with
        ``include_optimizer_state=True`` continues training with
        ``partial_fit`` as the saved one would; any other refuses to.

    Raises
    ------
    ValueError
        If the file is not a model file, was written by a newer version of
        the format, or fails any check of its arrays.

    Examples
    --------
    >>> import io
    >>> from sklearn_cml import CMLRecommender, load_model
    >>> from sklearn_cml.datasets import make_interactions
    >>> X = make_interactions(n_users=100, n_items=60, random_state=0)
    >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0).fit(X)
    >>> file = io.BytesIO()
    >>> model.save(file)
    >>> loaded = load_model(io.BytesIO(file.getvalue()))
    >>> bool((loaded.recommend([0, 1]) == model.recommend([0, 1])).all())
    True
    """
    estimator, model, training, encoder = _persistence.read_model(file, _estimator_of,
                                                                  encoder_of)
    estimator.n_features_in_ = model.n_items
    if model.item_names is not None:
        estimator.feature_names_in_ = model.item_names
    # Without the optimiser state (training None) it answers queries but
    # cannot continue training.
    estimator._attach(training, model)
    try:
        estimator._check_fitted()
    except ValueError as error:
        raise _persistence.corrupt(f"its parameters do not fit its arrays ({error})") from error
    return estimator if encoder is None else pipeline_of(encoder, estimator)


def _estimator_of(params):
    """A CMLRecommender of ``params``, validated."""
    estimator = CMLRecommender(**params)
    estimator._validate_params()
    return estimator
