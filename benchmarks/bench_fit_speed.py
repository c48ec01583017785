"""How fast does CMLRecommender train, and how close is it to the floor?

Run from the repository root (``pip install -e '.[bench]'`` first for LightFM)::

    python benchmarks/bench_fit_speed.py [--data PATH] [--threads 1 2]
        [--epochs N] [--n-components 100] [--n-negatives 20]
        [--negative-sampling-exponent BETA] [--loss {hinge,softmax}] [--no-average]
        [--solver {hogwild,block}] [--block-size B] [--pool-size N]
        [--no-compile] [--pause SECONDS]

Data: MovieLens-1M from ``--data`` (else ``$SKLEARN_CML_DATA``, else
``../shared/data`` beside the repository), the folder that holds ``ml-1m/``.
Ratings >= 4 are positives; the training matrix is the 60% part of the
paper's split, ``train_validation_test_split(X, random_state=0)``, as in
every benchmark.

Figures, for each thread count:

(a) compile   Numba compile time of CMLRecommender: in a fresh subprocess with
              ``SKLEARN_CML_NUMBA_CACHE=0``, the first ``fit`` on a tiny matrix
              minus a second identical ``fit``.  ``cache load`` is the same
              first fit in a subprocess with the on-disk cache on and already
              filled (first fit minus second fit there too).  ``--no-compile``
              leaves (a) out (its subprocesses compile every kernel anew).
(b) epoch     CMLRecommender seconds per epoch after a warm-up: ``fit`` with
              ``n_epochs=1`` then ``--epochs`` calls of ``partial_fit`` (one
              epoch each); median and min.  ``fit(5)/5`` is a ``fit`` with
              ``n_epochs=5`` divided by 5, so it includes setup.
(c) bare      (per-pair solver) a reference Numba loop written here: for every training pair in
              a shuffled order, read the user vector, the positive item vector
              and ``n_negatives`` uniformly drawn item vectors and compute the
              squared distances.  Nothing is updated: it is the least work
              any CML epoch must do.  The shuffle is inside the timing.
(c') blas     (block solver) the BLAS bound: the three matrix products of
              each block alone, ``U V^T``, ``W V`` and ``W^T U``, on the
              shapes of an epoch of the solver (users of each block x
              ``--pool-size`` x K, the blocks of ``block.make_plan``), float32
              numpy products with BLAS on the run's threads.  Everything
              else (distances, the loss, masking, the steps) is left out.
(d) lightfm   LightFM WARP (``lightfm-next``), ``fit_partial(epochs=1)`` with
              the same embedding size and threads; median seconds per epoch.
              WARP stops sampling at the first violating negative (at most
              ``max_sampled=10``), so it reads fewer vectors than CML's 20.
(e) memory    peak memory in use during ``CMLRecommender.fit`` (compiled
              already): the CSR input X plus the tracemalloc peak of ``fit``
              (X is allocated before tracing starts), divided by the
              reference state: embeddings and their optimiser state (row-wise
              AdaGrad accumulators and, when the epochs are averaged, as by
              default, the running means of the vectors),
              ``(n_users + n_items) * (K + 1 [+ K]) * 4`` bytes, plus X (data
              + indices + indptr).  The ratio to the state without the
              running means is printed too.  tracemalloc sees numpy
              allocations; the Numba kernels allocate no large arrays.
(f) ratios    CML epoch / bare epoch (target <= 2) or, for the block solver,
              CML epoch / BLAS bound (target <= 1.5), CML epoch / LightFM
              epoch (target <= 0.5), each the median over rounds of the ratio of
              the two epochs timed back to back in that round; peak memory
              ratio (target <= 1.5).

The epochs of (b), (c) and (d) are timed interleaved, one epoch of each in
turn, so that a slow spell of a shared machine hits all three alike, and each
timed epoch follows an untimed pause (``--pause``, 1 s by default) so that
threads the previous one left busy-waiting (OpenBLAS spins for a while after
each call) do not slow the next.  ``others`` is how many cores other
processes kept busy during the timed epochs: with several threads a static
parallel loop runs at the pace of its slowest thread, so trust the
multi-thread rows only when it is near 0.

It is a benchmark, not a test: it prints figures and never asserts times.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numba
import numpy as np
from _common import (
    find_data_dir,
    fit_peak_bytes,
    library_versions,
    load_split,
    machine_description,
    other_cores_meter,
    tiny_matrix,
    utc_now,
)
from numba import njit, prange
from peers import INSTALL_HINT, lightfm_warp
from threadpoolctl import threadpool_limits

from sklearn_cml import CMLRecommender
from sklearn_cml._config import auto_pool_size
from sklearn_cml._losses import LOSSES
from sklearn_cml._rng import random_below, seed_states
from sklearn_cml._solvers import block as block_solver

BARE_LOOP_BLOCKS = 64
# Untimed pause before each timed epoch (the default of --pause): worker
# threads that the previous epoch left busy-waiting (OpenBLAS spins for a
# while after each call) get to sleep, so one competitor's leftovers are not
# charged to the next.
PAUSE_SECONDS = 1.0
TARGETS = {"cml/bare": 2.0, "cml/blas": 1.5, "cml/lightfm": 0.5, "memory": 1.5}


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def timed(function, *args, **kwargs):
    """Return the wall-clock seconds of one call."""
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


class numba_threads:
    """Context manager: run Numba parallel code on ``n`` threads, then
    restore the previous count (also on error)."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.previous = numba.get_num_threads()
        numba.set_num_threads(self.n)

    def __exit__(self, *exc):
        numba.set_num_threads(self.previous)
        return False


