"""Training on a Dask cluster (``distributed.fit``) against one process.

Run from the repository root::

    python benchmarks/bench_distributed_fit.py [--data PATH] [--dataset ml-1m]
        [--n-epochs 30] [--workers 2] [--shards 1 2 4] [--combine-every 1 2 5]
        [--overlap-rate 0 0.1 inf] [--set NAME=VALUE ...]

The dataset is split as every benchmark splits it (``load_split``: per user
60% / 20% / 20%).  CMLRecommender (K=100 and the package defaults, but
``early_stopping=False`` and one thread per fit, unless ``--set`` changes
them) is fitted on the training part once in this process, then with
``distributed.fit`` on a LocalCluster of ``--workers`` single-threaded
worker processes, for each number of shards, each ``combine_every`` and
each ``--overlap-rate`` (how the shards' changes to an item are combined,
``_shard.overlap_factors``: 0 adds them up, inf takes their mean; the
default is the shipped rate).
For each fit it prints the test Recall@50 (ranking every item but the
training ones), the seconds per epoch (for the distributed fits, the
median time of a round of training and combination, per epoch), and the
bytes of item arrays moved per epoch, gathered and sent back, with the
formula's value ``2 * shards * n_items * (4 * K + 4) / combine_every``.
A distributed fit measures its temperature before training, on a sample
of the users: the single-process fit is given the same value, so that the
two differ only in how they train.

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import statistics
import sys
import time

import numpy as np
from _common import (
    add_setting_option,
    find_data_dir,
    load_split,
    machine_description,
    recalls,
    utc_now,
)

from sklearn_cml import CMLRecommender
from sklearn_cml._distributed_fit import distributed_fit
from sklearn_cml._shard import OVERLAP_RATE
from sklearn_cml.metrics import embedding_scores


def test_recall(model, split):
    train, _, test = split
    scores = embedding_scores(model.user_embeddings_, model.item_embeddings_)
    return recalls(test, scores, exclude=train, ks=(50,))[50]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="folder of the datasets")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--n-epochs", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--combine-every", type=int, nargs="+", default=[1])
    parser.add_argument("--overlap-rate", type=float, nargs="+", default=[OVERLAP_RATE])
    parser.add_argument("--seed", type=int, default=0)
    add_setting_option(parser)
    args = parser.parse_args(argv)
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        print("dask.distributed is not installed: pip install 'sklearn-cml[dask]'")
        return
    _, split = load_split(args.dataset, find_data_dir(args.data))
    train = split[0]
    params = dict(n_epochs=args.n_epochs, early_stopping=False, random_state=args.seed,
                  n_jobs=1, **dict(args.settings))
    print(f"{utc_now()}; {machine_description(1)}")
    print(f"{args.dataset}: {train.shape[0]} users, {train.shape[1]} items, {train.nnz} "
          f"training pairs; {args.n_epochs} epochs; {params}")
    print("| fit | shards | combine every | overlap rate | test Recall@50 | s/epoch "
          "| MB in/epoch | MB out/epoch | formula MB/epoch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        temperatures = []
        runs = [(n_shards, combine_every, rate) for n_shards in args.shards
                for combine_every in args.combine_every for rate in args.overlap_rate]
        for n_shards, combine_every, rate in runs:
            model, driver = distributed_fit(CMLRecommender(**params), train, client,
                                            n_shards, combine_every, overlap_rate=rate)
            epochs = np.array([min(combine_every, args.n_epochs - start)
                               for start in range(0, args.n_epochs, combine_every)])
            per_epoch = statistics.median(np.array(driver.round_seconds) / epochs)
            received, sent = (sum(column) / args.n_epochs
                              for column in zip(*driver.bytes_per_round))
            formula = (2 * n_shards * train.shape[1] * (4 * model.n_components + 4)
                       / combine_every)
            temperatures.append(model.resolved_params_.get("temperature"))
            print(f"| distributed, {args.workers} workers | {n_shards} | {combine_every} "
                  f"| {rate:g} | {test_recall(model, split):.4f} | {per_epoch:.3f} "
                  f"| {received / 1e6:.2f} | {sent / 1e6:.2f} | {formula / 1e6:.2f} |",
                  flush=True)
    single_params = dict(params)
    if temperatures and temperatures[0] is not None:
        single_params["temperature"] = temperatures[0]
    started = time.perf_counter()
    single = CMLRecommender(**single_params).fit(train)
    per_epoch = (time.perf_counter() - started) / single.n_iter_
    print(f"| one process, 1 thread | - | - | - | {test_recall(single, split):.4f} "
          f"| {per_epoch:.3f} | - | - | - |")
    print(f"temperature: {single_params.get('temperature', 'auto')}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
