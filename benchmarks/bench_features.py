"""Item features on CiteULike-a (tags): warm start and cold start.

Run from the repository root (``pip install -e '.[bench]'`` for LightFM)::

    python benchmarks/bench_features.py [--data PATH] [--epochs 40] [--n-jobs 2]

Warm start: the CML paper's protocol (60/20/20 per user, users with >= 5
items, seed 0). CMLRecommender without and with the tag features
(``item_features``), same settings otherwise; validation Recall@50 every 10
epochs picks the epoch scored on test; test items are ranked among all items
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
from _data import find_data_dir

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import load_citeulike, load_citeulike_tags
from sklearn_cml.metrics import embedding_scores, ranking_metrics
from sklearn_cml.model_selection import train_validation_test_split

KS = (50, 100)


def recalls(test, scores, exclude=None):
    return {k: ranking_metrics(test, scores, k=k, exclude=exclude,
                               metrics=("recall",))["recall"] for k in KS}


def cml(args, **params):
    return CMLRecommender(n_components=100, n_epochs=10, n_jobs=args.n_jobs, random_state=0,
                          **params)


def warm_start(X, tags, args):
    """Paper protocol, with and without tags; best validation epoch on test."""
    train, validation, test = train_validation_test_split(X, random_state=0)
    results = {}
    for label, features in (("CML", None), ("CML + tags", tags)):
        model = cml(args)
        started = time.perf_counter()
        model.fit(train, item_features=features)
        best = (-1.0, None)
        while True:
            recall = ranking_metrics(validation, model, k=50, exclude=train,
                                     metrics=("recall",))["recall"]
            if recall > best[0]:
                best = (recall, model.n_iter_, model.user_embeddings_.copy(),
                        model.item_embeddings_.copy())
            if model.n_iter_ >= args.epochs:
                break
            for _ in range(10):
                model.partial_fit(train, item_features=features)
        elapsed = time.perf_counter() - started
        scores = embedding_scores(best[2], best[3])
        results[label] = {**recalls(test, scores, exclude=train), "epoch": best[1],
                          "seconds": elapsed}
    return results


def cold_start_split(X, fraction=0.2, seed=0):
    """(train without the hidden items, test restricted to them, hidden mask)."""
    hidden = np.random.default_rng(seed).random(X.shape[1]) < fraction
    train = (X @ sp.diags((~hidden).astype(np.float32))).tocsr()
    train.eliminate_zeros()
    return train, X[:, np.flatnonzero(hidden)].tocsr(), hidden


def lightfm_cold_scores(train, tags, hidden, args):
    """LightFM WARP with tag features; scores of every user for the hidden items."""
    try:
        from lightfm import LightFM
    except ImportError:
        print("LightFM is not installed: pip install -e '.[bench]' (lightfm-next)")
        return None
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
    model = cml(args).set_params(n_epochs=args.epochs).fit(train, item_features=tags)
    placed = model.transform_items(tags[np.flatnonzero(hidden)])
    results["CML + tags"] = {**recalls(test, embedding_scores(model.user_embeddings_, placed)),
                             "seconds": time.perf_counter() - started}
    started = time.perf_counter()
    lightfm = lightfm_cold_scores(train, tags, hidden, args)
    if lightfm is not None:
        results["LightFM WARP + tags"] = {**recalls(test, lightfm),
                                          "seconds": time.perf_counter() - started}
    results["popularity"] = recalls(test, np.zeros(test.shape))
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
    data_dir = find_data_dir(args.data) / "citeulike-a"
    X = load_citeulike(data_dir).interactions
    tags = load_citeulike_tags(data_dir, n_items=X.shape[1]).features
    print(f"CiteULike-a: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} pairs; "
          f"{tags.shape[1]} tags, {tags.nnz} item-tag pairs; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; n_jobs={args.n_jobs}; "
          f"CML defaults with K=100 (feature_weight=1.0, hidden_size=256, dropout=0.2, "
          f"feature_learning_rate=0.01)")
    print_table("Warm start (paper protocol, test, best validation epoch):",
                warm_start(X, tags, args))
    print_table(f"Cold start (hidden 20% of items, {args.epochs} epochs):",
                cold_start(X, tags, args))


if __name__ == "__main__":
    main()
