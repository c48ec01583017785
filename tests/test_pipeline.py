"""RecommenderPipeline: a Pipeline of an encoder and a recommender, queried by ids.

Its query methods must answer exactly as its last step's, and it must stay
a Pipeline for scikit-learn's tools (clone, parameters, search, pickle).
Saving and loading it is tested with the other model files, in
test_persistence.py.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_cml import CMLRecommender, RecommenderPipeline, make_recommender
from sklearn_cml.preprocessing import InteractionEncoder

SMALL = dict(n_components=4, n_epochs=2, fold_in_epochs=2, top_k=3, random_state=0)


def _table():
    rng = np.random.default_rng(0)
    return [(f"user-{user}", int(item) * 10) for user in range(40)
            for item in rng.choice(15, 4, replace=False)]


TABLE = _table()
USERS = ["user-3", "user-17", "user-0"]
ITEMS = [10, 70, 140]


def query_answers(model):
    """Every id query, by name, on a pipeline or on a fitted CMLRecommender."""
    return {
        "recommend": model.recommend(USERS, n_items=4, return_distance=True),
        "recommend, unfiltered": model.recommend(USERS, 3, filter_seen=False),
        "kneighbors_items": model.kneighbors_items(ITEMS, n_neighbors=3),
        "kneighbors_items, every item": model.kneighbors_items(n_neighbors=2,
                                                               return_distance=False),
        "similar_users": model.similar_users(USERS, n_users=2),
        "pair_distances": model.pair_distances(USERS, ITEMS),
    }


@pytest.fixture(scope="module")
def fitted():
    return make_recommender(InteractionEncoder(), CMLRecommender(**SMALL)).fit(TABLE)


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        for x, y in zip(np.atleast_1d(a[name]), np.atleast_1d(b[name])):
            np.testing.assert_array_equal(x, y, err_msg=name, strict=True)


def test_make_recommender_names_the_steps_as_make_pipeline_does():
    steps = (InteractionEncoder("u", "i"), CMLRecommender())
    model = make_recommender(*steps, verbose=True)
    assert type(model) is RecommenderPipeline and isinstance(model, Pipeline)
    assert [name for name, _ in model.steps] == [name for name, _ in make_pipeline(*steps).steps]
    assert model.verbose is True and model[0] is steps[0]


def test_queries_answer_with_ids_as_the_last_step_does(fitted):
    answers = query_answers(fitted)
    assert_same(answers, query_answers(fitted[-1]))
    # Ids out: items of the table, users of the table.
    assert set(answers["recommend"][1].ravel().tolist()) <= {item for _, item in TABLE}
    assert set(answers["similar_users"][1].ravel().tolist()) <= {user for user, _ in TABLE}


def test_tables_go_through_the_encoder_as_in_a_pipeline(fitted):
    plain = make_pipeline(InteractionEncoder(), CMLRecommender(**SMALL)).fit(TABLE)
    new = [("someone", 10), ("someone", 20), ("another", 30)]
    np.testing.assert_array_equal(fitted.predict(new), plain.predict(new), strict=True)
    np.testing.assert_array_equal(fitted.transform(new), plain.transform(new), strict=True)
    assert fitted.score(TABLE[:40]) == plain.score(TABLE[:40])
    assert_same(query_answers(fitted), query_answers(plain[-1]))


def test_an_unknown_id_is_refused_by_name(fitted):
    with pytest.raises(ValueError, match="not seen in fit: 'nobody'"):
        fitted.recommend(["nobody"])


def test_an_unfitted_pipeline_says_to_fit_it():
    model = make_recommender(InteractionEncoder(), CMLRecommender())
    for query in (lambda: model.recommend(["a"]), lambda: model.similar_users(["a"]),
                  lambda: model.kneighbors_items([1]), lambda: model.pair_distances(["a"], [1]),
                  lambda: model.save("unused.npz")):
        with pytest.raises(NotFittedError, match="RecommenderPipeline.*fit"):
            query()


def test_queries_exist_only_when_the_last_step_has_them():
    model = make_recommender(InteractionEncoder(), FunctionTransformer())
    for name in ("recommend", "kneighbors_items", "similar_users", "pair_distances"):
        assert not hasattr(model, name)
    assert hasattr(make_recommender(InteractionEncoder(), CMLRecommender()), "recommend")


def test_clone_parameters_and_pickle(fitted):
    twin = clone(fitted)
    assert type(twin) is RecommenderPipeline
    assert twin.get_params()["cmlrecommender__n_components"] == SMALL["n_components"]
    twin.set_params(cmlrecommender__n_components=6, interactionencoder__handle_unknown="ignore")
    assert twin[-1].n_components == 6 and twin[0].handle_unknown == "ignore"
    assert fitted[-1].n_components == SMALL["n_components"]
    unpickled = pickle.loads(pickle.dumps(fitted))
    assert type(unpickled) is RecommenderPipeline
    assert_same(query_answers(fitted), query_answers(unpickled))
    assert type(fitted[:1]) is RecommenderPipeline  # a slice keeps the class


def test_grid_search_refits_a_pipeline_that_answers_by_ids():
    users = np.array([user for user, _ in TABLE])
    search = GridSearchCV(
        make_recommender(InteractionEncoder(handle_unknown="ignore"), CMLRecommender(**SMALL)),
        {"cmlrecommender__n_components": [2, 4]}, cv=GroupKFold(2),
    ).fit(TABLE, groups=users)
    best = search.best_estimator_
    assert type(best) is RecommenderPipeline
    assert best[-1].n_components == search.best_params_["cmlrecommender__n_components"]
    np.testing.assert_array_equal(best.recommend(USERS), best[-1].recommend(USERS),
                                  strict=True)
