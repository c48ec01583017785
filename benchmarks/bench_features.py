"""Item features on CiteULike-a (tags): warm start and cold start.

Run from the repository root (``pip install -e '.[bench]'`` for LightFM)::

    python benchmarks/bench_features.py [--data PATH] [--epochs 40] [--n-jobs 2]

Warm start: the CML paper's protocol (60/20/20 per user, users with >= 5
items, seed 0). CMLRecommender without and with the tag features
(``item_features``), same settings otherwise, one ``partial_fit`` per epoch;
validation Recall@50 every 10 epochs (and after the last) picks the epoch
scored on test (seconds: training only); test items are ranked among all items
but the user's training ones.

Cold start: a random 20% of the items (seed 0) are removed from training
entirely. Models train on the interactions with the other items; then, for
each user, the hidden items are ranked among themselves and Recall@50/100 is
measured against the user's interactions with them. CML places the hidden
items from their tags alone (``transform_items``); LightFM (WARP) uses the
same tag matrix as its item features (no per-item identity features, which
a hidden item could not have learnt); popularity cannot tell unseen items
apart (all tie at zero, i.e. random order). Both models train for
``--epochs`` epochs.

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import time

import numpy as np
import scipy.sparse as sp
from _common import BestEpoch, find_data_dir, load_split, popularity_scores, recalls, utc_now
from peers import INSTALL_HINT, cml, lightfm_warp

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import load_citeulike_tags
from sklearn_cml.metrics import embedding_scores


def warm_start(split, tags, args):
    """Paper protocol, with and without tags; best validation epoch on test."""
    train, _, test = split
    results = {}
    for label, features in (("CML", None), ("CML + tags", tags)):
        best = BestEpoch(split, 10, args.epochs)
        cml.train(train, {}, n_components=100, threads=args.n_jobs, n_epochs=args.epochs,
                  random_state=0, after_epoch=best, item_features=features)
        results[label] = {**recalls(test, best.scores, train), "epoch": best.epoch,
                          "seconds": best.total}
    return results


def cold_start_split(X, fraction=0.2, seed=0):
    """(train without the hidden items, test restricted to them, hidden mask)."""
    hidden = np.random.default_rng(seed).random(X.shape[1]) < fraction
    train = (X @ sp.diags((~hidden).astype(np.float32))).tocsr()
    train.eliminate_zeros()
    return train, X[:, np.flatnonzero(hidden)].tocsr(), hidden


def lightfm_cold_scores(train, tags, hidden, args):
    """LightFM WARP with tag features; scores of every user for the hidden items."""
    if lightfm_warp.missing() is not None:
        print(f"{lightfm_warp.missing()}: {INSTALL_HINT} (lightfm-next)")
        return None
    from lightfm import LightFM

    model = LightFM(no_components=100, loss="warp", random_state=0)
    model.fit(train.tocoo(), item_features=tags, epochs=args.epochs, num_threads=args.n_jobs)
    biases, vectors = model.get_item_representations(tags[np.flatnonzero(hidden)])
    _, users = model.get_user_representations()
    return lambda u: users[u] @ vectors.T + biases


def cold_start(X, tags, args):
    train, test, hidden = cold_start_split(X)
    print(f"cold start: {hidden.sum()} hidden items, {test.nnz} of their interactions "
          f"({np.count_nonzero(np.diff(test.indptr))} users); training on {train.nnz}")
    results = {}
    started = time.perf_counter()
    model = CMLRecommender(n_components=100, n_epochs=args.epochs, n_jobs=args.n_jobs,
                           random_state=0).fit(train, item_features=tags)
    placed = model.transform_items(tags[np.flatnonzero(hidden)])
    results["CML + tags"] = {**recalls(test, embedding_scores(model.user_embeddings_, placed)),
                             "seconds": time.perf_counter() - started}
    started = time.perf_counter()
    lightfm = lightfm_cold_scores(train, tags, hidden, args)
    if lightfm is not None:
        results["LightFM WARP + tags"] = {**recalls(test, lightfm),
                                          "seconds": time.perf_counter() - started}
    # Hidden items have no training pairs: popularity ties them all.
    results["popularity"] = recalls(test, popularity_scores(train[:, np.flatnonzero(hidden)]))
    return results


def print_table(title, results):
    print(f"\n{title}")
    print(f"{'model':<22} {'Recall@50':>10} {'Recall@100':>11} {'epoch':>6} {'seconds':>8}")
    for label, r in results.items():
        epoch = r.get("epoch", "")
        seconds = f"{r['seconds']:.1f}" if "seconds" in r else ""
        print(f"{label:<22} {r[50]:>10.4f} {r[100]:>11.4f} {epoch!s:>6} {seconds:>8}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    data_dir = find_data_dir(args.data)
    X, split = load_split("citeulike-a", data_dir)
    tags = load_citeulike_tags(data_dir / "citeulike-a", n_items=X.shape[1]).features
    print(f"CiteULike-a: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} pairs; "
          f"{tags.shape[1]} tags, {tags.nnz} item-tag pairs; "
          f"{utc_now()}; n_jobs={args.n_jobs}; "
          f"CML defaults with K=100 (feature_weight=1.0, hidden_size=256, dropout=0.2, "
          f"feature_learning_rate=0.01)")
    print_table("Warm start (paper protocol, test, best validation epoch):",
                warm_start(split, tags, args))
    print_table(f"Cold start (hidden 20% of items, {args.epochs} epochs):",
                cold_start(X, tags, args))


if __name__ == "__main__":
    main()
