"""Do pairs weighted by their ratings rank better?  ``interaction_weight`` on MovieLens-1M.

Run from the repository root::

    python benchmarks/bench_weights.py [--data PATH] [--dataset ml-1m]
        [--weightings binary values log] [--seeds 0 1 2] [--n-jobs 2]
        [--set NAME=VALUE ...]

Every rating is kept (``load_movielens(path, min_rating=None)``): a rating
of 1 to 5 is an interaction whose value is its strength.  Per user, the
rated movies are split at random 60% train / 20% validation / 20% test,
keeping users with at least 5 (``train_validation_test_split``, seed 0, as
in every benchmark).  CMLRecommender (K=100 and the package defaults,
unless ``--set`` changes them) is fitted on the train part, ratings as
values, once per ``interaction_weight`` of ``--weightings`` and seed of
``--seeds``: ``"binary"`` counts every rating alike, ``"values"`` weighs a
pair by its rating, ``"log"`` by ``log(1 + rating)``.

Recall@50 of the validation and test movies, each ranked among all movies
but the user's training ones; "liked" counts only held-out movies rated 4
or 5 (users with none are skipped).  The default is chosen on validation
Recall@50, never on test.

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import time

import numpy as np
import scipy.sparse as sp
from _common import add_setting_option, find_data_dir, recalls, utc_now

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import load_movielens
from sklearn_cml.metrics import embedding_scores
from sklearn_cml.model_selection import train_validation_test_split

SPLIT_SEED = 0
LIKED = 4  # held-out ratings from this one up count as "liked"
K = 50


def liked(part):
    """The entries of ``part`` rated ``LIKED`` or more."""
    kept = part.copy()
    kept.data[kept.data < LIKED] = 0
    kept.eliminate_zeros()
    return kept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--weightings", nargs="+", default=["binary", "values", "log"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-jobs", type=int, default=2)
    add_setting_option(parser)
    args = parser.parse_args(argv)
    settings = {"n_components": 100, **dict(args.settings)}

    ratings = load_movielens(find_data_dir(args.data) / args.dataset).interactions
    train, validation, test = (sp.csr_matrix(part) for part in
                               train_validation_test_split(ratings, random_state=SPLIT_SEED))
    print(f"{args.dataset}, every rating kept: {ratings.shape[0]} users x {ratings.shape[1]} "
          f"movies, {ratings.nnz} ratings (mean {ratings.data.mean():.2f}); train "
          f"{train.nnz}, validation {validation.nnz} ({liked(validation).nnz} rated "
          f">= {LIKED}), test {test.nnz} ({liked(test).nnz}); {utc_now()}")
    print(f"settings {settings}, n_jobs={args.n_jobs}; Recall@{K}, movies ranked among all "
          "but the user's training ones")
    columns = ("validation", "val. liked", "test", "test liked")
    print(f"{'interaction_weight':<19} {'seed':>4} " + " ".join(f"{c:>10}" for c in columns)
          + f" {'fit s':>6}")
    results = {}
    for seed in args.seeds:
        for weighting in args.weightings:
            model = CMLRecommender(**settings, interaction_weight=weighting, n_jobs=args.n_jobs,
                                   random_state=seed)
            started = time.perf_counter()
            model.fit(train)
            seconds = time.perf_counter() - started
            scores = embedding_scores(model.user_embeddings_, model.item_embeddings_)
            row = [recalls(part, scores, train, ks=(K,))[K]
                   for part in (validation, liked(validation), test, liked(test))]
            results.setdefault(weighting, []).append(row)
            print(f"{weighting:<19} {seed:>4} " + " ".join(f"{v:>10.4f}" for v in row)
                  + f" {seconds:>6.1f}", flush=True)
    print(f"\nmean (standard deviation) over seeds {args.seeds}")
    for weighting, rows in results.items():
        rows = np.array(rows)
        print(f"{weighting:<19} {'':>4} " + " ".join(
            f"{m:.4f} ({s:.4f})" for m, s in zip(rows.mean(axis=0), rows.std(axis=0))))
    best = max(results, key=lambda name: np.mean([row[0] for row in results[name]]))
    print(f"best validation Recall@{K}: interaction_weight={best!r}")


if __name__ == "__main__":
    main()
