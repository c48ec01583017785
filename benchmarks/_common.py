"""What the benchmark scripts share; each script imports from here and ``peers/`` only.

- data: where the real datasets are (``find_data_dir``), loading one
  (``load_positives``) with the paper's split (``load_split``), the one
  split every script uses;
- evaluation: recall of held-out items (``recalls``), the library's popularity
  baseline (``popularity_scores``) and ``BestEpoch``, which follows a model
  trained epoch by epoch (the ``after_epoch`` of ``peers``' ``train``),
  times it with the clock stopped during evaluation and keeps its best
  validation epoch;
- the machine: CPU, versions, date (``machine_description``,
  ``library_versions``, ``utc_now``) and how busy other processes keep it
  (``other_cores_meter``);
- small helpers: ``--set NAME=VALUE`` options (``add_setting_option``) and
  a tiny interaction matrix for warm-ups (``tiny_matrix``).
"""

import argparse
import ast
import contextlib
import datetime
import os
import platform
import resource
import sys
import time
import tracemalloc
from importlib import metadata
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO_ROOT))

import sklearn_cml  # noqa: E402
from sklearn_cml import CMLRecommender  # noqa: E402
from sklearn_cml.datasets import (  # noqa: E402
    load_amazon,
    load_citeulike,
    load_movielens,
    make_interactions,
)
from sklearn_cml.metrics import popularity_scores, ranking_metrics  # noqa: E402, F401
from sklearn_cml.model_selection import train_validation_test_split  # noqa: E402

VALIDATION_K = 50
SPLIT_SEED = 0
# The Amazon 5-core folders of the data folder (sklearn_cml.datasets.load_amazon).
AMAZON_DATASETS = ("amazon-beauty", "amazon-sports-outdoors", "amazon-toys-games")

# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def find_data_dir(cli_path=None):
    """``--data``, else ``$SKLEARN_CML_DATA``, else ``../shared/data`` beside the
    repository; exits with a message when none is a folder."""
    for candidate in (cli_path, os.environ.get("SKLEARN_CML_DATA"),
                      REPO_ROOT.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise SystemExit("No data folder: pass --data or set SKLEARN_CML_DATA.")


def load_positives(name, data_dir):
    """The interaction matrix of a dataset, positives only (float32 CSR).

    MovieLens (``ml-100k``, ``ml-1m``): ratings of 4 and up; CiteULike-a:
    every user-article pair; the Amazon 5-core sets (``AMAZON_DATASETS``:
    ``amazon-beauty``, ``amazon-sports-outdoors``, ``amazon-toys-games``):
    every (user, item) review pair; ``synthetic-40k``: generated
    (``synthetic_large_catalogue``), ``data_dir`` unused.
    """
    if name in ("ml-100k", "ml-1m"):
        return load_movielens(data_dir / name, min_rating=4).interactions
    if name == "citeulike-a":
        return load_citeulike(data_dir / name).interactions
    if name in AMAZON_DATASETS:
        return load_amazon(data_dir / name).interactions
    if name == "synthetic-40k":
        return synthetic_large_catalogue()
    raise SystemExit(f"unknown dataset {name!r}")


def synthetic_large_catalogue():
    """A large catalogue nobody tuned for: ``make_interactions`` with 40,000
    users and 40,000 items in 50 taste clusters, 50 interactions per user on
    average (about 2 million), Zipf popularity; no files needed."""
    return make_interactions(n_users=40_000, n_items=40_000, n_clusters=50,
                             mean_interactions=50, random_state=0)


def load_split(name, data_dir):
    """A dataset's positives (``load_positives``) and the CML paper's split of
    them, the one every benchmark uses: per user 60% / 20% / 20% of the items,
    users with at least 5 (``train_validation_test_split(X, random_state=0)``).

    Returns ``(X, (train, validation, test))``, float32 CSR with sorted rows.
    """
    X = load_positives(name, data_dir)
    parts = []
    for part in train_validation_test_split(X, random_state=SPLIT_SEED):
        part = sp.csr_matrix(part, dtype=np.float32)
        part.sort_indices()
        parts.append(part)
    return X, tuple(parts)


def fit_peak_bytes(model, X, **fit_params):
    """Fit ``model`` on ``X``; the peak memory in use meanwhile: the input CSR
    (allocated before tracing starts) plus the tracemalloc peak of ``fit``
    (numpy allocations; the Numba kernels allocate no large arrays)."""
    tracemalloc.start()
    try:
        model.fit(X, **fit_params)
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + traced_peak


def tiny_matrix(n_users=50, n_items=100, per_user=5):
    """A small deterministic CSR (``per_user`` items per user): for compiling
    the kernels outside the timed runs."""
    rows = np.repeat(np.arange(n_users), per_user)
    cols = (rows * 7 + np.tile(np.arange(per_user) * 13, n_users)) % n_items
    return sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)),
                         shape=(n_users, n_items))


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------


