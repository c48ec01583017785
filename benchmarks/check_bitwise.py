"""Fingerprints of fitted models, to check that a change alters no bit.

Run from the repository root, on two commits, and compare::

    git stash; python benchmarks/check_bitwise.py > before.txt; git stash pop
    python benchmarks/check_bitwise.py > after.txt; diff before.txt after.txt

It fits CMLRecommender (random_state=0, n_jobs=1) in each configuration of
``CONFIGURATIONS`` (both solvers, both losses, sampling, rank weight,
chunking, averaging, early stopping, interaction weights, item features
with either cold start) on synthetic data, and prints a short SHA-256 of
the fitted vectors, of the loss curves, of fold-in, of the recommendations
and of the cold-start vectors, after ``fit`` and after one more
``partial_fit``.  ``check_queries`` then fingerprints every query option on
one model (``QUERY_MODEL``): filters, candidates, current items, new items,
neighbours, and the approximate search when pynndescent is installed.  Compare outputs of
processes that load the kernels from Numba's cache (run each commit twice
and keep the second output): the process that compiles them can differ in
the last bits from those that load them.

It is a check, not a test: it prints digests and asserts nothing.
"""

import argparse
import hashlib
from importlib.util import find_spec

import numpy as np
import scipy.sparse as sp

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions

BASE = {"n_components": 16, "n_epochs": 4, "n_negatives": 5, "random_state": 0, "n_jobs": 1}
# The parameter was called batch_size before 2026-12-01.
INTERVAL = ("covariance_interval" if "covariance_interval" in CMLRecommender().get_params()
            else "batch_size")
CONFIGURATIONS = {
    "hinge": {"loss": "hinge"},
    "hinge uniform": {"loss": "hinge", "negative_sampling_exponent": 0.0},
    "hinge no rank weight": {"loss": "hinge", "rank_weight": False},
    "hinge small chunks": {"loss": "hinge", INTERVAL: 300},
    "hinge no average": {"loss": "hinge", "average": False},
    "hinge average from 3": {"loss": "hinge", "average": 3},
    "hinge log": {"loss": "hinge", "interaction_weight": "log"},
    "hinge early stopping": {"loss": "hinge", "early_stopping": True, "n_epochs": 8,
                             "n_iter_no_change": 2},
    "softmax": {"loss": "softmax"},
    "softmax uniform exponent": {"loss": "softmax", "negative_sampling_exponent": 0.0,
                                 "temperature_exponent": 0.15},
    "softmax no exponent": {"loss": "softmax", "temperature_exponent": 0.0},
    "softmax small chunks": {"loss": "softmax", INTERVAL: 300},
    "softmax small blocks": {"loss": "softmax", "block_size": 64, "pool_size": 32},
    "softmax values": {"loss": "softmax", "interaction_weight": "values"},
    "softmax early stopping": {"loss": "softmax", "early_stopping": True, "n_epochs": 8,
                               "n_iter_no_change": 2, "validation_interval": 2},
    "hogwild hinge": {"solver": "hogwild", "loss": "hinge"},
    "hogwild hinge no rank weight": {"solver": "hogwild", "loss": "hinge",
                                     "rank_weight": False},
    "hogwild hinge uniform": {"solver": "hogwild", "loss": "hinge",
                              "negative_sampling_exponent": 0.0},
    "hogwild softmax": {"solver": "hogwild", "loss": "softmax"},
    "hogwild softmax values": {"solver": "hogwild", "loss": "softmax",
                               "interaction_weight": "values"},
}
# The model whose queries are fingerprinted.
QUERY_MODEL = {"loss": "hinge"}
FEATURES = {
    "hinge neighbors": {"loss": "hinge", "hidden_size": 8},
    "softmax neighbors": {"loss": "softmax", "hidden_size": 8},
    "hinge network": {"loss": "hinge", "cold_start": "network", "hidden_size": 8},
    "softmax network": {"loss": "softmax", "cold_start": "network", "hidden_size": 8},
}


