"""How large is a saved model, and how fast does it load, against pickle?

Run from the repository root::

    python benchmarks/bench_persistence.py [--data PATH] [--dataset ml-1m]
        [--n-components 64] [--n-epochs N] [--repeats 5] [--set NAME=VALUE ...]

CMLRecommender (``--n-components`` and the package defaults otherwise,
unless ``--set`` changes them) is fitted on the whole dataset (MovieLens:
ratings of 4 and up), then written to files in a temporary folder:

- ``pickle``: ``pickle.dump`` of the fitted estimator (protocol 5), which
  keeps everything, the training state included;
- ``save``: ``CMLRecommender.save`` with the training matrix (the default)
  and without it (``include_training_matrix=False``), plain and compressed
  (``compress``), and with the optimiser state
  (``include_optimizer_state=True``), which ``partial_fit`` continues from.

For each file: its size, the best of ``--repeats`` writes and the best of
``--repeats`` loads (``pickle.load`` or ``sklearn_cml.load_model``, from the
file, which the page cache holds after the first run), and whether the
loaded model recommends the same items as the fitted one.

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import os
import pickle
import tempfile
import time

import numpy as np
from _common import add_setting_option, find_data_dir, load_positives, tiny_matrix, utc_now

from sklearn_cml import CMLRecommender, load_model


def best_time(function, repeats):
    """Best wall-clock seconds of ``repeats`` calls, and the last result."""
    best, result = np.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def pickle_dump(model, path):
    with open(path, "wb") as file:
        pickle.dump(model, file, protocol=5)


def pickle_load(path):
    with open(path, "rb") as file:
        return pickle.load(file)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--n-components", type=int, default=64)
    parser.add_argument("--n-epochs", type=int, default=None,
                        help="epochs of fit (default: the package's); sizes do not depend on it")
    parser.add_argument("--repeats", type=int, default=5)
    add_setting_option(parser)
    args = parser.parse_args(argv)
    settings = {"n_components": args.n_components, **dict(args.settings)}
    if args.n_epochs is not None:
        settings["n_epochs"] = args.n_epochs

    X = load_positives(args.dataset, find_data_dir(args.data)).tocsr()
    print(f"{args.dataset}: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} pairs; "
          f"{utc_now()}")
    CMLRecommender(n_components=4, n_epochs=1, random_state=0).fit(tiny_matrix())  # compile
    started = time.perf_counter()
    model = CMLRecommender(**settings, random_state=0).fit(X)
    print(f"settings {settings}: fit in {time.perf_counter() - started:.1f} s")
    embeddings = model.user_embeddings_.nbytes + model.item_embeddings_.nbytes
    print(f"user and item vectors: {embeddings / 1e6:.2f} MB")
    users = np.arange(min(1000, X.shape[0]))
    expected = model.recommend(users, n_items=10, filter_seen=False)

    writers = {
        "pickle": (lambda path: pickle_dump(model, path), pickle_load),
        "save, no training matrix": (
            lambda path: model.save(path, include_training_matrix=False), load_model),
        "save, no training matrix, compress": (
            lambda path: model.save(path, include_training_matrix=False, compress=True),
            load_model),
        "save (training matrix)": (lambda path: model.save(path), load_model),
        "save (training matrix), compress": (
            lambda path: model.save(path, compress=True), load_model),
        "save (training matrix), optimizer state": (
            lambda path: model.save(path, include_optimizer_state=True), load_model),
    }
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for number, (name, (write, read)) in enumerate(writers.items()):
            path = os.path.join(folder, f"model-{number}")
            write_seconds, _ = best_time(lambda write=write, path=path: write(path),
                                         args.repeats)
            load_seconds, loaded = best_time(lambda read=read, path=path: read(path),
                                             args.repeats)
            same = bool(np.array_equal(
                loaded.recommend(users, n_items=10, filter_seen=False), expected))
            rows.append((name, os.path.getsize(path), write_seconds, load_seconds, same))

    print(f"\nbest of {args.repeats}; MB = 10^6 bytes\n")
    print("| file | size (MB) | write (s) | load (s) | same recommendations |")
    print("|---|---:|---:|---:|:---:|")
    for name, size, write_seconds, load_seconds, same in rows:
        print(f"| {name} | {size / 1e6:.2f} | {write_seconds:.4f} | {load_seconds:.4f} | "
              f"{'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
