"""Fingerprints of fitted models, to check that a change alters no bit.

Run from the repository root, on two commits, and compare::

    git stash; python benchmarks/check_bitwise.py > before.txt; git stash pop
    python benchmarks/check_bitwise.py > after.txt; diff before.txt after.txt

It fits CMLRecommender (random_state=0, n_jobs=1) in 13 configurations
(both losses, sampling, rank weight, chunking, averaging, early stopping,
item features) on synthetic data and prints a short SHA-256 of the fitted
vectors, of the loss curves, of fold-in, of the recommendations and of the
cold-start vectors.  Compare outputs of processes that load the kernels
from Numba's cache (run each commit twice and keep the second output): the
process that compiles them can differ in the last bits from those that load
them.

It is a check, not a test: it prints digests and asserts nothing.
"""

import hashlib

import numpy as np
import scipy.sparse as sp

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions

BASE = {"n_components": 16, "n_epochs": 4, "n_negatives": 5, "random_state": 0, "n_jobs": 1}
# The parameter was called batch_size before 2026-12-01.
INTERVAL = ("covariance_interval" if "covariance_interval" in CMLRecommender().get_params()
            else "batch_size")
CONFIGURATIONS = {
    "hinge": {},
    "hinge uniform": {"negative_sampling_exponent": 0.0},
    "hinge no rank weight": {"rank_weight": False},
    "hinge small chunks": {INTERVAL: 300},
    "hinge no average": {"average": False},
    "hinge average from 3": {"average": 3},
    "softmax": {"loss": "softmax"},
    "softmax uniform exponent": {"loss": "softmax", "negative_sampling_exponent": 0.0,
                                 "temperature_exponent": 0.15},
    "softmax small chunks": {"loss": "softmax", INTERVAL: 300},
    "hinge early stopping": {"early_stopping": True, "n_epochs": 8, "n_iter_no_change": 2},
    "softmax early stopping": {"loss": "softmax", "early_stopping": True, "n_epochs": 8,
                               "n_iter_no_change": 2},
    "hogwild hinge": {"solver": "hogwild", "loss": "hinge"},
    "hogwild softmax": {"solver": "hogwild", "loss": "softmax"},
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


def main():
    X, _, item_clusters = make_interactions(n_users=300, n_items=120, n_clusters=4,
                                            random_state=0, return_labels=True)
    features = sp.csr_matrix(np.eye(4, dtype=np.float32)[item_clusters])
    for name, extra in CONFIGURATIONS.items():
        model = CMLRecommender(**{**BASE, **extra}).fit(X)
        print(f"{name:28s} fit {vectors(model)} loss {digest(model.loss_curve_)}"
              f" transform {digest(model.transform(X[:50]))}"
              f" recommend {digest(model.recommend(np.arange(20), n_items=7))}"
              f" best {model.best_epoch_} val {digest(model.validation_scores_ or [])}")
        model.partial_fit(X)
        print(f"{name:28s} partial_fit {vectors(model)} loss {digest(model.loss_curve_)}")
    for loss in ("hinge", "softmax"):
        model = CMLRecommender(**BASE, loss=loss, hidden_size=8)
        model.fit(X, item_features=features)
        print(f"{loss + ' features':28s} fit {vectors(model)}"
              f" loss {digest(model.loss_curve_, model.feature_loss_curve_)}"
              f" items {digest(model.transform_items(features[:10]))}")
        model.partial_fit(X, item_features=features)
        print(f"{loss + ' features':28s} partial_fit {vectors(model)}")
    model = CMLRecommender(**BASE).fit(X)
    neighbors = model.kneighbors_items(np.arange(10), n_neighbors=5)[1]
    print("score", model.score(X), "kneighbors", digest(neighbors))


if __name__ == "__main__":
    main()
