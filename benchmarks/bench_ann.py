"""Approximate top-k against the exact search: recall and query time.

Run from the repository root (with the approximate-search packages
installed: ``pip install pynndescent faiss-cpu hnswlib``; a missing one is
skipped)::

    python benchmarks/bench_ann.py [--data PATH] [--cache DIR] [--threads 2] [--backends]
        [--synthetic-items 100000] [--synthetic-users 20000]
        [--synthetic-epochs 3] [--synthetic-queries 10000]

Two catalogues of item vectors, float32 as fitted:

- ``ml-1m``: CMLRecommender with the package defaults (``random_state=0``)
  fitted on MovieLens-1M (ratings of 4 and up); with ``--cache`` the fitted
  model is saved there and loaded on later runs;
- ``synthetic``: CMLRecommender (defaults, ``--synthetic-epochs`` epochs)
  fitted on ``make_interactions`` with ``--synthetic-items`` items, to show
  a catalogue where brute force costs more.

First through the package: ``search="nndescent"`` against the default
``search="exact"``, the same model answering ``recommend`` (top 50, with
``filter_seen`` off and on: seen items excluded, the everyday query) and
``kneighbors_items`` (10 neighbours); "graph (s)" is the first query's
build of the graph, after an untimed build on a small model has compiled
pynndescent (the compilation, paid once per process, is printed apart).
A second table gives the cost of one graph query asked for 64 to 2,048
items against one exact query: the search sends a query to the exact
search when it would ask the graph for more than 2% of the items.
Then, with ``--backends``, the libraries side by side on the bare vectors.

With ``--first-query N [N ...]`` it measures only what a new process pays
for its first approximate answer, for ``search="hnsw"`` and
``"nndescent"``: a fresh Python process per measurement imports the
package, builds the backend's index of N random vectors in the unit ball
(``--dimensions``, 100) and answers one top-50 query; "import" is the
package's import (paid by any use of the package), "index + first query"
the rest: the backend's import, any compilation, the build and the query.
One process per backend runs first, untimed, so that whatever the backend
caches on disk is cached; then ``--repeats`` processes are timed.
``--first-query-searches`` restricts the searches (pynndescent on 100,000
items takes minutes a process).

Queries: the top-50 items of users (every user of MovieLens-1M; the first
``--synthetic-queries`` users of the synthetic one), ``recommend(...,
filter_seen=False)``; and the 10 nearest other items of every item,
``kneighbors_items`` (MovieLens-1M only).  The exact lists come from the
package; each backend builds an index of the item vectors (Euclidean) and
answers the same queries at a few settings of its accuracy knob.  Recall@k
of an approximate list is ``|approximate & exact| / k``, the mean over
queries.  Times are wall clock, once each, with ``--threads`` threads for
BLAS, Numba, OpenMP and the backends alike; compilation (pynndescent's
Numba functions) happens in an untimed build on 500 random points first.

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
from _common import (
    find_data_dir,
    library_versions,
    load_positives,
    machine_description,
    utc_now,
)
from threadpoolctl import threadpool_limits

from sklearn_cml import CMLRecommender, load_model
from sklearn_cml._ann import NNDescentIndex
from sklearn_cml._topk import exact_top_k
from sklearn_cml.datasets import make_interactions

RECOMMEND_K = 50
NEIGHBORS_K = 10
WIDTH_QUERIES = 500
EPSILON = NNDescentIndex.DEFAULT_PARAMS["epsilon"]


def timed(function, *args):
    """``(seconds, result)`` of one call of ``function(*args)``."""
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def mean_recall(approximate, exact):
    """Mean over rows of ``|approximate & exact| / k``, ``k`` the width of ``exact``."""
    k = exact.shape[1]
    hits = [np.intersect1d(a, e).size for a, e in zip(approximate, exact)]
    return float(np.mean(hits)) / k


def drop_self(neighbors, k):
    """The first ``k`` entries of each row that are not the row's own index."""
    kept = np.full((neighbors.shape[0], k), -1, dtype=np.int64)
    for own, found in enumerate(neighbors):
        others = found[found != own][:k]
        kept[own, : others.size] = others
    return kept


# --------------------------------------------------------------------------
# Backends: build(items, threads) returns an index; search(index, queries, k,
# setting) returns (n_queries, k) item indices, nearest first.
# --------------------------------------------------------------------------


def pynndescent_backend():
    import pynndescent

    def build(items, threads):
        index = pynndescent.NNDescent(items, metric="euclidean", n_neighbors=30,
                                      n_jobs=threads, random_state=0)
        index.prepare()
        return index

    def search(index, queries, k, epsilon):
        return index.query(queries, k=k, epsilon=epsilon)[0]

    return ("pynndescent", pynndescent.__version__, "n_neighbors=30", "epsilon",
            (0.05, 0.1, 0.2), build, search)


