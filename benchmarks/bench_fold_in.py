"""How well does ``transform`` place users that ``fit`` never saw?

Run from the repository root::

    python benchmarks/bench_fold_in.py [--data PATH] [--dataset ml-1m]
        [--n-epochs 30] [--n-new-users 1040] [--seeds 0] [--n-jobs 2]
        [--fold-in-learning-rate R ...] [--set NAME=VALUE ...]

The users of the dataset are shuffled (seed 0); the last ``--n-new-users``
are held out of ``fit``.  CMLRecommender (K=100 and the package defaults,
unless ``--set`` changes them) is fitted on the others for ``--n-epochs``
epochs, once per seed of ``--seeds``.  Each new user's items are then split
80/20 (``train_test_split``, seed 0): ``score`` folds the user in from the
80% and returns the recall@50 of the 20% (ranking every item but the 80%).
With ``--fold-in-learning-rate``, the same fitted model places the new
users once per learning rate given (the fold-in uses ``learning_rate``).

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse

import numpy as np
from _common import add_setting_option, find_data_dir, load_positives, utc_now

from sklearn_cml import CMLRecommender
from sklearn_cml.model_selection import train_test_split


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--n-epochs", type=int, default=30)
    parser.add_argument("--n-new-users", type=int, default=1040)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--fold-in-learning-rate", type=float, nargs="+", default=None)
    add_setting_option(parser)
    args = parser.parse_args(argv)
    settings = {"n_components": 100, **dict(args.settings)}

    X = load_positives(args.dataset, find_data_dir(args.data)).tocsr()
    users = np.random.default_rng(0).permutation(X.shape[0])
    known, new = X[users[:-args.n_new_users]], X[users[-args.n_new_users:]]
    new_given, new_held_out = train_test_split(new, test_size=0.2, random_state=0)
    print(f"{args.dataset}: fit on {known.shape[0]} users ({known.nnz} pairs); "
          f"{new.shape[0]} new users, {new_given.nnz} items given, "
          f"{new_held_out.nnz} held out; {utc_now()}")
    print(f"settings {settings}, {args.n_epochs} epochs, n_jobs={args.n_jobs}")
    for seed in args.seeds:
        model = CMLRecommender(**settings, n_epochs=args.n_epochs, n_jobs=args.n_jobs,
                               random_state=seed).fit(known)
        rates = args.fold_in_learning_rate or [model.learning_rate]
        for rate in rates:
            model.set_params(learning_rate=rate)
            recall = model.score(new_given, new_held_out)
            print(f"seed {seed}, fold-in learning rate {rate}: "
                  f"new users' recall@{model.top_k} {recall:.4f}")


if __name__ == "__main__":
    main()
