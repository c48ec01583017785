"""explain: the user's items that pull a recommended item near the user.

The shares are checked against a brute force (plain loops over the user's
items, float64), for both losses, with and without ids, for known and new
users and through the pipeline; their invariants with hypothesis; and a
planted case where the recommended item's cluster-mates must explain it.
"""

import io
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

from sklearn_cml import CMLRecommender, load_model, make_recommender
from sklearn_cml._explain import explanation
from sklearn_cml.datasets import make_interactions
from sklearn_cml.preprocessing import InteractionEncoder

SMALL = dict(n_components=8, n_epochs=6, fold_in_epochs=5, random_state=0)
# 700 users x 20 items: enough held-out pairs (200) for temperature="auto"
# to be measured, so the resolved temperature differs from its start, 0.3.
X = make_interactions(n_users=700, n_items=100, random_state=0)
# Users with 4 to 76 items (user 1 has one).
USERS = [2, 4, 6, 8]


def brute_force(model, user_vector, user_items, item, temperature):
    """Every user item's share, as defined, with plain loops in float64.

    Returns ``(items, shares, distances, distance)``, largest share first
    (ties by column).
    """
    items = [int(j) for j in user_items if int(j) != int(item)]
    vectors = model.item_embeddings_.astype(np.float64)
    target = [float(x) for x in vectors[item]]
    squared = []
    for j in items:
        squared.append(sum((float(a) - b) ** 2 for a, b in zip(vectors[j], target)))
    if temperature is None:  # the hinge: the median squared distance
        ordered = sorted(squared)
        middle = len(ordered) // 2
        temperature = (ordered[middle] if len(ordered) % 2
                       else (ordered[middle - 1] + ordered[middle]) / 2)
    logits = [-d / temperature for d in squared]
    top = max(logits)
    weights = [math.exp(logit - top) for logit in logits]
    total = sum(weights)
    shares = [w / total for w in weights]
    order = sorted(range(len(items)), key=lambda k: (-shares[k], items[k]))
    distance = math.sqrt(sum((float(a) - b) ** 2 for a, b in zip(user_vector, target)))
    return ([items[k] for k in order], [shares[k] for k in order],
            [math.sqrt(squared[k]) for k in order], distance)


def expected_temperature(model):
    if model.loss == "hinge":
        return None
    return model.resolved_params_.get("temperature", model.temperature)


