"""Cost curves: epoch time, memory and top-k for all users against the number of pairs.

Run from the repository root::

    python benchmarks/bench_scaling.py [--pairs 1e5 1e6 1e7 1e8] [--threads 2]
        [--solvers hogwild block] [--epochs 3] [--epochs-large 1] [--large 5e7]
        [--topk-chunk 20000] [--topk-max-users 200000] [--topk-sample-users 20000]
        [--generate-block-users 500000] [--extrapolate 1e9] [--json PATH] [--plot PNG]
    python benchmarks/bench_scaling.py --from-json PATH [--plot PNG]   # no run

For each size, synthetic data from ``make_interactions`` (50 interactions
per user on average, 50 taste clusters, Zipf popularity; as many users as
it takes to reach the size, half as many items, at least 2,000), generated
once and given to ``CMLRecommender`` with the package defaults, once per
solver of ``--solvers``:

- ``epoch``: seconds of one ``partial_fit`` epoch after a ``fit`` of one
  epoch (median of ``--epochs``, of ``--epochs-large`` from ``--large``
  pairs on), and the same per million pairs: flat when the cost is linear;
- ``peak``: the peak memory in use during that ``fit``: the input CSR plus
  the tracemalloc peak of ``fit`` (numpy allocations; the Numba kernels
  allocate no large arrays); next to it the model's state (embeddings,
  their AdaGrad accumulators and the running means, which the default
  ``average=5`` starts at the fifth epoch: not yet there in the measured
  ``fit``) and the input CSR;
- ``RSS``: the cross-check, ``getrusage``'s maximum resident set of the
  process that measured the row (it loads the matrix, fits, trains the
  timed epochs and recommends; the interpreter, numpy and the compiled
  kernels included);
- ``top-k``: ``recommend(users, n_items=50)`` (seen items filtered) for
  every user, ``--topk-chunk`` users per call so that memory stays bounded.
  Above ``--topk-max-users`` users, ``--topk-sample-users`` users in
  chunks drawn at random are timed and the time is extrapolated linearly
  to all users (marked ``*``): the exact search costs the same per user.
  Its matrix products run on the BLAS library's threads (all cores unless
  ``OPENBLAS_NUM_THREADS`` or the like says otherwise), not on
  ``--threads``; the JSON records how many.

Every (size, solver) runs in a fresh process, so that its RSS is its own;
the matrix goes to it through a file in a temporary folder, written by
another fresh process that also reports how long ``make_interactions`` took
and its RSS. Above ``--generate-block-users`` users the matrix is drawn in
blocks of users sharing one catalogue (``_SharedCatalogue``): a single
call at 10^8 pairs needs more than 23 GB.

``--extrapolate`` adds sizes that are not run (and so does a size whose
process died, out of memory most likely): their rows are estimated from
the largest measured size (epoch and peak memory linear in the pairs,
state and input from their shapes, top-k linear in users x items) and
marked ``~``. ``others`` is how many cores other processes kept busy
meanwhile: near 0 on a quiet machine.

``--json`` writes every figure; ``--plot`` draws them (log-log: seconds per
epoch, peak MiB, top-k seconds; one line per solver), after a run or from
``--from-json`` without running. matplotlib is imported only to plot.

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import json
import multiprocessing
import resource
import shlex
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from _common import (
    fit_peak_bytes,
    library_versions,
    machine_description,
    other_cores_meter,
    tiny_matrix,
    utc_now,
)
from threadpoolctl import threadpool_info

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions

MEAN_INTERACTIONS = 50
TOPK = 50
MIB = 2.0**20


def shape_for(n_pairs):
    """``(users, items)`` of the synthetic matrix of about ``n_pairs`` pairs."""
    n_users = max(100, round(n_pairs / MEAN_INTERACTIONS))
    return n_users, max(2000, n_users // 2)


def max_rss_bytes():
    """``getrusage``'s maximum resident set of this process, in bytes (it counts KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def state_bytes(n_users, n_items, n_components, average):
    """Embeddings, AdaGrad accumulators and running means, float32."""
    return 4 * (n_users + n_items) * (n_components + 1 + (n_components if average else 0))