def recalls(truth, scores, exclude=None, ks=(50, 100)):
    """``{k: Recall@k}`` of the held-out items ``truth``, ranking every item
    but ``exclude`` (the training items)."""
    return {k: ranking_metrics(truth, scores, k=k, exclude=exclude,
                               metrics=("recall",))["recall"] for k in ks}


def item_popularity(train):
    """Training pairs per item."""
    return np.bincount(train.indices, minlength=train.shape[1])


class BestEpoch:
    """Follows a model trained epoch by epoch; call it after each epoch.

    ``best(epoch, snapshot)`` is the ``after_epoch`` of ``peers``' ``train``:
    it ends the epoch's lap of the training clock; every ``every`` epochs and
    after the ``last`` it measures validation Recall@50 of ``snapshot()`` (a
    score function; every item but the user's training items ranked) and
    keeps the best epoch so far; then it sleeps ``pause`` seconds (so that
    threads the evaluation left busy settle) and starts the next lap.  The
    clock starts when the object is made: make it just before training.

    Attributes: ``recall``, ``epoch``, ``seconds`` (training seconds up to
    it) and ``scores`` of the best evaluated epoch; ``curve`` (one dict of
    ``epoch``, ``seconds``, ``recall`` per evaluation), ``laps`` (seconds of
    each epoch) and ``total`` (training seconds).
    """

    def __init__(self, split, every, last, pause=0.0):
        self.train, self.validation = split[0], split[1]
        self.every, self.last, self.pause = every, last, pause
        self.recall, self.epoch, self.seconds, self.scores = -1.0, 0, 0.0, None
        self.curve, self.laps, self.total = [], [], 0.0
        self._since = time.perf_counter()

    def __call__(self, epoch, snapshot):
        lap = time.perf_counter() - self._since
        self.laps.append(lap)
        self.total += lap
        if epoch % self.every == 0 or epoch == self.last:
            scores = snapshot()
            recall = recalls(self.validation, scores, self.train, ks=(VALIDATION_K,))
            recall = recall[VALIDATION_K]
            self.curve.append({"epoch": epoch, "seconds": self.total, "recall": recall})
            if recall > self.recall:
                self.recall, self.epoch, self.seconds, self.scores = (recall, epoch,
                                                                      self.total, scores)
            time.sleep(self.pause)
        self._since = time.perf_counter()

    @contextlib.contextmanager
    def untimed(self):
        """Stop the training clock for the block's work (not training)."""
        self.total += time.perf_counter() - self._since
        try:
            yield
        finally:
            self._since = time.perf_counter()

    def stop(self):
        """Count what ran after the last epoch (a library's final checks)."""
        self.total += time.perf_counter() - self._since
        return self


# --------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------


def utc_now():
    return f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"


def cpu_model():
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_description(threads=None):
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": usable,
            "threads": threads, "platform": platform.platform()}


def library_versions():
    """Python and the installed versions of the packages the benchmarks use."""
    versions = {"python": platform.python_version(), "sklearn-cml": sklearn_cml.__version__}
    for package in ("numpy", "scipy", "scikit-learn", "numba",
                    "lightfm-next", "implicit", "matplotlib", "pynndescent"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def _busy_cpu_seconds():
    """CPU seconds used by the whole machine so far (``/proc/stat``), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def other_cores_meter():
    """Start measuring; the function returned gives how many cores other
    processes kept busy on average since (None where ``/proc/stat`` is missing)."""
    machine, own, started = _busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter()

    def other_cores():
        if machine is None:
            return None
        others = (_busy_cpu_seconds() - machine) - (_own_cpu_seconds() - own)
        return max(0.0, others) / (time.perf_counter() - started)

    return other_cores


# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------


def parse_setting(text):
    """``NAME=VALUE`` to ``(NAME, value)``; the value is a Python literal or a string."""
    name, separator, value = text.partition("=")
    tunable = set(CMLRecommender().get_params()) - {"n_epochs", "n_jobs", "random_state"}
    if not separator or name not in tunable:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE with NAME one of {sorted(tunable)}, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def add_setting_option(parser):
    """``--set NAME=VALUE`` (repeatable): a CMLRecommender parameter; the
    parsed ``args.settings`` is a list of ``(NAME, value)``."""
    parser.add_argument("--set", dest="settings", action="append", type=parse_setting,
                        default=[], metavar="NAME=VALUE",
                        help="a CMLRecommender parameter other than the defaults (repeatable)")
