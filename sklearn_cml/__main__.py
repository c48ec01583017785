"""Demo: ``python -m sklearn_cml`` fits CML on synthetic data, offline.

It generates interactions with planted taste clusters and power-law item
popularity (``datasets.make_interactions``), holds out 20% of each user's
items (``model_selection.train_test_split``), fits ``CMLRecommender`` on
the rest, and prints the held-out recall and NDCG (``metrics.ranking_metrics``)
next to those of a popularity baseline, then a few recommendations
(``recommend``) and similar items (``kneighbors_items``), with their
clusters so that they can be judged by eye.

``python -m sklearn_cml --warmup`` compiles and caches every Numba kernel
that default calls use (``warmup``), once per install, and exits.

Everything random is seeded by ``--seed``, and the block solver is bitwise
reproducible whatever the number of threads: two runs with the same
arguments print the same text.
"""

import argparse

import numpy as np

from . import CMLRecommender, warmup
from ._warmup import default_kernels_ready
from .datasets import make_interactions
from .metrics import popularity_scores, ranking_metrics
from .model_selection import train_test_split

N_CLUSTERS = 10


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_cml", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n-users", type=int, default=3000,
                        help="number of synthetic users (rows)")
    parser.add_argument("--n-items", type=int, default=1000,
                        help="number of synthetic items (columns)")
    parser.add_argument("--n-epochs", type=int, default=20, help="training epochs")
    parser.add_argument("--k", type=int, default=20, help="cut-off of the metrics")
    parser.add_argument("--n-jobs", type=int, default=-1,
                        help="threads for training (-1: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the data, split and model")
    parser.add_argument("--verbose", action="store_true",
                        help="print training progress (with timings, which vary run to run)")
    parser.add_argument("--warmup", action="store_true",
                        help="only compile and cache the Numba kernels (about a minute, "
                             "once per install), then exit")
    args = parser.parse_args(argv)
    if args.warmup:
        warmup(verbose=True)
        return

    X, user_clusters, item_clusters = make_interactions(
        n_users=args.n_users, n_items=args.n_items, n_clusters=N_CLUSTERS,
        random_state=args.seed, return_labels=True,
    )  # fmt: skip
    train, test = train_test_split(X, test_size=0.2, random_state=args.seed)
    print(f"Synthetic interactions: {X.shape[0]} users x {X.shape[1]} items, "
          f"{X.nnz} interactions in {N_CLUSTERS} taste clusters; {test.nnz} held out "
          f"(seed {args.seed}).")

    # A step that will compile kernels (first use, no warm-up) says so first.
    compiling = not default_kernels_ready()
    print(f"Fitting CMLRecommender for {args.n_epochs} epochs"
          + (" (compiling the training kernels first, about a minute; `--warmup` "
             "compiles all of them once)" if compiling else "") + "...", flush=True)
    model = CMLRecommender(n_epochs=args.n_epochs, n_jobs=args.n_jobs, random_state=args.seed,
                           verbose=int(args.verbose)).fit(train)

    # Each user's held-out items, ranked among every item they did not train on.
    print("\nScoring the held-out items"
          + (" (compiling the ranking kernels first, about 15 s)" if compiling else "")
          + "...", flush=True)
    print("Held-out items, ranked among all items but the user's training ones:")
    for name, scores in (("CML", model), ("popularity baseline", popularity_scores(train))):
        metrics = ranking_metrics(test, scores, k=args.k, exclude=train,
                                  metrics=("recall", "ndcg"))
        print(f"  {name:<20} recall@{args.k} {metrics['recall']:.3f}, "
              f"NDCG@{args.k} {metrics['ndcg']:.3f}")

    users = np.flatnonzero(np.diff(train.indptr) >= 5)[:3]
    print("\nRecommendations (item:cluster), nearest first, for users with 5+ items:")
    for user, items in zip(users, model.recommend(users, n_items=5)):
        shown = ", ".join(f"{item}:{item_clusters[item]}" for item in items)
        print(f"  user {user} (cluster {user_clusters[user]}): {shown}")

    items = np.arange(3)
    print("\nSimilar items (item:cluster (distance)), nearest first:")
    distances, neighbors = model.kneighbors_items(items, n_neighbors=5)
    for item, row, dist in zip(items, neighbors, distances):
        shown = ", ".join(f"{n}:{item_clusters[n]} ({d:.2f})" for n, d in zip(row, dist))
        print(f"  item {item} (cluster {item_clusters[item]}): {shown}")


if __name__ == "__main__":
    main()
