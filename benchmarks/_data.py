"""Where the benchmarks find the real datasets, and how they load them."""

import os
from pathlib import Path

from sklearn_cml.datasets import load_citeulike, load_movielens

REPO_ROOT = Path(__file__).resolve().parents[1]


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
    every user-article pair.
    """
    if name in ("ml-100k", "ml-1m"):
        return load_movielens(data_dir / name, min_rating=4).interactions
    if name == "citeulike-a":
        return load_citeulike(data_dir / name).interactions
    raise SystemExit(f"unknown dataset {name!r}")
