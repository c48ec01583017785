"""Model selection with scikit-learn on real data (MovieLens-100K).

Skipped, with the reason printed, when the shared datasets are absent.
Long fits (a grid search, cross-validation): in the slow group (``-m slow``).
"""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Binarizer

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import load_movielens

pytestmark = pytest.mark.slow

PARAMS = dict(n_epochs=10, n_negatives=10, top_k=50, random_state=0)


@pytest.fixture(scope="module")
def ratings(data_dir):
    return load_movielens(data_dir / "ml-100k").interactions


@pytest.fixture(scope="module")
def liked(ratings):
    return (ratings >= 4).astype(np.float32).tocsr()


def test_grid_search_picks_the_clearly_better_settings(liked):
    search = GridSearchCV(
        CMLRecommender(**PARAMS, loss="hinge"),  # the margin is the hinge's
        {"margin": [0.05, 1.0], "n_components": [2, 32]},
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(liked)
    # A 2-d space and a margin of 0.05 are each clearly worse.
    assert search.best_params_ == {"margin": 1.0, "n_components": 32}
    recalls = search.cv_results_["mean_test_score"]
    assert np.all((recalls > 0.1) & (recalls < 1.0))
    assert recalls.max() > np.sort(recalls)[-2] + 0.05
    assert search.best_score_ == recalls.max()


def test_cross_val_score_over_users(liked):
    scores = cross_val_score(CMLRecommender(n_components=32, **PARAMS), liked, cv=3)
    assert scores.shape == (3,) and np.all((scores > 0.3) & (scores <= 1.0))


def test_pipeline_binarizes_raw_ratings(ratings, liked):
    pipeline = make_pipeline(Binarizer(threshold=3.5), CMLRecommender(n_components=32, **PARAMS))
    pipeline.fit(ratings)
    assert pipeline.predict(ratings[:5]).shape == (5, 50)
    direct = CMLRecommender(n_components=32, **PARAMS).fit(liked)
    np.testing.assert_array_equal(pipeline[-1].item_embeddings_, direct.item_embeddings_)
    assert pipeline.score(ratings[:200]) == direct.score(liked[:200]) > 0.3
