"""How long do the first calls of a new process wait, once the kernels are cached?

Run from the repository root::

    python benchmarks/bench_first_use.py [--data PATH] [--dataset ml-100k]
        [--repeats 3] [--threads 2] [--no-warmup] [--no-ann]

First runs the warm-up (``python -m sklearn_cml --warmup``, skipped with
``--no-warmup``), as a new user would once per install.  Then each figure
is measured ``--repeats`` times, each time in a fresh Python process (so
that nothing compiled by an earlier measurement is still in memory) with
``--threads`` Numba threads:

- fit to first epoch: from the ``fit`` call (default parameters) to the
  start of the first training pass, which includes validation, the
  temperature measurement and loading the kernels from the disk cache;
- first new user: the first ``predict`` of a user unseen in ``fit``
  (placing it, fold-in, then ranking);
- first approximate query, for each installed backend (``search="hnsw"``
  with hnswlib, ``search="nndescent"`` with pynndescent; none with
  ``--no-ann``): the first ``recommend`` of a model fitted with that
  search, which builds the index.

It prints each figure's best and all runs; it is a benchmark, not a test:
it asserts nothing.
"""

import argparse
import json
import os
import subprocess
import sys
from importlib.util import find_spec

from _common import REPO_ROOT, find_data_dir, utc_now

# Runs in the fresh process: prints one JSON line of seconds.  A fit of one
# epoch on the data, timed by wrapping the solver's epoch (the registry is
# read when fit starts).
_CHILD = r"""
import dataclasses, json, sys, time
sys.path.insert(0, {benchmarks!r})
from pathlib import Path
from _common import load_positives
from sklearn_cml import CMLRecommender
from sklearn_cml._solvers import SOLVERS

measure, dataset, data_dir = {measure!r}, {dataset!r}, Path({data!r})
X = load_positives(dataset, data_dir).tocsr()
known, new = X[:-10], X[-10:]
marks = {{}}
solver = SOLVERS["block"]

def make_epoch(*args, **kwargs):
    run = solver.make_epoch(*args, **kwargs)
    def timed(state, losses):
        marks.setdefault("first epoch", time.perf_counter())
        return run(state, losses)
    return timed

SOLVERS["block"] = dataclasses.replace(solver, make_epoch=make_epoch)
if measure == "fit to first epoch":
    start = time.perf_counter()
    CMLRecommender(n_epochs=1, random_state=0).fit(known)
    seconds = marks["first epoch"] - start
elif measure == "first new user":
    model = CMLRecommender(n_epochs=1, random_state=0).fit(known)
    start = time.perf_counter()
    model.predict(new[:1])
    seconds = time.perf_counter() - start
else:  # "first approximate query (SEARCH)"
    search = measure.split("(")[1].rstrip(")")
    model = CMLRecommender(n_epochs=1, random_state=0, search=search).fit(known)
    start = time.perf_counter()
    model.recommend([0], n_items=10)
    seconds = time.perf_counter() - start
print(json.dumps(seconds))
"""


def measure_in_child(measure, args, data_dir):
    """Seconds of ``measure`` in a fresh process."""
    code = _CHILD.format(benchmarks=str(REPO_ROOT / "benchmarks"), measure=measure,
                         dataset=args.dataset, data=str(data_dir))
    env = {**os.environ, "NUMBA_NUM_THREADS": str(args.threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--no-ann", action="store_true",
                        help="leave out the first approximate query")
    args = parser.parse_args(argv)
    data_dir = find_data_dir(args.data)

    if not args.no_warmup:
        subprocess.run([sys.executable, "-m", "sklearn_cml", "--warmup"], check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    measures = ["fit to first epoch", "first new user"]
    if args.no_ann:
        print("--no-ann: no approximate query measured.")
    else:
        for search, library in (("hnsw", "hnswlib"), ("nndescent", "pynndescent")):
            if find_spec(library) is not None:
                measures.append(f"first approximate query ({search})")
            else:
                print(f"{library} is not installed: no search={search!r} query measured.")
    print(f"{args.dataset}, {args.threads} threads, each run in a fresh process, "
          f"best of {args.repeats}; {utc_now()}")
    for measure in measures:
        runs = [measure_in_child(measure, args, data_dir) for _ in range(args.repeats)]
        shown = ", ".join(f"{seconds:.2f}" for seconds in runs)
        print(f"  {measure:<38} {min(runs):7.2f} s  (runs: {shown})")


if __name__ == "__main__":
    main()
