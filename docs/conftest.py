"""Doctests of the Markdown pages: the real-data pages find MovieLens-100K
in ``$SKLEARN_CML_DATA``, else in ``../shared/data`` beside the checkout,
and are skipped, saying why, when it is not there."""

import os
from pathlib import Path

import pytest

# Pages whose examples read files of the data folder, as DATA_DIR.
_REAL_DATA_PAGES = {"tutorial_movielens.md"}


def _data_dir():
    env = os.environ.get("SKLEARN_CML_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _real_data(request, doctest_namespace):
    if Path(str(request.node.fspath)).name not in _REAL_DATA_PAGES:
        return
    data_dir = _data_dir()
    if not (data_dir / "ml-100k" / "u.data").is_file():
        reason = (f"MovieLens-100K not found in {data_dir / 'ml-100k'}: set $SKLEARN_CML_DATA "
                  "to the folder holding ml-100k/")
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    doctest_namespace["DATA_DIR"] = data_dir