def input_bytes(n_pairs, n_users):
    """The CSR: float32 values, int32 columns, int32 row pointers."""
    return 8 * n_pairs + 4 * (n_users + 1)


# --------------------------------------------------------------------------
# The two kinds of fresh process: generate a matrix, measure a solver on it
# --------------------------------------------------------------------------


class _SharedCatalogue(np.random.RandomState):
    """The random state of one block of users of a large synthetic matrix.

    ``make_interactions`` first draws two permutations of the items (their
    taste clusters, then their popularity ranks), then the users.  This
    state answers those two from seed 0 and everything after from its own
    seed: blocks of users drawn with different seeds are then independent
    users of one same catalogue, and stacked they are a draw of the same
    model as a single call (not the same draw), at a fraction of its memory.
    """

    def __init__(self, seed, n_items):
        super().__init__(seed)
        catalogue = np.random.RandomState(0)
        self._catalogue_draws = [catalogue.permutation(n_items), catalogue.permutation(n_items)]

    def permutation(self, x):
        if self._catalogue_draws:
            return self._catalogue_draws.pop(0)
        return super().permutation(x)


def generate(n_pairs, path, block_users):
    """Write the synthetic matrix of about ``n_pairs`` pairs to ``path``;
    above ``block_users`` users, in blocks of users (``_SharedCatalogue``)."""
    n_users, n_items = shape_for(n_pairs)
    start = time.perf_counter()
    common = dict(n_items=n_items, n_clusters=50, mean_interactions=MEAN_INTERACTIONS)
    if n_users <= block_users:
        X = make_interactions(n_users=n_users, random_state=0, **common)
        n_blocks = 1
    else:
        bounds = np.linspace(0, n_users, -(-n_users // block_users) + 1).astype(int)
        blocks, item_labels = [], None
        for seed, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]), start=1):
            block, _, labels = make_interactions(
                n_users=hi - lo, random_state=_SharedCatalogue(seed, n_items),
                return_labels=True, **common)
            if item_labels is not None and not np.array_equal(labels, item_labels):
                raise RuntimeError("make_interactions no longer draws the item clusters "
                                   "first: _SharedCatalogue needs updating")
            blocks.append(block)
            item_labels = labels
        X = sp.vstack(blocks, format="csr")
        n_blocks = len(blocks)
    seconds = time.perf_counter() - start
    sp.save_npz(path, X, compressed=False)
    return {"pairs": int(X.nnz), "users": X.shape[0], "items": X.shape[1],
            "blocks": n_blocks, "seconds": seconds, "max_rss": max_rss_bytes()}


def measure(path, solver, n_epochs, options):
    """One row: epoch time, memory and top-k of ``solver`` on the matrix at ``path``."""
    began = time.perf_counter()
    settings = {"n_jobs": options["threads"], "random_state": 0, "solver": solver}
    # Compile (or load the compiled kernels) outside the measurements.
    CMLRecommender(n_components=8, n_epochs=1, **settings).fit(tiny_matrix()).recommend([0])
    X = sp.load_npz(path).tocsr()
    others = other_cores_meter()
    model = CMLRecommender(n_epochs=1, **settings)
    peak = fit_peak_bytes(model, X)
    laps = []
    for _ in range(n_epochs):
        start = time.perf_counter()
        model.partial_fit(X)
        laps.append(time.perf_counter() - start)
    topk = time_top_k(model, X.shape[0], options)
    n_users, n_items = X.shape
    return {
        "pairs": int(X.nnz), "users": n_users, "items": n_items, "solver": model.solver,
        "epoch_laps": laps, "epoch": statistics.median(laps), "fit_peak": peak,
        "max_rss": max_rss_bytes(), "input": input_bytes(X.nnz, n_users),
        "state": state_bytes(n_users, n_items, model.n_components, model.average),
        "n_components": model.n_components, "average": model.average,
        **topk, "others": others(), "extrapolated": False,
        "measure_seconds": time.perf_counter() - began,
    }


