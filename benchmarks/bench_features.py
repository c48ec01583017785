"""Item features: warm and cold Recall@50 of every model on one cold-start split.

Run from the repository root (``pip install -e '.[bench]'`` for LightFM)::

    python benchmarks/bench_features.py [--data PATH] [--dataset citeulike-a]
        [--split test|validation] [--epochs 40] [--n-jobs 2]
        [--content-weights 1 0 4] [--top-features N]

The split: a random 20% of the items (seed 0) are hidden, with all their
interactions: the *cold* items.  Each user's interactions with the other
items are split 80/20 (``train_test_split``, seed 0): models train on the
80% (the *train* part) and never see a cold item.  Then

- warm Recall@50/100: each user's held-out 20% ranked among every visible
  item but the user's training ones;
- cold Recall@50/100: each user's interactions with cold items ranked among
  the cold items only.

``--split validation`` hides a further 25% of the visible items (seed 1,
so 20% of all items) and measures cold recall on those instead, with the
test's cold items left out entirely: the split the defaults were chosen on.

Models, all on the same train part:

- CML: ``CMLRecommender`` with its defaults, no features (no cold figure:
  it cannot place an item nobody interacted with);
- CML + features: the defaults with ``item_features`` (``cold_start=
  "neighbors"``, ``content_weight=1``), and the variants ``--content-weights``
  asks for; ``cold_start="network"`` (the paper's MLP) for comparison;
- TF-IDF profile: the content baseline a data scientist writes first: each
  item's TF-IDF feature row (idf over the training items), each user's
  profile the sum of their training items' rows, scored by cosine;
- LightFM WARP with the same features as its item features (no per-item
  identity features, which a cold item could not have), ``--epochs`` epochs;
- popularity (cold items all tie at zero, i.e. a random order).

CiteULike-a uses its tags; MovieLens-1M (``--dataset ml-1m``, ratings of 4
and up) its genres.  ``--top-features N`` keeps only the N most frequent
feature columns (how the content term depends on the number of features);
``--no-lightfm`` skips LightFM.  It is a benchmark, not a test: it prints
figures and asserts nothing.
"""

import argparse
import copy
import time
from functools import partial

import numpy as np
import scipy.sparse as sp
from _common import find_data_dir, load_positives, popularity_scores, recalls, utc_now
from peers import INSTALL_HINT, lightfm_warp
from sklearn.feature_extraction.text import TfidfTransformer

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import load_citeulike_tags, load_movielens, load_movielens_genres
from sklearn_cml.metrics import embedding_scores
from sklearn_cml.model_selection import train_test_split

HIDDEN_FRACTION = 0.2


def load_features(name, data_dir, n_items):
    if name == "citeulike-a":
        return load_citeulike_tags(data_dir / name, n_items=n_items).features
    movielens = load_movielens(data_dir / name, min_rating=4)
    return load_movielens_genres(data_dir / name, movielens.item_ids).features


def without_columns(X, hidden):
    """X with the interactions of the ``hidden`` items removed (same shape)."""
    kept = (X @ sp.diags((~hidden).astype(np.float32))).tocsr()
    kept.eliminate_zeros()
    return kept


def cold_split(X, split):
    """``(train, warm_test, cold_test, visible, cold)``: see the docstring."""
    cold = np.random.default_rng(0).random(X.shape[1]) < HIDDEN_FRACTION
    visible = ~cold
    if split == "validation":
        cold_test = cold
        cold = visible & (np.random.default_rng(1).random(X.shape[1]) < 0.25)
        visible = ~cold & ~cold_test
    train, warm_test = train_test_split(without_columns(X, ~visible), random_state=0)
    return (sp.csr_matrix(train), sp.csr_matrix(warm_test),
            X[:, np.flatnonzero(cold)].tocsr(), visible, cold)


def restricted(scores, columns):
    """A score function over the ``columns`` only."""
    return lambda users: np.asarray(scores(users))[:, columns]


def content_baseline(train, features):
    """The TF-IDF profile: cosine of the user's summed item rows to an item's row."""
    transformer = TfidfTransformer().fit(features[np.asarray(train.sum(axis=0)).ravel() > 0])
    rows = transformer.transform(features).astype(np.float32).tocsr()
    profiles = (train.astype(bool).astype(np.float32) @ rows).tocsr()
    return lambda users: (profiles[users] @ rows.T).toarray()


def lightfm_scores(train, features, args):
    if lightfm_warp.missing() is not None:
        print(f"{lightfm_warp.missing()}: {INSTALL_HINT} (lightfm-next)")
        return None
    from lightfm import LightFM

    model = LightFM(no_components=100, loss="warp", random_state=0)
    model.fit(train.tocoo(), item_features=features, epochs=args.epochs, num_threads=args.n_jobs)
    biases, vectors = model.get_item_representations(features)
    _, users = model.get_user_representations()
    return lambda u: users[u] @ vectors.T + biases


