"""scikit-learn's estimator contract, checked by its own test suite."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_cml import CMLRecommender

# Small enough for the 3-to-10-item matrices the checks build; top_k=1 makes
# predict return the (n_samples, 1) array that multi-output checks expect.
_SMALL = dict(n_components=4, n_negatives=2, n_epochs=3, fold_in_epochs=3, top_k=1)
_Y_IS_HELD_OUT = (
    "score's y is the matrix of each row's held-out items; a label vector is "
    "rejected rather than silently ignored"
)

EXPECTED_FAILURES = {
    "check_fit_score_takes_y": _Y_IS_HELD_OUT,
    "check_pipeline_consistency": _Y_IS_HELD_OUT,
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES


@parametrize_with_checks(
    [CMLRecommender(**_SMALL, random_state=0)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