def time_top_k(model, n_users, options):
    """Seconds of ``recommend`` for all users, chunk by chunk; above
    ``topk_max_users`` users, of a random sample of chunks, scaled to all
    users (the exact search costs the same for every user)."""
    chunk = options["topk_chunk"]
    extrapolated = n_users > options["topk_max_users"]
    if extrapolated:
        chunk = min(chunk, options["topk_sample_users"])
        n_slots = n_users // chunk
        n_chunks = min(n_slots, -(-options["topk_sample_users"] // chunk))
        rng = np.random.default_rng(0)
        starts = np.sort(rng.choice(n_slots, n_chunks, replace=False)) * chunk
    else:
        starts = np.arange(0, n_users, chunk)
    seconds, timed_users = 0.0, 0
    for start in starts:
        users = np.arange(start, min(start + chunk, n_users))
        began = time.perf_counter()
        model.recommend(users, n_items=TOPK)
        seconds += time.perf_counter() - began
        timed_users += users.size
    return {"topk": seconds / timed_users * n_users, "topk_timed_users": timed_users,
            "topk_timed_seconds": seconds, "topk_extrapolated": extrapolated}


def in_fresh_process(function, *arguments):
    """``function(*arguments)`` in a new interpreter (spawned, not forked),
    so that its maximum RSS counts its own work only."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *arguments).result()


def extrapolate(reference, n_pairs):
    """The row of a size not run, from the measured row ``reference``:
    time and memory linear in the pairs at the reference's cost per pair
    (so it misses any further cache effect), top-k linear in users x items."""
    n_users, n_items = shape_for(n_pairs)
    scale = n_pairs / reference["pairs"]
    memory = input_bytes(n_pairs, n_users) + state_bytes(
        n_users, n_items, reference["n_components"], reference["average"])
    ref_memory = reference["input"] + reference["state"]
    topk_scale = (n_users * n_items) / (reference["users"] * reference["items"])
    return {
        "pairs": int(n_pairs), "users": n_users, "items": n_items,
        "solver": reference["solver"], "n_components": reference["n_components"],
        "average": reference["average"], "epoch_laps": [], "epoch": reference["epoch"] * scale,
        "fit_peak": reference["fit_peak"] / ref_memory * memory,
        "max_rss": None,  # mostly the interpreter and kernels at small sizes: not scaled
        "input": input_bytes(n_pairs, n_users),
        "state": memory - input_bytes(n_pairs, n_users),
        "topk": reference["topk"] * topk_scale, "topk_timed_users": 0,
        "topk_timed_seconds": 0.0, "topk_extrapolated": True, "others": None,
        "extrapolated": True, "extrapolated_from": reference["pairs"],
    }


# --------------------------------------------------------------------------
# Output: table, JSON, figure
# --------------------------------------------------------------------------

HEADER = (f"{'pairs':>11} {'users':>8} {'items':>8} {'solver':>7} | {'s/epoch':>8} "
          f"{'s/1M pairs':>10} | {'peak MiB':>9} {'RSS MiB':>8} {'state MiB':>9} "
          f"{'input MiB':>9} | {'top-k s':>9} {'ms/user':>7} | {'others':>6}")


def table_line(row):
    """One row of the table; ``~`` marks an extrapolated row, ``*`` a top-k
    time extrapolated from a sample of users."""
    mark = "~" if row["extrapolated"] else " "
    topk_mark = "*" if row["topk_extrapolated"] and not row["extrapolated"] else " "
    others = "" if row["others"] is None else f"{row['others']:.2f}"
    return (f"{row['pairs']:>11}{mark}{row['users']:>8} {row['items']:>8} {row['solver']:>7} | "
            f"{row['epoch']:>8.3f} {row['epoch'] / row['pairs'] * 1e6:>10.3f} | "
            f"{row['fit_peak'] / MIB:>9.1f} {_mib(row['max_rss']):>8} "
            f"{row['state'] / MIB:>9.1f} {row['input'] / MIB:>9.1f} | "
            f"{row['topk']:>8.1f}{topk_mark} {row['topk'] / row['users'] * 1e3:>7.3f} | "
            f"{others:>6}")


def _mib(n_bytes):
    return "" if n_bytes is None else f"{n_bytes / MIB:.1f}"


def print_table(results):
    print(HEADER)
    for row in results["rows"]:
        print(table_line(row))


def plot(results, path):
    """Three log-log panels against the pairs: seconds per epoch, peak MiB,
    top-k seconds; one line per solver, extrapolated points hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("epoch", 1.0, "seconds per epoch"), ("fit_peak", MIB, "peak memory of fit (MiB)"),
              ("topk", 1.0, f"top-{TOPK} for all users (s)")]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    solvers = sorted({row["solver"] for row in results["rows"]})
    for ax, (key, unit, title) in zip(axes, panels):
        for solver, marker in zip(solvers, "os^v"):
            rows = sorted((r for r in results["rows"] if r["solver"] == solver),
                          key=lambda r: r["pairs"])
            pairs = np.array([r["pairs"] for r in rows], dtype=float)
            values = np.array([r[key] / unit for r in rows])
            guessed = np.array([r["extrapolated"] or (key == "topk" and r["topk_extrapolated"])
                                for r in rows])
            (line,) = ax.plot(pairs[~guessed], values[~guessed], marker=marker, label=solver)
            if guessed.any():  # dotted on to the estimates, from the last measured point
                last = np.flatnonzero(~guessed)[-1:]
                tail = np.r_[last, np.flatnonzero(guessed)]
                ax.plot(pairs[tail], values[tail], ":", color=line.get_color())
                ax.plot(pairs[guessed], values[guessed], marker, mfc="none",
                        color=line.get_color())
        _reference_lines(ax, results["rows"], key, unit)
        ax.set(xscale="log", yscale="log", title=title, xlabel="training pairs")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    threads = results["machine"]["threads"]
    fig.text(0.995, 0.01, f"{threads} thread(s); hollow: extrapolated (top-k: from a sample "
             "of users)", ha="right", fontsize=7, color="gray")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"plot: {path}")