def faiss_backend():
    import faiss

    def build(items, threads):
        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWFlat(items.shape[1], 32)
        index.hnsw.efConstruction = 200
        index.add(np.ascontiguousarray(items))
        return index

    def search(index, queries, k, ef):
        index.hnsw.efSearch = max(ef, k)
        return index.search(np.ascontiguousarray(queries), k)[1]

    return ("faiss HNSWFlat", faiss.__version__, "M=32, efConstruction=200", "efSearch",
            (64, 128, 256), build, search)


def hnswlib_backend():
    import hnswlib

    def build(items, threads):
        index = hnswlib.Index(space="l2", dim=items.shape[1])
        index.init_index(max_elements=items.shape[0], M=32, ef_construction=200,
                         random_seed=0)
        index.set_num_threads(threads)
        index.add_items(items, np.arange(items.shape[0]))
        return index

    def search(index, queries, k, ef):
        index.set_ef(max(ef, k))
        return index.knn_query(queries, k=k)[0].astype(np.int64)

    version = getattr(hnswlib, "__version__", None)
    if version is None:
        from importlib import metadata
        version = metadata.version("hnswlib")
    return ("hnswlib", version, "M=32, ef_construction=200", "ef",
            (64, 128, 256), build, search)


def available_backends():
    backends = []
    for make in (pynndescent_backend, faiss_backend, hnswlib_backend):
        try:
            backends.append(make())
        except ImportError as error:
            print(f"skipped: {error}")
    return backends


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def movielens_model(data_dir, cache):
    """CMLRecommender with the defaults fitted on MovieLens-1M (or its cached
    copy), and the matrix it was fitted on."""
    path = cache / "ml-1m-defaults.cml" if cache else None
    X = load_positives("ml-1m", data_dir).tocsr()
    if path is not None and path.exists():
        return load_model(path), X, "loaded from the cache"
    seconds, model = timed(lambda: CMLRecommender(random_state=0).fit(X))
    if path is not None:
        model.save(path)
    return model, X, f"fitted in {seconds:.0f} s"


def synthetic_model(n_users, n_items, n_epochs, cache):
    """CMLRecommender (defaults, ``n_epochs``) fitted on ``make_interactions``."""
    name = f"synthetic-{n_users}x{n_items}-{n_epochs}.cml"
    path = cache / name if cache else None
    X = make_interactions(n_users=n_users, n_items=n_items, n_clusters=100,
                          mean_interactions=30, random_state=0)
    if path is not None and path.exists():
        return load_model(path), X, "loaded from the cache"
    seconds, model = timed(
        lambda: CMLRecommender(n_epochs=n_epochs, random_state=0).fit(X))
    if path is not None:
        model.save(path)
    return model, X, f"{X.nnz} pairs, fitted in {seconds:.0f} s"


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------


def measure(model, users, backends, threads, with_neighbors):
    """Rows of the table for one catalogue: the exact path, then each backend setting."""
    items = np.ascontiguousarray(model.item_embeddings_, dtype=np.float32)
    user_vectors = np.ascontiguousarray(model.user_embeddings_[users], dtype=np.float32)
    exact_seconds, exact = timed(
        lambda: model.recommend(users, n_items=RECOMMEND_K, filter_seen=False))
    exact_row = ["exact (package)", "", "", "", f"{exact_seconds:.3f}", "1.000"]
    if with_neighbors:
        neighbors_seconds, exact_neighbors = timed(
            lambda: model.kneighbors_items(n_neighbors=NEIGHBORS_K, return_distance=False))
        exact_row += [f"{neighbors_seconds:.3f}", "1.000"]
    rows = [exact_row]

    warm_up = np.random.default_rng(0).standard_normal((500, items.shape[1]))
    warm_up = warm_up.astype(np.float32)
    for name, version, build_setting, knob, values, build, search in backends:
        # Untimed: a build and a query on a small set first, so that
        # compilation (pynndescent's Numba functions) is not counted.
        search(build(warm_up, threads), warm_up[:10], RECOMMEND_K, values[0])
        build_seconds, index = timed(build, items, threads)
        search(index, user_vectors[:10], RECOMMEND_K, values[0])
        for value in values:
            seconds, found = timed(search, index, user_vectors, RECOMMEND_K, value)
            row = [f"{name} {version}", f"{build_seconds:.2f}", build_setting,
                   f"{knob}={value}", f"{seconds:.3f}", f"{mean_recall(found, exact):.3f}"]
            if with_neighbors:
                # k + 1: the item itself comes back first, and is dropped.
                item_seconds, found_items = timed(search, index, items, NEIGHBORS_K + 1, value)
                recall = mean_recall(drop_self(found_items, NEIGHBORS_K), exact_neighbors)
                row += [f"{item_seconds:.3f}", f"{recall:.3f}"]
            rows.append(row)
    return rows