def assert_matches(why, expected, n, item_labels=None):
    items, shares, distances, distance = expected
    labels = items[:n] if item_labels is None else [item_labels[j] for j in items[:n]]
    assert why.neighbors.tolist() == labels
    np.testing.assert_allclose(why.shares, shares[:n], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(why.distances, distances[:n], rtol=1e-9, atol=1e-12)
    assert why.other_share == pytest.approx(sum(shares[n:]), rel=1e-9, abs=1e-15)
    assert why.distance == pytest.approx(distance, rel=1e-6)


@pytest.fixture(scope="module", params=["softmax", "hinge"])
def model(request):
    return CMLRecommender(loss=request.param, **SMALL).fit(X)


def test_softmax_uses_the_resolved_temperature():
    model = CMLRecommender(**SMALL).fit(X)
    measured = model.resolved_params_["temperature"]
    assert measured != 0.3  # measured, not the starting value
    assert model.explain(2, 0).temperature == measured
    model.set_params(temperature=0.7)
    assert model.explain(2, 0).temperature == 0.7


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("n", [1, 3, 1000])
def test_known_users_match_the_brute_force(model, user, n):
    user_items = X[user].indices
    recommended = model.recommend([user], n_items=2)[0]
    for item in [*recommended, user_items[0]]:  # including one of the user's own
        why = model.explain(user, item, n=n)
        expected = brute_force(model, model.user_embeddings_[user], user_items, item,
                               expected_temperature(model))
        assert_matches(why, expected, n)
        assert item not in why.neighbors.tolist()


def test_hinge_temperature_is_the_median_squared_distance():
    model = CMLRecommender(loss="hinge", **SMALL).fit(X)
    user, item = 2, 5
    items = [j for j in X[user].indices if j != item]
    squared = ((model.item_embeddings_[items].astype(np.float64)
                - model.item_embeddings_[item]) ** 2).sum(axis=1)
    assert model.explain(user, item).temperature == pytest.approx(np.median(squared))


def test_new_user_matches_the_brute_force(model):
    row = X[3]
    item = int(model.predict(row, n_items=1)[0, 0])
    for user_items in (row, row.toarray(), row.toarray()[0]):
        why = model.explain(None, item, n=4, user_items=user_items)
        expected = brute_force(model, model.transform(row)[0], row.indices, item,
                               expected_temperature(model))
        assert_matches(why, expected, 4)


def test_known_user_with_current_items(model):
    current = X[5].toarray()
    current[0, X[6].indices] = 1.0  # items taken since fit
    why = model.explain(5, 7, n=6, user_items=current)
    expected = brute_force(model, model.user_embeddings_[5], np.flatnonzero(current[0]), 7,
                           expected_temperature(model))
    assert_matches(why, expected, 6)


def _id_table():
    coo = X.tocoo()
    return [(f"user-{u}", f"item-{j}") for u, j in zip(coo.row, coo.col)]


@pytest.fixture(scope="module")
def pipeline():
    return make_recommender(InteractionEncoder(), CMLRecommender(**SMALL)).fit(_id_table())


def test_ids_match_the_brute_force(pipeline):
    model = pipeline[-1]
    encoded = pipeline[0].transform(_id_table())
    for user_id in [f"user-{user}" for user in USERS]:
        row = int(np.flatnonzero(model.user_ids_ == user_id)[0])
        recommended = pipeline.recommend([user_id], n_items=1)[0, 0]
        column = int(np.flatnonzero(model.item_ids_ == recommended)[0])
        expected = brute_force(model, model.user_embeddings_[row], encoded[row].indices,
                               column, expected_temperature(model))
        for why in (pipeline.explain(user_id, recommended, n=3),
                    model.explain(user_id, recommended, n=3)):
            assert_matches(why, expected, 3, item_labels=model.item_ids_)


def test_pipeline_new_user_from_table_rows(pipeline):
    model = pipeline[-1]
    rows = [("newcomer", "item-3"), ("newcomer", "item-17"), ("newcomer", "item-42")]
    placed = pipeline.transform(rows)[0]
    columns = [int(np.flatnonzero(model.item_ids_ == item)[0]) for _, item in rows]
    target = int(np.flatnonzero(model.item_ids_ == "item-8")[0])
    why = pipeline.explain(None, "item-8", n=2, user_items=rows)
    expected = brute_force(model, placed, sorted(columns), target, expected_temperature(model))
    assert_matches(why, expected, 2, item_labels=model.item_ids_)
    # A known user's current rows replace those of fit.
    current = [("user-2", item) for _, item in rows]
    why = pipeline.explain("user-2", "item-8", n=5, user_items=current)
    row = int(np.flatnonzero(model.user_ids_ == "user-2")[0])
    expected = brute_force(model, model.user_embeddings_[row], sorted(columns), target,
                           expected_temperature(model))
    assert_matches(why, expected, 5, item_labels=model.item_ids_)


def test_pipeline_refuses_rows_of_other_users(pipeline):
    with pytest.raises(ValueError, match="rows of 2 users"):
        pipeline.explain(None, "item-8", user_items=[("a", "item-1"), ("b", "item-2")])
    with pytest.raises(ValueError, match="rows of user 'a', not of 'user-1'"):
        pipeline.explain("user-1", "item-8", user_items=[("a", "item-1")])
    with pytest.raises(ValueError, match="not seen in fit"):
        pipeline.explain("nobody", "item-8")
    with pytest.raises(ValueError, match="not seen in fit"):
        pipeline.explain("user-1", "no-such-item")


@settings(max_examples=40)
@given(user=st.integers(0, X.shape[0] - 1), item=st.integers(0, X.shape[1] - 1),
       n=st.integers(1, 80), loss=st.sampled_from(["softmax", "hinge"]))
def test_shares_are_a_sorted_part_of_one(hinge_and_softmax, user, item, n, loss):
    model = hinge_and_softmax[loss]
    user_items = X[user].indices
    others = user_items[user_items != item]
    if others.size == 0:
        with pytest.raises(ValueError, match="no items besides"):
            model.explain(user, item, n=n)
        return
    why = model.explain(user, item, n=n)
    assert why.neighbors.shape == (min(n, others.size),)  # n may exceed the user's items
    assert set(why.neighbors.tolist()) <= set(others.tolist())
    assert (why.shares >= 0).all() and why.other_share >= 0
    assert (np.diff(why.shares) <= 0).all()
    assert (np.diff(why.distances) >= 0).all()  # the largest shares are the nearest
    assert abs(why.shares.sum() + why.other_share - 1) <= 1e-6
    if n >= others.size:
        assert why.other_share == 0


@pytest.fixture(scope="module")
def hinge_and_softmax():
    return {loss: CMLRecommender(loss=loss, **SMALL).fit(X) for loss in ("softmax", "hinge")}


def test_ties_are_ordered_by_item_and_hinge_shares_are_scale_free():
    items = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [3.0, 0.0]])
    why = explanation(np.zeros(2), items, np.array([4, 3, 2, 1]), 0, 3, None)
    assert why.neighbors.tolist() == [1, 2, 3]  # three at distance 1: by column
    np.testing.assert_allclose(why.shares, why.shares[0])
    scaled = explanation(np.zeros(2), 10 * items, np.array([1, 2, 3, 4]), 0, 3, None)
    np.testing.assert_allclose(scaled.shares, why.shares)
    assert scaled.other_share == pytest.approx(why.other_share)
    # All the user's items at the item's own place (median 0): they share it equally.
    same = explanation(np.zeros(2), np.zeros((3, 2)), np.array([1, 2]), 0, 5, None)
    np.testing.assert_allclose(same.shares, [0.5, 0.5])


