"""Every script of benchmarks/ runs to its end on tiny inputs.

A benchmark is run rarely and by hand, so a change to the package that
breaks one would go unnoticed until the next measurement.  Here each script
runs as ``python benchmarks/NAME.py ARGS`` would run it, but in this
process (``runpy``, with ``sys.argv`` set), so that the Numba kernels already
compiled, or cached on disk by the default run, are reused.  These runs are
in the slow group (``-m slow``; CI runs it): ``check_bitwise.py`` alone
builds an approximate-search graph, which compiles pynndescent anew in every
process.  Its data are a few dozen users
written in the real datasets' file formats into a temporary folder
(``--data``; the Amazon folders of ``compare.py --suite amazon`` too);
its outputs go to the test's temporary folder.  The test
checks that the script ends without an error and prints something: never a
figure or a time.  Peers that are not installed (LightFM, implicit, faiss,
hnswlib, matplotlib) are skipped by the scripts themselves, with a hint.
"""

import contextlib
import gzip
import os
import runpy
import sys
from importlib.util import find_spec
from pathlib import Path

import numba
import numpy as np
import pytest

from sklearn_cml._losses import LOSSES

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# --------------------------------------------------------------------------
# Tiny datasets in the files the loaders read (sklearn_cml.datasets)
# --------------------------------------------------------------------------

ML_GENRES = ("Action", "Comedy", "Drama", "Romance", "Sci-Fi")


def tiny_ratings(n_users, n_items, per_user, seed):
    """``(user, item, rating)`` rows: ``per_user`` distinct items per user,
    drawn mostly from the user's own quarter of the items, ratings 1 to 5."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        own = (user % 4) * (n_items // 4) + np.arange(n_items // 4)
        liked = rng.choice(own, size=per_user - 4, replace=False)
        other = rng.choice(np.setdiff1d(np.arange(n_items), liked), size=4, replace=False)
        for item in np.concatenate([liked, other]):
            rows.append((user, int(item), int(rng.integers(1, 6))))
    return rows


def write_movielens_1m(folder, n_users=80, n_items=150):
    """``ratings_no_timestamp.dat.gz`` (``user::movie::rating``, ids from 1)
    and ``movies.dat`` (``id::title::genre|genre``), as in the shared data."""
    folder.mkdir()
    lines = [f"{user + 1}::{item + 1}::{rating}"
             for user, item, rating in tiny_ratings(n_users, n_items, 25, seed=1)]
    (folder / "ratings_no_timestamp.dat.gz").write_bytes(
        gzip.compress(("\n".join(lines) + "\n").encode()))
    movies = [f"{item + 1}::Movie {item + 1} (1999)::"
              + "|".join(ML_GENRES[(item + k) % len(ML_GENRES)] for k in range(1 + item % 2))
              for item in range(n_items)]
    (folder / "movies.dat").write_text("\n".join(movies) + "\n", encoding="latin-1")


def write_movielens_100k(folder, n_users=60, n_items=120):
    """``u.data`` (tab-separated user, item, rating, timestamp), ``u.item``
    (``id|title|date||url|`` and one 0/1 flag per genre) and ``u.genre``."""
    folder.mkdir()
    lines = [f"{user + 1}\t{item + 1}\t{rating}\t{880000000 + user}"
             for user, item, rating in tiny_ratings(n_users, n_items, 20, seed=2)]
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    genres = ("unknown", *ML_GENRES)
    (folder / "u.genre").write_text("".join(f"{name}|{k}\n" for k, name in enumerate(genres)))
    items = [f"{item + 1}|Movie {item + 1} (1999)|01-Jan-1999||http://example.org/{item + 1}|"
             + "|".join("1" if k == 1 + item % len(ML_GENRES) else "0"
                        for k in range(len(genres)))
             for item in range(n_items)]
    (folder / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")


def write_citeulike(folder, n_users=60, n_items=120, n_tags=40):
    """``users.dat`` and ``item-tag.dat`` (a line ``N id_1 ... id_N`` per
    user or article, ids from 0) and ``tags.dat`` (a tag name per line)."""
    folder.mkdir()
    libraries = {}
    for user, item, _ in tiny_ratings(n_users, n_items, 15, seed=3):
        libraries.setdefault(user, []).append(item)
    (folder / "users.dat").write_text("".join(
        f"{len(items)} {' '.join(map(str, items))}\n" for items in libraries.values()))
    rng = np.random.default_rng(4)
    item_tags = []
    for item in range(n_items):
        # Most articles carry two or three tags of their quarter; some none.
        own = (item * 4 // n_items) * (n_tags // 4) + np.arange(n_tags // 4)
        tags = rng.choice(own, size=int(rng.integers(0, 4)), replace=False)
        item_tags.append(f"{tags.size} {' '.join(map(str, tags))}".rstrip())
    (folder / "item-tag.dat").write_text("\n".join(item_tags) + "\n")
    (folder / "tags.dat").write_text("".join(f"tag-{tag}\n" for tag in range(n_tags)))


def write_amazon(folder, name, n_users=60, n_items=120, seed=5):
    """``<name>.txt`` as in S3-Rec's Amazon files: a line ``user item item
    ...`` per user, ids from 1, users in order."""
    folder.mkdir()
    histories = {}
    for user, item, _ in tiny_ratings(n_users, n_items, 12, seed=seed):
        histories.setdefault(user, []).append(item + 1)
    (folder / f"{name}.txt").write_text("".join(
        f"{user + 1} {' '.join(map(str, items))}\n" for user, items in histories.items()))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A ``--data`` folder: ``ml-1m/``, ``ml-100k/``, ``citeulike-a/`` and
    the three Amazon folders of ``compare.py --suite amazon``."""
    folder = tmp_path_factory.mktemp("data")
    write_movielens_1m(folder / "ml-1m")
    write_movielens_100k(folder / "ml-100k")
    write_citeulike(folder / "citeulike-a")
    for seed, (name, file_name) in enumerate([
            ("amazon-beauty", "Beauty"), ("amazon-sports-outdoors", "Sports_and_Outdoors"),
            ("amazon-toys-games", "Toys_and_Games")]):
        write_amazon(folder / name, file_name, seed=5 + seed)
    return folder


