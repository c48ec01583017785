"""Recall@50 and Recall@100 under the CML paper's protocol, against popularity.

Run from the repository root::

    python benchmarks/bench_paper_protocol.py [--data PATH] [--datasets ml-1m citeulike-a]
        [--max-epochs 80] [--eval-every 5] [--n-jobs 2] [--seed 0] [--set NAME=VALUE ...]

Protocol (Hsieh et al. 2017, section 5): per user, the observed items are
split at random 60% train / 20% validation / 20% test, keeping users with at
least 5 items (``train_validation_test_split``, seed 0, as in every
benchmark). MovieLens-1M keeps ratings of 4 and up as positives; CiteULike-a
uses every user-item pair.

CMLRecommender is trained on the train part with the settings printed (the
package defaults, K=100, unless ``--set`` changes them, for instance
``--set n_components=50 --set learning_rate=0.03``) and ``random_state``
``--seed``, one ``partial_fit`` per epoch; every ``--eval-every`` epochs
(and after the last) its validation Recall@50 is measured, and the vectors
of the best validation epoch are scored on test. Test items are ranked
among all items except the user's training items (as in the paper), ties
counted as their expectation.
Popularity ranks items by their number of training interactions.

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import os

from _common import (
    BestEpoch,
    add_setting_option,
    find_data_dir,
    load_split,
    popularity_scores,
    recalls,
    utc_now,
)
from peers import cml

from sklearn_cml import CMLRecommender

SHOWN = ("n_components", "loss", "margin", "n_negatives", "negative_sampling_exponent",
         "learning_rate", "covariance_weight", "max_norm", "average")


def run_dataset(name, data_dir, args):
    X, split = load_split(name, data_dir)
    train, validation, test = split
    print(f"\n== {name}: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} positives; "
          f"train {train.nnz}, validation {validation.nnz}, test {test.nnz} ==")
    settings = dict(args.settings)
    n_components = settings.pop("n_components", 100)
    best = BestEpoch(split, args.eval_every, args.max_epochs)
    cml.train(train, settings, n_components=n_components, threads=args.n_jobs,
              n_epochs=args.max_epochs, random_state=args.seed, after_epoch=best)
    print("validation Recall@50 by epoch: "
          + ", ".join(f"{point['epoch']}: {point['recall']:.4f}" for point in best.curve))
    params = CMLRecommender(n_components=n_components, **settings).get_params()
    shown = {key: params[key] for key in (*SHOWN, *args.settings)}
    print(f"CML settings {shown}; best validation epoch {best.epoch}; "
          f"{best.total:.1f} s of training for {args.max_epochs} epochs")
    results = {
        "CMLRecommender": recalls(test, best.scores, train),
        "popularity": recalls(test, popularity_scores(train), train),
    }
    print(f"{'model':<16} {'Recall@50':>10} {'Recall@100':>11}")
    for label, values in results.items():
        print(f"{label:<16} {values[50]:>10.4f} {values[100]:>11.4f}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--datasets", nargs="+", default=["ml-1m", "citeulike-a"])
    parser.add_argument("--max-epochs", type=int, default=80)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="CMLRecommender's random_state")
    add_setting_option(parser)
    args = parser.parse_args(argv)
    args.settings = dict(args.settings)
    data_dir = find_data_dir(args.data)
    print(f"data: {data_dir}; {utc_now()}; {os.cpu_count()} cores, n_jobs={args.n_jobs}, "
          f"seed {args.seed}")
    for name in args.datasets:
        run_dataset(name, data_dir, args)


if __name__ == "__main__":
    main()