def solver_of(args):
    """The solver the run times: ``--solver``, else the package default."""
    return args.solver or CMLRecommender().solver


def make_estimator(n_threads, args, n_epochs):
    extra = {}
    if args.negative_sampling_exponent is not None:
        extra["negative_sampling_exponent"] = args.negative_sampling_exponent
    if args.loss is not None:
        extra["loss"] = args.loss
    if args.no_average:
        extra["average"] = False
    for name in ("solver", "block_size", "pool_size"):
        if getattr(args, name) is not None:
            extra[name] = getattr(args, name)
    return CMLRecommender(n_components=args.n_components, n_negatives=args.n_negatives,
                          n_epochs=n_epochs, n_jobs=n_threads, random_state=0, **extra)


# --------------------------------------------------------------------------
# (a) compile time, in fresh subprocesses
# --------------------------------------------------------------------------


def compile_probe(args):
    """Child-process body: time two identical fits on a tiny matrix, print JSON."""
    X = tiny_matrix()
    n_threads = args.threads[0]
    first = timed(make_estimator(n_threads, args, 1).fit, X)
    second = timed(make_estimator(n_threads, args, 1).fit, X)
    print(json.dumps({"first": first, "second": second}))


def run_compile_probe(n_threads, args, cache):
    """Run ``compile_probe`` in a fresh interpreter; return its two fit times."""
    env = dict(os.environ, SKLEARN_CML_NUMBA_CACHE="1" if cache else "0")
    command = [sys.executable, __file__, "--compile-probe", "--threads", str(n_threads),
               "--n-components", str(args.n_components),
               "--n-negatives", str(args.n_negatives)]
    if args.negative_sampling_exponent is not None:
        command += ["--negative-sampling-exponent", str(args.negative_sampling_exponent)]
    if args.loss is not None:
        command += ["--loss", args.loss]
    if args.no_average:
        command += ["--no-average"]
    for name in ("solver", "block_size", "pool_size"):
        if getattr(args, name) is not None:
            command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_compile(n_threads, args):
    """Compile time (cache off) and cache-load time (cache on and filled)."""
    cold = run_compile_probe(n_threads, args, cache=False)
    run_compile_probe(n_threads, args, cache=True)  # fills the on-disk cache
    cached = run_compile_probe(n_threads, args, cache=True)
    return {"compile": cold["first"] - cold["second"], "first_fit_nocache": cold["first"],
            "cache_load": cached["first"] - cached["second"],
            "first_fit_cached": cached["first"], "second_fit": cold["second"]}