def _reference_lines(ax, rows, key, unit):
    """Dashed: linear in the pairs from the smallest measured point; for
    top-k also dotted, quadratic (users x items both grow with the pairs)."""
    measured = [r for r in rows if not r["extrapolated"]]
    first = min(measured, key=lambda r: (r["pairs"], r[key]))
    span = np.array([min(r["pairs"] for r in rows), max(r["pairs"] for r in rows)], float)
    ratio = span / first["pairs"]
    base = first[key] / unit
    ax.plot(span, base * ratio, "--", color="gray", lw=0.8, label="linear")
    if key == "topk":
        ax.plot(span, base * ratio**2, ":", color="gray", lw=0.8, label="quadratic")
        ax.legend(fontsize=7, loc="upper left")


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def run(args):
    options = {"threads": args.threads, "topk_chunk": args.topk_chunk,
               "topk_max_users": args.topk_max_users,
               "topk_sample_users": args.topk_sample_users}
    results = {"command": "python benchmarks/bench_scaling.py " + shlex.join(sys.argv[1:]),
               "date": utc_now(), "machine": machine_description(args.threads),
               "versions": library_versions(), "options": options,
               "blas_threads": [pool["num_threads"] for pool in threadpool_info()
                                if pool["user_api"] == "blas"],
               "epochs": {"epochs": args.epochs, "epochs_large": args.epochs_large,
                          "large": args.large},
               "generation": [], "rows": [], "failed": []}
    print(f"{results['date']}; {results['machine']['cpu']}, {args.threads} threads; "
          f"package defaults, solvers {', '.join(args.solvers)}", flush=True)
    print(HEADER, flush=True)
    started = time.perf_counter()
    to_extrapolate = list(args.extrapolate)
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as folder:
        for n_pairs in args.pairs:
            if not measure_size(n_pairs, Path(folder), args, options, results):
                to_extrapolate.append(n_pairs)
    results["wall_seconds"] = time.perf_counter() - started
    for n_pairs in sorted(set(to_extrapolate)):
        for solver in args.solvers:
            measured = [r for r in results["rows"]
                        if r["solver"] == solver and not r["extrapolated"]]
            if measured:
                row = extrapolate(max(measured, key=lambda r: r["pairs"]), n_pairs)
                results["rows"].append(row)
                print(table_line(row), flush=True)
    print(f"wall time {results['wall_seconds'] / 60:.1f} min; ~ extrapolated row, "
          "* top-k extrapolated from a sample of users", flush=True)
    _save(results, args.json)
    return results