@pytest.mark.parametrize("loss", ["softmax", "hinge"])
def test_planted_cluster_mates_explain_the_recommendation(loss):
    X, _, item_cluster = make_interactions(n_users=400, n_items=80, n_clusters=4,
                                           random_state=0, return_labels=True)
    model = CMLRecommender(n_components=8, n_epochs=20, loss=loss, random_state=0).fit(X)
    rng = np.random.default_rng(0)
    for a, b in [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (1, 3)]:
        # A new user with five items of each of two clusters.
        items = np.concatenate([rng.choice(np.flatnonzero(item_cluster == c), 5, replace=False)
                                for c in (a, b)])
        row = sp.csr_matrix((np.ones(10), (np.zeros(10, int), items)), shape=(1, 80))
        recommended = int(model.predict(row, n_items=1)[0, 0])
        assert item_cluster[recommended] in (a, b)
        why = model.explain(None, recommended, n=10, user_items=row)
        mates = item_cluster[why.neighbors] == item_cluster[recommended]
        assert mates[:3].all(), (a, b, item_cluster[why.neighbors])
        # Half the user's items, most of the explanation.
        assert why.shares[mates].sum() > 0.6


@pytest.fixture(scope="module")
def fitted():
    return CMLRecommender(**SMALL).fit(X)


@pytest.mark.parametrize("call, match", [
    (lambda m: m.explain(700, 3), "user.*outside the 700"),
    (lambda m: m.explain(1, 100), "item.*outside the 100"),
    (lambda m: m.explain(1, -1), "item.*outside the 100"),
    (lambda m: m.explain([1, 2], 3), "user must be one user"),
    (lambda m: m.explain(1, [3, 4]), "item must be one item"),
    (lambda m: m.explain(1, 3, n=0), "n must be a positive integer"),
    (lambda m: m.explain(1, 3, n=2.5), "n must be a positive integer"),
    (lambda m: m.explain(1, 3, n=True), "n must be a positive integer"),
    (lambda m: m.explain(None, 3), "user is None and no user_items"),
    (lambda m: m.explain(None, 3, user_items=X[:2]), "user_items has 2 rows"),
    (lambda m: m.explain(None, 3, user_items=X[:1, :50]), "50 features.*100"),
    (lambda m: m.explain(None, 3, user_items=np.zeros((1, 100))), "has no items"),
    (lambda m: m.explain(1, 3, user_items=np.zeros((1, 100))), "User 1 has no items"),
    (lambda m: m.explain(None, 3, user_items=np.eye(1, 100, 3)), "no items besides"),
])
def test_invalid_calls_say_what_to_fix(fitted, call, match):
    with pytest.raises(ValueError, match=match):
        call(fitted)


def test_unfitted_raises_not_fitted():
    with pytest.raises(NotFittedError):
        CMLRecommender().explain(0, 0)
    with pytest.raises(NotFittedError):
        make_recommender(InteractionEncoder(), CMLRecommender()).explain("a", "b")


def test_saved_without_training_matrix_needs_user_items(fitted):
    file = io.BytesIO()
    fitted.save(file, include_training_matrix=False)
    loaded = load_model(io.BytesIO(file.getvalue()))
    with pytest.raises(ValueError, match="user_items="):
        loaded.explain(2, 3)
    why = loaded.explain(2, 3, user_items=X[2])
    expected = fitted.explain(2, 3)
    np.testing.assert_array_equal(why.neighbors, expected.neighbors)
    np.testing.assert_array_equal(why.shares, expected.shares)


def test_pipeline_of_the_recommender_alone_takes_rows(fitted):
    from sklearn_cml import RecommenderPipeline

    alone = RecommenderPipeline([("cml", CMLRecommender(**SMALL))]).fit(X)
    why = alone.explain(None, 3, n=2, user_items=X[2])
    expected = fitted.explain(None, 3, n=2, user_items=X[2])
    np.testing.assert_array_equal(why.neighbors, expected.neighbors)
    np.testing.assert_array_equal(why.shares, expected.shares)
