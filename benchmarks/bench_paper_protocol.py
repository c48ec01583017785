"""Recall@50 and Recall@100 under the CML paper's protocol, against popularity.

Run from the repository root::

    python benchmarks/bench_paper_protocol.py [--data PATH] [--datasets ml-1m citeulike-a]
        [--max-epochs 80] [--eval-every 5] [--n-jobs 2] [--set NAME=VALUE ...]

Protocol (Hsieh et al. 2017, section 5): per user, the observed items are
split at random 60% train / 20% validation / 20% test, keeping users with at
least 5 items (``train_validation_test_split``, seed 0). MovieLens-1M keeps
ratings of 4 and up as positives; CiteULike-a uses every user-item pair.

CMLRecommender is trained on the train part with the settings printed (the
package defaults, K=100, unless ``--set`` changes them, for instance
``--set n_components=50 --set learning_rate=0.03``); every ``--eval-every``
epochs its
validation Recall@50 is measured, and the model of the best validation epoch
is scored on test. Test items are ranked among all items except the user's
training items (as in the paper), ties counted as their expectation.
Popularity ranks items by their number of training interactions.

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import ast
import os
import time

import numpy as np
from _data import find_data_dir, load_positives

from sklearn_cml import CMLRecommender
from sklearn_cml.metrics import ranking_metrics
from sklearn_cml.model_selection import train_validation_test_split


def popularity_scores(train):
    """Every user scores items by their training popularity."""
    popularity = np.asarray(train.sum(axis=0), dtype=np.float64).ravel()
    return lambda users: np.broadcast_to(popularity, (len(users), popularity.size))


def recalls(test, scores, train, ks=(50, 100)):
    return {k: ranking_metrics(test, scores, k=k, exclude=train, metrics=("recall",))["recall"]
            for k in ks}


def train_cml(train, validation, args):
    """Fit epoch by epoch; keep the model of the best validation Recall@50."""
    settings = {"n_components": 100, **args.settings}
    model = CMLRecommender(n_epochs=args.eval_every, n_jobs=args.n_jobs, random_state=0,
                           **settings)
    started = time.perf_counter()
    model.fit(train)
    best = (-1.0, None, 0)
    curve = []
    while True:
        recall = ranking_metrics(validation, model, k=50, exclude=train,
                                 metrics=("recall",))["recall"]
        curve.append((model.n_iter_, recall))
        if recall > best[0]:
            best = (recall, (model.user_embeddings_.copy(), model.item_embeddings_.copy()),
                    model.n_iter_)
        if model.n_iter_ >= args.max_epochs:
            break
        for _ in range(args.eval_every):
            model.partial_fit(train)
    elapsed = time.perf_counter() - started
    model.user_embeddings_, model.item_embeddings_ = best[1]
    return model, best[2], curve, elapsed, model.get_params()


def run_dataset(name, data_dir, args):
    X = load_positives(name, data_dir)
    train, validation, test = train_validation_test_split(X, random_state=0)
    print(f"\n== {name}: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} positives; "
          f"train {train.nnz}, validation {validation.nnz}, test {test.nnz} ==")
    model, best_epoch, curve, elapsed, params = train_cml(train, validation, args)
    print("validation Recall@50 by epoch: "
          + ", ".join(f"{epoch}: {recall:.4f}" for epoch, recall in curve))
    shown = {key: params[key] for key in ("n_components", "loss", "margin", "n_negatives",
                                          "negative_sampling_exponent",
                                          "learning_rate", "covariance_weight", "max_norm",
                                          "average", *args.settings)}
    print(f"CML settings {shown}; best validation epoch {best_epoch}; "
          f"{elapsed:.1f} s for {curve[-1][0]} epochs and the validation passes")
    results = {
        "CMLRecommender": recalls(test, model, train),
        "popularity": recalls(test, popularity_scores(train), train),
    }
    print(f"{'model':<16} {'Recall@50':>10} {'Recall@100':>11}")
    for label, values in results.items():
        print(f"{label:<16} {values[50]:>10.4f} {values[100]:>11.4f}")
    return results


def parse_setting(text):
    """``NAME=VALUE`` to ``(NAME, value)``; the value is a Python literal or a string."""
    name, separator, value = text.partition("=")
    tunable = set(CMLRecommender().get_params()) - {"n_epochs", "n_jobs", "random_state"}
    if not separator or name not in tunable:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE with NAME one of {sorted(tunable)}, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--datasets", nargs="+", default=["ml-1m", "citeulike-a"])
    parser.add_argument("--max-epochs", type=int, default=80)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--set", dest="settings", action="append", type=parse_setting,
                        default=[], metavar="NAME=VALUE",
                        help="a CMLRecommender parameter other than the defaults (repeatable)")
    args = parser.parse_args(argv)
    args.settings = dict(args.settings)
    data_dir = find_data_dir(args.data)
    print(f"data: {data_dir}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{os.cpu_count()} cores, n_jobs={args.n_jobs}")
    for name in args.datasets:
        run_dataset(name, data_dir, args)


if __name__ == "__main__":
    main()
