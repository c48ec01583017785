"""Does an epoch cost grow linearly with the training pairs?

Run from the repository root::

    python benchmarks/bench_scaling.py [--pairs 1e5 1e6 1e7] [--threads 2]
        [--solver block] [--epochs 3]

For each size, synthetic data from ``make_interactions`` (50 interactions
per user on average, 50 taste clusters, Zipf popularity; as many users as
it takes to reach the size, half as many items, at least 2,000), then
``CMLRecommender`` with the package defaults (``--solver`` to pick one):

- ``epoch``: seconds of one ``partial_fit`` epoch after a warm-up ``fit``
  of one epoch (median of ``--epochs``), and the same per million pairs:
  flat when the cost is linear in the pairs;
- ``peak``: the peak memory in use during a ``fit`` of one epoch: the input
  CSR plus the tracemalloc peak of ``fit`` (numpy allocations; the Numba
  kernels allocate no large arrays), next to the model's state
  (embeddings, their AdaGrad accumulators and running means).

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import statistics
import time

from _common import fit_peak_bytes, machine_description, tiny_matrix, utc_now

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions

MEAN_INTERACTIONS = 50


def synthetic(n_pairs):
    """About ``n_pairs`` interactions from ``make_interactions``."""
    n_users = max(100, round(n_pairs / MEAN_INTERACTIONS))
    n_items = max(2000, n_users // 2)
    return make_interactions(n_users=n_users, n_items=n_items, n_clusters=50,
                             mean_interactions=MEAN_INTERACTIONS, random_state=0)


def state_bytes(X, model):
    """Embeddings, AdaGrad accumulators and running means, float32."""
    n_vectors = X.shape[0] + X.shape[1]
    k = model.n_components
    return 4 * n_vectors * (k + 1 + (k if model.average else 0))


def measure(X, args):
    settings = dict(n_jobs=args.threads, random_state=0)
    if args.solver:
        settings["solver"] = args.solver
    model = CMLRecommender(n_epochs=1, **settings)
    peak = fit_peak_bytes(model, X)
    laps = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.partial_fit(X)
        laps.append(time.perf_counter() - start)
    input_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return {"epoch": statistics.median(laps), "peak": peak,
            "state": state_bytes(X, model), "input": input_bytes, "solver": model.solver}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=float, nargs="+", default=[1e5, 1e6, 1e7])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--solver", choices=["hogwild", "block"], default=None,
                        help="default: the package default")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per size")
    args = parser.parse_args(argv)
    settings = {"n_jobs": args.threads, "solver": args.solver} if args.solver else {
        "n_jobs": args.threads}
    CMLRecommender(n_components=8, n_epochs=1, **settings).fit(tiny_matrix())  # compile
    machine = machine_description(args.threads)
    print(f"{utc_now()}; {machine['cpu']}, {args.threads} threads; package defaults"
          f"{f', solver={args.solver}' if args.solver else ''}")
    print(f"{'pairs':>10} {'users':>8} {'items':>8} | {'s/epoch':>8} {'s/1M pairs':>10} | "
          f"{'peak MiB':>9} {'state MiB':>9} {'input MiB':>9}")
    for n_pairs in args.pairs:
        X = synthetic(int(n_pairs))
        r = measure(X, args)
        mib = 2.0**20
        print(f"{X.nnz:>10} {X.shape[0]:>8} {X.shape[1]:>8} | {r['epoch']:>8.3f} "
              f"{r['epoch'] / X.nnz * 1e6:>10.3f} | {r['peak'] / mib:>9.1f} "
              f"{r['state'] / mib:>9.1f} {r['input'] / mib:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