# --------------------------------------------------------------------------
# The scripts and their tiny runs
# --------------------------------------------------------------------------

# script -> {case: [argv of each run, in order]}.  "{data}" is the folder of
# the tiny datasets, "{out}" the test's temporary folder.
RUNS = {
    # The first graph compiles pynndescent (about 25 s, not cached on disk):
    # in a whole test run, test_ann.py has paid for it in this process.
    "bench_ann.py": {
        "ml-1m and synthetic, backends": [[
            "--data", "{data}", "--cache", "{out}/cache", "--threads", "1",
            "--synthetic-items", "300", "--synthetic-users", "200",
            "--synthetic-epochs", "1", "--synthetic-queries", "100", "--backends"]],
    },
    "bench_features.py": {
        "citeulike-a": [["--data", "{data}", "--dataset", "citeulike-a", "--epochs", "1",
                         "--n-jobs", "1", "--content-weights", "1", "0"]],
        "ml-1m validation": [["--data", "{data}", "--dataset", "ml-1m", "--split",
                              "validation", "--n-jobs", "1", "--top-features", "3",
                              "--no-lightfm"]],
    },
    "bench_fit_speed.py": {
        "block": [["--data", "{data}", "--threads", "1", "--epochs", "1", "--n-components", "8",
                   "--n-negatives", "3", "--block-size", "256", "--pool-size", "32",
                   "--no-compile", "--pause", "0"]],
        "hogwild": [["--data", "{data}", "--threads", "1", "--epochs", "1", "--n-components",
                     "8", "--n-negatives", "3", "--solver", "hogwild", "--loss", "hinge",
                     "--no-average", "--no-compile", "--pause", "0"]],
    },
    "bench_first_use.py": {
        # Without the approximate query: pynndescent compiles for 30 s and more
        # in each fresh process (its kernels are not cached on disk).
        "ml-100k": [["--data", "{data}", "--repeats", "1", "--threads", "1", "--no-ann"]],
    },
    "bench_distributed_fit.py": {
        "ml-100k": [["--data", "{data}", "--n-epochs", "2", "--shards", "1", "2",
                     "--set", "n_components=8"]],
    },
    "bench_fold_in.py": {
        "ml-1m": [["--data", "{data}", "--n-epochs", "2", "--n-new-users", "20", "--n-jobs", "1",
                   "--fold-in-learning-rate", "0.1", "0.2", "--set", "n_components=8"]],
    },
    "bench_input_checks.py": {
        "ml-1m": [["--data", "{data}", "--n-jobs", "1", "--repeats", "1"]],
    },
    "bench_paper_protocol.py": {
        "ml-1m and citeulike-a": [[
            "--data", "{data}", "--datasets", "ml-1m", "citeulike-a", "--max-epochs", "2",
            "--eval-every", "1", "--n-jobs", "1", "--set", "n_components=8",
            "--set", "learning_rate=0.1"]],
    },
    "bench_persistence.py": {
        "ml-1m": [["--data", "{data}", "--n-components", "8", "--n-epochs", "1",
                   "--repeats", "1"]],
    },
    # Its rows run in fresh processes (spawned, so that each RSS is its own):
    # that is the script's own design, kept here; about 5 s.
    "bench_scaling.py": {
        "two solvers, then from the JSON": [
            ["--pairs", "1e4", "--solvers", "hogwild", "block", "--threads", "1",
             "--epochs", "1", "--large", "1e4", "--epochs-large", "1",
             "--topk-chunk", "40", "--topk-max-users", "100", "--topk-sample-users", "80",
             "--generate-block-users", "120", "--extrapolate", "1e5",
             "--json", "{out}/curves.json",
             *(["--plot", "{out}/curves.png"] if find_spec("matplotlib") else [])],
            ["--from-json", "{out}/curves.json"],
        ],
    },
    # The rows of the losses the script registers are left out: Numba
    # compiles the per-pair epoch anew for each (about 30 s apiece, never
    # cached); importing the script registers them all the same.
    "bench_variants.py": {
        "package rows": [["--data", "{data}", "--max-epochs", "2", "--eval-every", "1",
                          "--threads", "1", "--variants", "package", "package-softmax", "als"]],
    },
    "bench_weights.py": {
        "ml-1m": [["--data", "{data}", "--weightings", "binary", "log", "--seeds", "0",
                   "--n-jobs", "1", "--set", "n_components=8"]],
    },
    "bench_updates.py": {
        "ml-100k by time": [["--data", "{data}", "--quick", "--epochs", "1", "2",
                             "--n-jobs", "1"]],
        "amazon by position, two refits": [[
            "--data", "{data}", "--dataset", "amazon-toys-games", "--quick", "--epochs", "1",
            "--n-jobs", "1", "--refit-at", "1", "5"]],
    },
    "check_bitwise.py": {
        "synthetic": [[]],
    },
    "compare.py": {
        "quick, then render": [
            ["--suite", "quick", "--data", "{data}", "--threads", "1", "--out", "{out}/results",
             "--pause", "0"],
            ["--render", "{out}/results/results.json", "--out", "{out}/rendered"],
        ],
        "amazon, EASE and popularity": [
            ["--suite", "amazon", "--data", "{data}", "--threads", "1", "--out",
             "{out}/amazon", "--models", "EASE", "popularity", "--pause", "0"],
        ],
    },
}