def cml_rows(train, features, args):
    """``{label: (warm scores, cold scores or None, seconds)}`` of the CML models."""
    settings = [("CML", None, {})]
    for weight in args.content_weights:
        default = weight == CMLRecommender().content_weight
        label = "CML + features" + ("" if default else f" (content_weight={weight:g})")
        settings.append((label, features, {"content_weight": weight}))
    settings.append(("CML + features (network)", features, {"cold_start": "network"}))
    rows, fitted = {}, {}
    for label, item_features, params in settings:
        key = (item_features is None, params.get("cold_start", "neighbors"))
        if key not in fitted:  # content_weight changes no training: fit once
            started = time.perf_counter()
            model = CMLRecommender(n_jobs=args.n_jobs, random_state=0, cold_start=key[1])
            model.fit(train, item_features=item_features)
            fitted[key] = model, time.perf_counter() - started
        model, seconds = fitted[key]
        model = copy.copy(model).set_params(**params)  # the fitted model itself stays as is
        warm = embedding_scores(model.user_embeddings_, model.item_embeddings_)
        cold = None if item_features is None else _cold_ranking(model, features)
        rows[label] = (warm, cold, seconds)
    return rows


def _cold_ranking(model, features):
    """Scores of the cold items from ``recommend(item_features=...)``'s ranking."""
    def scores(users, cold_features):
        ranked = model.recommend(users, n_items=cold_features.shape[0],
                                 item_features=cold_features)
        out = np.empty(ranked.shape, np.float32)
        np.put_along_axis(out, ranked, -np.arange(ranked.shape[1], dtype=np.float32), axis=1)
        return out
    return scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--dataset", default="citeulike-a", choices=["citeulike-a", "ml-1m"])
    parser.add_argument("--split", default="test", choices=["test", "validation"])
    parser.add_argument("--epochs", type=int, default=40, help="LightFM's epochs")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--content-weights", type=float, nargs="+", default=[1.0, 0.0, 4.0])
    parser.add_argument("--top-features", type=int, default=None)
    parser.add_argument("--no-lightfm", action="store_true")
    args = parser.parse_args(argv)
    data_dir = find_data_dir(args.data)
    X = load_positives(args.dataset, data_dir)
    features = sp.csr_matrix(load_features(args.dataset, data_dir, X.shape[1]), dtype=np.float32)
    if args.top_features is not None:
        frequency = np.bincount(features.indices, minlength=features.shape[1])
        features = features[:, np.argsort(-frequency, kind="stable")[:args.top_features]].tocsr()
    train, warm_test, cold_test, visible, cold = cold_split(X, args.split)
    visible_columns, cold_columns = np.flatnonzero(visible), np.flatnonzero(cold)
    print(f"{args.dataset}: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} pairs; "
          f"{features.shape[1]} features, {features.nnz} item-feature pairs; {utc_now()}; "
          f"n_jobs={args.n_jobs}")
    print(f"{args.split} split: {cold.sum()} cold items with {cold_test.nnz} interactions; "
          f"training on {train.nnz} pairs of {visible.sum()} visible items, "
          f"{warm_test.nnz} held out (warm)")

    def warm_recall(scores):
        return recalls(warm_test[:, visible_columns], restricted(scores, visible_columns),
                       train[:, visible_columns])

    results = {}
    for label, (warm, cold_scores, seconds) in cml_rows(train, features, args).items():
        cold_recall = None
        if cold_scores is not None:
            cold_recall = recalls(cold_test, partial(cold_scores,
                                                     cold_features=features[cold_columns]))
        results[label] = (warm_recall(warm), cold_recall, seconds)
    started = time.perf_counter()
    content = content_baseline(train, features)
    results["TF-IDF profile"] = (warm_recall(content),
                                 recalls(cold_test, restricted(content, cold_columns)),
                                 time.perf_counter() - started)
    started = time.perf_counter()
    lightfm = None if args.no_lightfm else lightfm_scores(train, features, args)
    if lightfm is not None:
        results["LightFM WARP + features"] = (
            warm_recall(lightfm), recalls(cold_test, restricted(lightfm, cold_columns)),
            time.perf_counter() - started)
    # Cold items have no training pairs: popularity ties them all.
    results["popularity"] = (warm_recall(popularity_scores(train)),
                             recalls(cold_test, popularity_scores(train[:, cold_columns])), None)

    print(f"\n{'model':<40} {'warm R@50':>9} {'warm R@100':>10} {'cold R@50':>9} "
          f"{'cold R@100':>10} {'seconds':>8}")
    for label, (warm, cold_recall, seconds) in results.items():
        cold_text = (f"{cold_recall[50]:>9.4f} {cold_recall[100]:>10.4f}" if cold_recall
                     else f"{'-':>9} {'-':>10}")
        seconds_text = f"{seconds:>8.1f}" if seconds is not None else f"{'':>8}"
        print(f"{label:<40} {warm[50]:>9.4f} {warm[100]:>10.4f} {cold_text} {seconds_text}")
    baseline = results["TF-IDF profile"][1][50]
    ours = results["CML + features"][1][50] if "CML + features" in results else None
    if ours is not None:
        print(f"\ncold Recall@50, CML + features / TF-IDF profile: {ours / baseline:.3f} "
              f"({100 * (ours / baseline - 1):+.1f}%)")
        print(f"warm Recall@50, CML + features - CML: "
              f"{results['CML + features'][0][50] - results['CML'][0][50]:+.4f}")


if __name__ == "__main__":
    main()