# --------------------------------------------------------------------------
# (b) (c) (d) epoch runners, timed interleaved
# --------------------------------------------------------------------------
#
# Each runner does its warm-up (compilation, first epoch) and returns a
# function that runs exactly one more epoch.  The runners are then timed in
# rounds, one epoch of each per round, so that a slow spell of the machine
# (other processes, a shared host) hits all of them alike and the ratios stay
# meaningful.  Each timed epoch follows an untimed pause (PAUSE_SECONDS).


def cml_runner(X, n_threads, args):
    """Warm-up ``fit(n_epochs=1)``; each call then runs one ``partial_fit``."""
    model = make_estimator(n_threads, args, 1).fit(X)
    return lambda: model.partial_fit(X)


@njit(parallel=True, fastmath=True)
def bare_epoch(pair_users, pair_items, order, user_vectors, item_vectors,
               n_negatives, states, out):
    """Read the vectors one CML epoch must read and compute their distances.

    For each pair ``order[p]`` (split into ``states.shape[0]`` fixed blocks,
    each with its own RNG state): squared distance user-positive and user to
    ``n_negatives`` uniform items.  ``out[block]`` gets a sum of hinge values
    so that the compiler cannot drop the work.
    """
    n_blocks = states.shape[0]
    n_pairs = order.shape[0]
    n_items, n_dims = item_vectors.shape
    block_size = (n_pairs + n_blocks - 1) // n_blocks
    for block in prange(n_blocks):
        total = np.float32(0.0)
        state = states[block]
        for p in range(block * block_size, min((block + 1) * block_size, n_pairs)):
            pair = order[p]
            user = pair_users[pair]
            positive = pair_items[pair]
            d_positive = np.float32(0.0)
            for f in range(n_dims):
                diff = user_vectors[user, f] - item_vectors[positive, f]
                d_positive += diff * diff
            for _ in range(n_negatives):
                state, negative = random_below(state, n_items)
                d_negative = np.float32(0.0)
                for f in range(n_dims):
                    diff = user_vectors[user, f] - item_vectors[negative, f]
                    d_negative += diff * diff
                total += max(np.float32(0.0), np.float32(1.0) + d_positive - d_negative)
        states[block] = state
        out[block] = total


def random_unit_ball(n_rows, n_dims, rng):
    """float32 C-contiguous rows with norm <= 1, like trained CML vectors."""
    vectors = rng.standard_normal((n_rows, n_dims)).astype(np.float32)
    vectors /= np.maximum(1.0, np.linalg.norm(vectors, axis=1, keepdims=True))
    return np.ascontiguousarray(vectors)


def bare_runner(X, n_threads, args):
    """Compile ``bare_epoch``; each call then shuffles the pairs and runs it."""
    rng = np.random.default_rng(0)
    coo = X.tocoo()
    pair_users = coo.row.astype(np.int32)
    pair_items = coo.col.astype(np.int32)
    user_vectors = random_unit_ball(X.shape[0], args.n_components, rng)
    item_vectors = random_unit_ball(X.shape[1], args.n_components, rng)
    states = seed_states(0, BARE_LOOP_BLOCKS)
    out = np.zeros(BARE_LOOP_BLOCKS, dtype=np.float32)

    def one_epoch():
        order = rng.permutation(pair_users.size).astype(np.int32)
        with numba_threads(n_threads):
            bare_epoch(pair_users, pair_items, order, user_vectors, item_vectors,
                       args.n_negatives, states, out)

    one_epoch()  # compile
    return one_epoch


