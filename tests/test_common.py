"""scikit-learn's estimator contract, checked by its own test suite."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_cml import CMLRecommender

# Small enough to be quick; top_k=1 makes predict return the (n_samples, 1)
# array that the checks expect of a multi-output estimator.
_SMALL = dict(n_components=4, n_negatives=2, n_epochs=3, fold_in_epochs=3, top_k=1)
_Y_IS_HELD_OUT = (
    "score's y is the matrix of each row's held-out items; a label vector is "
    "rejected rather than silently ignored"
)
_PREDICT_RETURNS_TOP_K = (
    "predict returns top_k items per row (50 by default); the check asserts that "
    "it returns one column, the shape of the y it made up"
)

_WEIGHT_PER_INTERACTION = (
    "a sample_weight of X's shape holds one weight per interaction (user, item), "
    "which the check takes for a wrong shape"
)
_WEIGHT_IS_NOT_REPETITION = (
    "a user's weight scales the terms of its pairs; a repeated row is another user, "
    "with a vector of its own, so the fitted vectors differ"
)
EXPECTED_FAILURES = {
    "check_fit_score_takes_y": _Y_IS_HELD_OUT,
    "check_pipeline_consistency": _Y_IS_HELD_OUT,
    "check_sample_weights_shape": _WEIGHT_PER_INTERACTION,
    "check_sample_weight_equivalence_on_dense_data": _WEIGHT_IS_NOT_REPETITION,
    "check_sample_weight_equivalence_on_sparse_data": _WEIGHT_IS_NOT_REPETITION,
}


def _expected_failed_checks(estimator):
    if estimator.top_k == 1:
        return EXPECTED_FAILURES
    return {**EXPECTED_FAILURES, "check_estimator_sparse_array": _PREDICT_RETURNS_TOP_K,
            "check_estimator_sparse_matrix": _PREDICT_RETURNS_TOP_K}


@parametrize_with_checks(
    [CMLRecommender(**_SMALL, random_state=0), CMLRecommender()],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
