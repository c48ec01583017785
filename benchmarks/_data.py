"""Where the benchmarks find the real datasets."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_data_dir(cli_path=None):
    """``--data``, else ``$SKLEARN_CML_DATA``, else ``../shared/data`` beside the
    repository; exits with a message when none is a folder."""
    for candidate in (cli_path, os.environ.get("SKLEARN_CML_DATA"),
                      REPO_ROOT.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise SystemExit("No data folder: pass --data or set SKLEARN_CML_DATA.")