def blas_runner(X, n_threads, args):
    """The block solver's three products alone, on one epoch's block shapes."""
    model = make_estimator(n_threads, args, 1)
    pool_size, block_size = model.pool_size, model.block_size
    if pool_size == "auto":
        pool_size = auto_pool_size(X.nnz, int(np.count_nonzero(np.diff(X.indptr))))
    plan = block_solver.make_plan(X.indptr.astype(np.int64), X.indices.astype(np.int32),
                                  np.ones(X.nnz, np.float32), block_solver.GROUP_SIZE,
                                  block_size, 0)
    slots_per_block = np.diff(plan.block_ptr)
    rng = np.random.default_rng(0)
    users = random_unit_ball(int(slots_per_block.max()), args.n_components, rng)
    pool = random_unit_ball(pool_size, args.n_components, rng)
    products = np.empty((users.shape[0], pool_size), np.float32)
    weighted_pool = np.empty_like(users)
    weighted_users = np.empty_like(pool)

    def one_epoch():
        with threadpool_limits(limits=n_threads, user_api="blas"):
            for n_slots in slots_per_block:
                np.dot(users[:n_slots], pool.T, out=products[:n_slots])
                np.dot(products[:n_slots], pool, out=weighted_pool[:n_slots])
                np.dot(products[:n_slots].T, users[:n_slots], out=weighted_users)

    one_epoch()
    return one_epoch


def lightfm_runner(X, n_threads, args):
    """One warm-up WARP epoch; each call then runs ``fit_partial(epochs=1)``."""
    train = X.tocoo()
    from lightfm import LightFM

    model = LightFM(no_components=args.n_components, loss="warp", random_state=0)
    model.fit_partial(train, epochs=1, num_threads=n_threads)
    return lambda: model.fit_partial(train, epochs=1, num_threads=n_threads)


def time_interleaved(runners, n_rounds, pause=PAUSE_SECONDS):
    """Seconds of each runner's epochs, ``n_rounds`` rounds of one epoch each,
    each epoch after an untimed ``pause``.

    Also returns how many cores other processes kept busy on average
    meanwhile (None where ``/proc/stat`` is missing).
    """
    times = {name: [] for name in runners}
    other_cores = other_cores_meter()
    for _ in range(n_rounds):
        for name, run in runners.items():
            time.sleep(pause)
            times[name].append(timed(run))
    return times, other_cores()


def summary(epochs):
    return {"median": statistics.median(epochs), "min": min(epochs), "epochs": epochs}


def fit_per_epoch(X, n_threads, args, n_epochs=5):
    """``fit(n_epochs=5)`` seconds / 5: the epoch cost including setup."""
    time.sleep(args.pause)
    return timed(make_estimator(n_threads, args, n_epochs).fit, X) / n_epochs


# --------------------------------------------------------------------------
# (e) peak memory
# --------------------------------------------------------------------------


def input_bytes(X):
    """Bytes of the CSR passed to fit."""
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def reference_bytes(X, n_components, averaged):
    """Embeddings (float32), their optimiser state and the CSR passed to fit.

    The state is the AdaGrad accumulators (one float32 per vector: row-wise
    AdaGrad) and, when ``averaged``, the running means of the vectors.
    """
    n_vectors = X.shape[0] + X.shape[1]
    floats_per_vector = n_components + 1 + (n_components if averaged else 0)
    return n_vectors * floats_per_vector * 4 + input_bytes(X)


def measure_cml_memory(X, n_threads, args):
    """Peak memory of one ``fit`` (compiled already) over ``reference_bytes``.

    X is alive during fit but allocated before tracing starts, so the peak
    in use is X plus the tracemalloc peak of fit.
    """
    model = make_estimator(n_threads, args, 2)
    peak = fit_peak_bytes(model, X)
    reference = reference_bytes(X, args.n_components, bool(model.average))
    without_means = reference_bytes(X, args.n_components, False)
    return {"peak": peak, "reference": reference, "ratio": peak / reference,
            "ratio_to_state_without_means": peak / without_means}


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def threading_layer():
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return numba.config.THREADING_LAYER


def load_average():
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def machine_lines():
    machine, versions = machine_description(), library_versions()
    return [
        f"machine : {machine['cpu']}, {machine['logical_cores']} logical cores "
        f"({machine['usable_cores']} usable)",
        f"python  : {versions['python']}   numpy {versions['numpy']}   "
        f"numba {versions['numba']} (threading layer: {threading_layer()})",
        f"date    : {utc_now()}",
        f"load    : {load_average()} (1/5/15 min) at the end",
    ]