def measure_size(n_pairs, folder, args, options, results):
    """Generate one size and measure every solver on it, each in a fresh
    process; False if a process died (out of memory, most likely)."""
    path = str(folder / f"pairs_{int(n_pairs)}.npz")
    try:
        made = in_fresh_process(generate, int(n_pairs), path, args.generate_block_users)
    except BrokenProcessPool:
        print(f"  make_interactions at {n_pairs:.0e} pairs died (out of memory?)", flush=True)
        results["failed"].append({"pairs": n_pairs, "step": "generate"})
        return False
    results["generation"].append(made)
    print(f"  make_interactions: {made['pairs']} pairs in {made['seconds']:.1f} s "
          f"({made['blocks']} block(s) of users), RSS {made['max_rss'] / MIB:.0f} MiB",
          flush=True)
    n_epochs = args.epochs_large if n_pairs >= args.large else args.epochs
    complete = True
    for solver in args.solvers:
        try:
            row = in_fresh_process(measure, path, solver, n_epochs, options)
        except BrokenProcessPool:
            print(f"  {solver} at {n_pairs:.0e} pairs died (out of memory?)", flush=True)
            results["failed"].append({"pairs": n_pairs, "step": solver})
            complete = False
            continue
        results["rows"].append(row)
        print(table_line(row), flush=True)
        _save(results, args.json)
    Path(path).unlink()
    return complete


def _save(results, path):
    if path:
        Path(path).write_text(json.dumps(results, indent=1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=float, nargs="+", default=[1e5, 1e6, 1e7, 1e8])
    parser.add_argument("--solvers", nargs="+", choices=["hogwild", "block"],
                        default=["hogwild", "block"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per size")
    parser.add_argument("--epochs-large", type=int, default=1,
                        help="timed epochs from --large pairs on")
    parser.add_argument("--large", type=float, default=5e7)
    parser.add_argument("--topk-chunk", type=int, default=20_000, help="users per recommend")
    parser.add_argument("--topk-max-users", type=int, default=200_000,
                        help="above this, time a sample of chunks and extrapolate")
    parser.add_argument("--topk-sample-users", type=int, default=20_000,
                        help="users timed, in random chunks, above --topk-max-users")
    parser.add_argument("--generate-block-users", type=int, default=500_000,
                        help="users per make_interactions call (its memory grows with them)")
    parser.add_argument("--extrapolate", type=float, nargs="*", default=[],
                        help="sizes estimated from the largest measured one, not run")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--plot", help="draw the curves into this PNG")
    parser.add_argument("--from-json", help="read the figures from this file instead of running")
    args = parser.parse_args(argv)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        print(f"{results['command']}\n{results['date']}; {results['machine']['cpu']}")
        print_table(results)
        if "wall_seconds" in results:
            print(f"wall time {results['wall_seconds'] / 60:.1f} min")
    else:
        results = run(args)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
