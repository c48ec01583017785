"""Demo: ``python -m sklearn_cml`` fits CML on synthetic data, offline.

It generates interactions with planted taste clusters and power-law item
popularity (``make_interactions``), holds out 20% of each user's items
(``model_selection.train_test_split``), fits ``CMLRecommender`` on the
rest, and prints the held-out recall (``metrics.recall_at_k``) next to a
popularity baseline, then a few recommendations and similar items, with
their clusters so that they can be judged by eye.
"""

import argparse
import time

import numpy as np

from . import CMLRecommender
from .datasets import make_interactions
from .metrics import recall_at_k
from .model_selection import train_test_split


def popularity_scores(train):
    """Scores of the popularity baseline: each item's number of training users."""
    popularity = np.asarray(train.sum(axis=0), dtype=np.float64).ravel()
    return lambda users: np.broadcast_to(popularity, (len(users), popularity.size))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_cml", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n-users", type=int, default=3000)
    parser.add_argument("--n-items", type=int, default=1000)
    parser.add_argument("--n-epochs", type=int, default=20)
    parser.add_argument("--k", type=int, default=20, help="cut-off of the recall")
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    X, user_clusters, item_clusters = make_interactions(
        n_users=args.n_users, n_items=args.n_items, n_clusters=10, random_state=args.seed,
        return_labels=True,
    )
    train, test = train_test_split(X, test_size=0.2, random_state=args.seed)
    print(f"Synthetic interactions: {X.shape[0]} users x {X.shape[1]} items, "
          f"{X.nnz} interactions in 10 taste clusters; {test.nnz} held out.")

    model = CMLRecommender(n_epochs=args.n_epochs, n_jobs=args.n_jobs, random_state=args.seed)
    started = time.perf_counter()
    model.fit(train)
    print(f"Fitted CMLRecommender in {time.perf_counter() - started:.1f} s "
          "(the first run includes Numba compilation).")

    # Each user's held-out items, ranked among every item they did not train on.
    cml_recall = recall_at_k(test, model, k=args.k, exclude=train)
    popular_recall = recall_at_k(test, popularity_scores(train), k=args.k, exclude=train)
    print(f"\nHeld-out recall@{args.k}: CML {cml_recall:.3f}, "
          f"popularity baseline {popular_recall:.3f}")

    users = np.arange(X.shape[0])
    print("\nRecommendations (item:cluster), nearest first, for users with 5+ items:")
    for user in users[np.diff(train.indptr) >= 5][:3]:
        items = model.recommend([user], n_items=5)[0]
        shown = ", ".join(f"{item}:{item_clusters[item]}" for item in items)
        print(f"  user {user} (cluster {user_clusters[user]}): {shown}")

    print("\nSimilar items (item:cluster), nearest first:")
    distances, neighbors = model.kneighbors_items([0, 1, 2], n_neighbors=5)
    for item, row, dist in zip([0, 1, 2], neighbors, distances):
        shown = ", ".join(f"{n}:{item_clusters[n]} ({d:.2f})" for n, d in zip(row, dist))
        print(f"  item {item} (cluster {item_clusters[item]}): {shown}")


if __name__ == "__main__":
    main()