def scripts_in_folder():
    """The runnable scripts of benchmarks/: its ``.py`` files but the private
    modules (``_common.py``); the ``peers`` package is a folder."""
    return sorted(path.name for path in BENCHMARKS.glob("*.py") if not path.name.startswith("_"))


@contextlib.contextmanager
def script_process_state():
    """Undo what a script may change in this process's global state: the
    environment (``bench_ann.py`` sets ``OMP_NUM_THREADS``), Numba's thread
    count, the loss registry (``bench_variants.py`` registers its losses)
    and the modules it imported from benchmarks/ (``_common``, ``peers``),
    so that the next script imports its own copies."""
    environment, threads, losses = dict(os.environ), numba.get_num_threads(), dict(LOSSES)
    modules = set(sys.modules)
    try:
        yield
    finally:
        for name in set(os.environ) - set(environment):
            del os.environ[name]
        os.environ.update(environment)
        numba.set_num_threads(threads)
        LOSSES.clear()
        LOSSES.update(losses)
        for name in set(sys.modules) - modules:
            if getattr(sys.modules[name], "__file__", None) and Path(
                    sys.modules[name].__file__).is_relative_to(BENCHMARKS):
                del sys.modules[name]


def run_script(script, argv, monkeypatch):
    """Run ``benchmarks/script`` as ``__main__`` with ``argv``; return its exit code."""
    path = BENCHMARKS / script
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as when run as a file: sys.path[0]
    monkeypatch.setattr(sys, "argv", [str(path), *argv])
    with script_process_state():
        try:
            runpy.run_path(str(path), run_name="__main__")
        except SystemExit as exit_:
            return 0 if exit_.code is None else exit_.code
    return 0


CASES = [pytest.param(script, runs, id=f"{script}-{case}")
         for script, cases in RUNS.items() for case, runs in cases.items()]


@pytest.mark.slow
@pytest.mark.parametrize("script, runs", CASES)
def test_script_runs_on_tiny_data(script, runs, data, tmp_path, monkeypatch, capsys):
    for argv in runs:
        argv = [arg.format(data=data, out=tmp_path) for arg in argv]
        code = run_script(script, argv, monkeypatch)
        printed = capsys.readouterr().out
        assert code == 0, f"{script} {' '.join(argv)} exited with {code!r}"
        assert printed.strip(), f"{script} {' '.join(argv)} printed nothing"


def test_every_script_has_a_tiny_run():
    """A script added to benchmarks/ must be added to ``RUNS`` too."""
    missing = sorted(set(scripts_in_folder()) - set(RUNS))
    assert not missing, f"no tiny run in tests/test_benchmarks.py for {missing}"
    assert set(RUNS) <= set(scripts_in_folder()), "RUNS names a script that is gone"