def fmt(value, unit="s", digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def paired_ratio(numerator, denominator):
    """Median over rounds of numerator epoch / denominator epoch.

    Each round times one epoch of every loop back to back, so a slow spell
    of the machine hits both sides of a round's ratio alike.
    """
    if not numerator or not denominator:
        return None
    return statistics.median(
        a / b for a, b in zip(numerator["epochs"], denominator["epochs"], strict=True))


def print_table(results, args):
    """The compact summary: one row per thread count."""
    floor = "blas" if solver_of(args) == "block" else "bare"
    header = (f"{'threads':>7} | {'compile':>8} {'cacheld':>8} | {'cml med':>8} "
              f"{'cml min':>8} {'fit5/5':>8} | {floor:>7} {'lightfm':>8} | "
              f"{'cml/' + floor:>8} {'cml/lfm':>8} {'mem':>6} | {'others':>6}")
    print(header)
    print("-" * len(header))
    for n_threads, r in results.items():
        cml = r.get("cml") or {}
        cml_median = cml.get("median")
        bare = r[floor]["median"]
        lfm = (r.get("lightfm") or {}).get("median")
        cml_per_bare = paired_ratio(cml, r[floor])
        cml_per_lfm = paired_ratio(cml, r.get("lightfm"))
        compile_ = r.get("compile") or {}
        memory = (r.get("memory") or {}).get("ratio")
        print(f"{n_threads:>7} | {fmt(compile_.get('compile')):>8} "
              f"{fmt(compile_.get('cache_load')):>8} | {fmt(cml_median):>8} "
              f"{fmt(cml.get('min')):>8} {fmt(cml.get('fit5_per_epoch')):>8} | "
              f"{fmt(bare):>7} {fmt(lfm):>8} | {fmt(cml_per_bare, 'x', 2):>8} "
              f"{fmt(cml_per_lfm, 'x', 2):>8} {fmt(memory, 'x', 2):>6} | "
              f"{fmt(r.get('others'), '', 2):>6}")
    print(f"targets: cml/{floor} <= {TARGETS['cml/' + floor]}x, cml/lightfm <= "
          f"{TARGETS['cml/lightfm']}x, peak memory <= {TARGETS['memory']}x")
    exponent = ("package default" if args.negative_sampling_exponent is None
                else args.negative_sampling_exponent)
    solver = solver_of(args)
    shape = (f"block_size={args.block_size or CMLRecommender().block_size}, "
             f"pool_size={args.pool_size or CMLRecommender().pool_size}"
             if solver == "block" else f"n_negatives={args.n_negatives}")
    print(f"solver={solver}, K={args.n_components}, {shape}, "
          f"negative_sampling_exponent={exponent}, "
          f"{args.epochs} timed epochs; times are seconds per epoch (median unless 'min');")
    print(f"cml/{floor} and cml/lfm are medians of per-round ratios (one epoch of each loop "
          "per round, back to back);")
    print("others = cores kept busy by other processes during the timed epochs "
          "(near 0 on a quiet machine)")


def run_one_thread_count(X, n_threads, args):
    """Every figure for one thread count, printed as it comes."""
    print(f"\n== {n_threads} thread(s) ==")
    if args.no_compile:
        result = {"compile": None}
        print("(a) compile: not measured (--no-compile)")
    else:
        result = {"compile": measure_compile(n_threads, args)}
        c = result["compile"]
        print(f"(a) compile {c['compile']:.2f}s (first fit {c['first_fit_nocache']:.2f}s, "
              f"second {c['second_fit']:.3f}s, cache off); cache load "
              f"{c['cache_load']:.2f}s (first fit {c['first_fit_cached']:.2f}s, cache on)")
    floor = ("blas", blas_runner) if solver_of(args) == "block" else ("bare", bare_runner)
    runners = {"cml": cml_runner(X, n_threads, args), floor[0]: floor[1](X, n_threads, args)}
    if lightfm_warp.missing() is None:
        runners["lightfm"] = lightfm_runner(X, n_threads, args)
    else:
        print(f"(d) skipped: {lightfm_warp.missing()}; to compare: {INSTALL_HINT}")
    times, others = time_interleaved(runners, args.epochs, args.pause)
    for name, epochs in times.items():
        result[name] = summary(epochs)
    result["others"] = others

    labels = {"cml": "(b) CML epoch (partial_fit)", "bare": "(c) bare loop epoch",
              "blas": "(c') BLAS bound epoch",
              "lightfm": "(d) LightFM WARP epoch"}
    for name in runners:
        r = result[name]
        print(f"{labels[name]:<28} median {r['median']:.3f}s, min {r['min']:.3f}s  "
              f"[{', '.join(f'{t:.3f}' for t in r['epochs'])}]")
    if others is not None:
        print(f"    other processes kept {others:.2f} of {os.cpu_count()} cores busy "
              "during these epochs")
    result["cml"]["fit5_per_epoch"] = f = fit_per_epoch(X, n_threads, args)
    print(f"(b) CML fit(n_epochs=5) / 5     {f:.3f}s (includes setup)")
    result["memory"] = m = measure_cml_memory(X, n_threads, args)
    print(f"(e) fit peak (tracemalloc) {m['peak'] / 2**20:.1f} MiB vs state+input "
          f"{m['reference'] / 2**20:.1f} MiB: ratio {m['ratio']:.2f} "
          f"({m['ratio_to_state_without_means']:.2f} against the state without "
          "running means)")
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="folder holding ml-1m/ (default: "
                        "$SKLEARN_CML_DATA, else ../shared/data beside the repo)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=7,
                        help="timed epochs of each competitor (default 7)")
    parser.add_argument("--n-components", type=int, default=100)
    parser.add_argument("--n-negatives", type=int, default=20)
    parser.add_argument("--negative-sampling-exponent", type=float, default=None,
                        help="CMLRecommender's negative_sampling_exponent "
                             "(default: the package default)")
    parser.add_argument("--loss", choices=sorted(LOSSES), default=None,
                        help="CMLRecommender's loss (default: the package default)")
    parser.add_argument("--no-average", action="store_true",
                        help="fit with average=False (the last epoch's vectors, no running "
                        "means)")
    parser.add_argument("--solver", choices=["hogwild", "block"], default=None,
                        help="CMLRecommender's solver (default: the package default)")
    parser.add_argument("--block-size", type=int, default=None)
    parser.add_argument("--pool-size", type=int, default=None)
    parser.add_argument("--no-compile", action="store_true",
                        help="leave out (a), the compile and cache-load times (fresh "
                        "subprocesses that compile every kernel anew)")
    parser.add_argument("--pause", type=float, default=PAUSE_SECONDS, metavar="SECONDS",
                        help="untimed pause before each timed epoch, so that threads the "
                        f"previous one left busy settle (default {PAUSE_SECONDS})")
    parser.add_argument("--compile-probe", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.compile_probe:
        compile_probe(args)
        return
    data_dir = find_data_dir(args.data)
    X = load_split("ml-1m", data_dir)[1][0]
    print(f"MovieLens-1M from {data_dir}: ratings >= 4, the 60% train part of the paper's "
          "split (train_validation_test_split, random_state=0)")
    print(f"train: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} pairs")
    missing = lightfm_warp.missing()
    print(f"lightfm-next {lightfm_warp.version()}" if missing is None else
          f"{missing}: {INSTALL_HINT}")
    print(f"load average {load_average()} (1/5/15 min) at the start")
    print("memory note: tracemalloc sees numpy allocations; the Numba kernels here "
          "do not allocate large arrays.")
    results = {t: run_one_thread_count(X, t, args) for t in args.threads}
    print()
    print("\n".join(machine_lines()))
    print_table(results, args)


if __name__ == "__main__":
    main()