def digest(*arrays):
    """The first 16 hex digits of the SHA-256 of arrays, as float64."""
    sha = hashlib.sha256()
    for array in arrays:
        sha.update(np.ascontiguousarray(np.asarray(array, dtype=np.float64)).tobytes())
    return sha.hexdigest()[:16]


def vectors(model):
    encoder = model.feature_encoder_.values() if model.feature_encoder_ else ()
    return digest(model.user_embeddings_, model.item_embeddings_, *encoder)


def data():
    X, _, item_clusters = make_interactions(n_users=300, n_items=120, n_clusters=4,
                                            random_state=0, return_labels=True)
    X = X.tocsr()
    # Values 1 to 5, for the interaction weights.
    X.data = (1 + np.arange(X.nnz) % 5).astype(np.float32)
    features = sp.csr_matrix(np.eye(4, dtype=np.float32)[item_clusters])
    return X, features


def check_training(X, features):
    for name, extra in CONFIGURATIONS.items():
        model = CMLRecommender(**{**BASE, **extra}).fit(X)
        print(f"{name:30s} fit {vectors(model)} loss {digest(model.loss_curve_)}"
              f" transform {digest(model.transform(X[:50]))}"
              f" recommend {digest(model.recommend(np.arange(20), n_items=7))}"
              f" best {model.best_epoch_} val {digest(model.validation_scores_ or [])}")
        model.partial_fit(X)
        print(f"{name:30s} partial_fit {vectors(model)} loss {digest(model.loss_curve_)}")
    for solver in ("block", "hogwild"):
        for name, extra in FEATURES.items():
            label = f"{solver} {name}"
            model = CMLRecommender(**BASE, solver=solver, **extra)
            model.fit(X, item_features=features)
            print(f"{label:30s} fit {vectors(model)}"
                  f" loss {digest(model.loss_curve_, model.feature_loss_curve_ or [])}"
                  f" items {digest(model.transform_items(features[:10]))}"
                  f" transform {digest(model.transform(X[:30]))}")
            model.partial_fit(X, item_features=features)
            print(f"{label:30s} partial_fit {vectors(model)}")


def queries(model, X, features):
    """Every query option of a fitted model, by name: ``name -> result``."""
    users = np.arange(25)
    return {
        "recommend": model.recommend(users, n_items=7, return_distance=True),
        "recommend all seen": model.recommend(users, n_items=7, filter_seen=False),
        "recommend filter": model.recommend(users, n_items=7, filter_items=[0, 3, 5, 90]),
        "recommend items": model.recommend(users, n_items=7, items=np.arange(10, 80)),
        "recommend both": model.recommend(users, n_items=7, items=np.arange(10, 80),
                                          filter_items=np.arange(10, 20)),
        "recommend current": model.recommend(users, n_items=7, user_items=X[40:65]),
        "recommend new items": model.recommend(users, n_items=3, item_features=features[:9],
                                               return_distance=True),
        "predict": model.predict(X[:30], n_items=9),
        "kneighbors": model.kneighbors_items(np.arange(10), n_neighbors=5),
        "kneighbors all": model.kneighbors_items(n_neighbors=3, return_distance=False),
        "kneighbors new": model.kneighbors_items(item_features=features[:5], n_neighbors=4),
        "similar users": model.similar_users(np.arange(10), n_users=4),
        "pair distances": model.pair_distances([0, 1, 2], [5, 6, 7]),
    }


def check_queries(X, features):
    searches = ["exact"] + (["nndescent"] if find_spec("pynndescent") else [])
    for search in searches:
        model = CMLRecommender(**BASE, **QUERY_MODEL, search=search,
                               search_params=None if search == "exact" else {"n_neighbors": 8})
        model.fit(X, item_features=features)
        for name, result in queries(model, X, features).items():
            parts = result if isinstance(result, tuple) else (result,)
            print(f"{search:9s} {name:22s} {digest(*parts)}")
    model = CMLRecommender(**BASE).fit(X)
    print("score", model.score(X))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["training", "queries", "all"], default="all")
    args = parser.parse_args()
    X, features = data()
    if args.part in ("training", "all"):
        check_training(X, features)
    if args.part in ("queries", "all"):
        check_queries(X, features)


if __name__ == "__main__":
    main()