# What one fresh process runs for --first-query: the times it prints are
# measured from before the package's import.
FIRST_QUERY = """
import json, sys, time
started = time.perf_counter()
import numpy as np
from sklearn_cml._query import SEARCHES, check_search
imported = time.perf_counter()
search, n_items, n_components, threads = sys.argv[1], *map(int, sys.argv[2:5])
rng = np.random.default_rng(0)
vectors = rng.standard_normal((n_items, n_components)).astype(np.float32)
radii = rng.random((n_items, 1)) ** (1 / n_components)
vectors *= (radii / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
made = time.perf_counter()
params = check_search(search, None)
index = SEARCHES[search](vectors, params, 0, threads)
index.top_k(vectors[:1], 50, None, params)
answered = time.perf_counter()
print(json.dumps({"import": imported - started, "first query": answered - made}))
"""


def first_query(search, n_items, n_components, threads):
    """``{"import": s, "first query": s}`` of one fresh process (the second
    without the package's import)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, "-c", FIRST_QUERY, search, str(n_items),
                           str(n_components), str(threads)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def print_first_queries(sizes, searches, n_components, threads, repeats):
    """The table of ``--first-query``: best and worst of ``repeats`` fresh processes."""
    print(f"\nFirst query in a new process: import, index of N x {n_components} random "
          f"vectors, one top-50 query; {threads} threads; best / worst of {repeats} "
          "processes after an untimed one\n")
    print("| search | items | package import (s), best | index + first query (s), best "
          "| worst |")
    print("|---|---:|---:|---:|---:|")
    for search in searches:
        for n_items in sizes:
            first_query(search, n_items, n_components, threads)  # fills on-disk caches
            runs = [first_query(search, n_items, n_components, threads)
                    for _ in range(repeats)]
            times = [run["first query"] for run in runs]
            print(f"| `{search!r}` | {n_items} | {min(run['import'] for run in runs):.2f} | "
                  f"{min(times):.2f} | {max(times):.2f} |", flush=True)


def compile_search():
    """Seconds of a first graph and query on a small model: pynndescent's
    compilation, paid once per process."""
    X = make_interactions(n_users=200, n_items=300, random_state=0)
    model = CMLRecommender(n_components=8, n_epochs=1, random_state=0).fit(X)
    model.set_params(search="nndescent")
    return timed(model.recommend, np.arange(10), 5)[0]


def measure_package(model, X, users, with_neighbors):
    """Rows of the package table: ``search="exact"`` then ``"nndescent"``."""
    seen = X[users]
    queries = {
        "unfiltered": lambda: model.recommend(users, n_items=RECOMMEND_K, filter_seen=False),
        "filtered": lambda: model.recommend(users, n_items=RECOMMEND_K, user_items=seen),
    }
    if with_neighbors:
        queries["neighbours"] = lambda: model.kneighbors_items(n_neighbors=NEIGHBORS_K,
                                                               return_distance=False)
    rows, exact = [], {}
    for search in ("exact", "nndescent"):
        model.set_params(search=search)
        model._model._cache.pop("search index", None)  # built anew, and timed
        graph_seconds = ""
        if search == "nndescent":  # the first query builds the graph
            started = time.perf_counter()
            model.recommend(users[:1], n_items=1, filter_seen=False)
            graph_seconds = f"{time.perf_counter() - started:.2f}"
        row = [f"search={search!r}", graph_seconds]
        for name, query in queries.items():
            seconds, found = timed(query)
            exact.setdefault(name, found)
            row += [f"{seconds:.3f}", f"{mean_recall(found, exact[name]):.3f}"]
        rows.append(row)
    model.set_params(search="exact")
    return rows


def print_widths(model, users, widths=(64, 128, 256, 512, 1024, 2048)):
    """Milliseconds per query of the graph asked for ``width`` items, against
    one exact query: where the exact search becomes the cheaper one."""
    model.set_params(search="nndescent")
    model.recommend(users[:1], n_items=1, filter_seen=False)  # the graph
    index, n_items = model._model._cache["search index"], model.item_embeddings_.shape[0]
    queries = model.user_embeddings_[users[:WIDTH_QUERIES]]
    exact_seconds, _ = timed(exact_top_k, queries, model.item_embeddings_, RECOMMEND_K, None)
    exact_ms = exact_seconds / queries.shape[0] * 1e3
    print(f"\nCost of a graph query ({queries.shape[0]} queries), against "
          f"{exact_ms:.3f} ms per exact query\n")
    print("| items asked | share of the catalogue | ms per query | / exact |")
    print("|---:|---:|---:|---:|")
    for width in (w for w in widths if w <= n_items // 2):
        seconds, _ = timed(index.graph.query, queries, width, EPSILON)
        ms = seconds / queries.shape[0] * 1e3
        print(f"| {width} | {width / n_items:.3f} | {ms:.3f} | {ms / exact_ms:.2f} |")
    model.set_params(search="exact")


def print_package_table(title, rows, with_neighbors):
    print(f"\n{title}\n")
    header = ["search", "graph (s)", f"top-{RECOMMEND_K}, all items (s)", "recall",
              f"top-{RECOMMEND_K}, seen left out (s)", "recall"]
    if with_neighbors:
        header += [f"item neighbours, k={NEIGHBORS_K} (s)", "recall"]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "|".join(["---:"] * (len(header) - 1)) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def print_table(title, rows, with_neighbors):
    print(f"\n{title}\n")
    header = ["backend", "build (s)", "index", "query setting",
              f"top-{RECOMMEND_K} query (s)", f"recall@{RECOMMEND_K}"]
    if with_neighbors:
        header += [f"item neighbours, k={NEIGHBORS_K} (s)", f"recall@{NEIGHBORS_K}"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * 4 + ["---:"] * (len(header) - 4)) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--cache", default=None,
                        help="folder for the fitted models (saved once, loaded after)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--synthetic-items", type=int, default=100_000,
                        help="items of the synthetic catalogue; 0 skips it")
    parser.add_argument("--synthetic-users", type=int, default=20_000)
    parser.add_argument("--synthetic-epochs", type=int, default=3)
    parser.add_argument("--synthetic-queries", type=int, default=10_000)
    parser.add_argument("--backends", action="store_true",
                        help="also measure pynndescent, faiss and hnswlib on the bare vectors")
    parser.add_argument("--first-query", type=int, nargs="+", default=None, metavar="N",
                        help="only the first query of fresh processes, on N items")
    parser.add_argument("--first-query-searches", nargs="+", default=["hnsw", "nndescent"])
    parser.add_argument("--dimensions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.first_query:
        print(f"{utc_now()}; {machine_description(args.threads)}")
        print(library_versions())
        print_first_queries(args.first_query, args.first_query_searches, args.dimensions,
                            args.threads, args.repeats)
        return
    cache = Path(args.cache) if args.cache else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    numba.set_num_threads(args.threads)
    print(f"{utc_now()}; {machine_description(args.threads)}")
    print(library_versions())
    backends = available_backends() if args.backends else []
    with threadpool_limits(limits=args.threads):
        print(f"pynndescent's compilation (first graph in this process): "
              f"{compile_search():.1f} s")
        model, X, how = movielens_model(find_data_dir(args.data), cache)
        print(f"ml-1m: {model.user_embeddings_.shape[0]} users, "
              f"{model.item_embeddings_.shape[0]} items, "
              f"{model.item_embeddings_.shape[1]} dimensions; {how}")
        users = np.arange(model.user_embeddings_.shape[0])
        print_package_table(
            f"MovieLens-1M through the package: {users.size} users, "
            f"{model.item_embeddings_.shape[0]} items; {args.threads} threads",
            measure_package(model, X, users, with_neighbors=True), with_neighbors=True)
        print_widths(model, users)
        if backends:
            rows = measure(model, users, backends, args.threads, with_neighbors=True)
            print_table(f"MovieLens-1M: top-{RECOMMEND_K} of all {users.size} users, "
                        f"{NEIGHBORS_K} neighbours of all {model.item_embeddings_.shape[0]} "
                        f"items; {args.threads} threads", rows, with_neighbors=True)

        if args.synthetic_items:
            model, X, how = synthetic_model(args.synthetic_users, args.synthetic_items,
                                            args.synthetic_epochs, cache)
            print(f"\nsynthetic: {model.user_embeddings_.shape[0]} users, "
                  f"{model.item_embeddings_.shape[0]} items; {how}")
            users = np.arange(min(args.synthetic_queries, model.user_embeddings_.shape[0]))
            print_package_table(
                f"Synthetic through the package: top-{RECOMMEND_K} of {users.size} users over "
                f"{model.item_embeddings_.shape[0]} items; {args.threads} threads",
                measure_package(model, X, users, with_neighbors=False), with_neighbors=False)
            print_widths(model, users)
            if not backends:
                return
            rows = measure(model, users, backends, args.threads, with_neighbors=False)
            print_table(f"Synthetic: top-{RECOMMEND_K} of {users.size} users over "
                        f"{model.item_embeddings_.shape[0]} items; {args.threads} threads",
                        rows, with_neighbors=False)


if __name__ == "__main__":
    main()
