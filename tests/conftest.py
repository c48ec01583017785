"""Shared fixtures: where the real datasets live, and how to skip without them."""

import os
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[1]
_DATA_ENV = "SKLEARN_CML_DATA"


def _candidate_data_dir():
    """``$SKLEARN_CML_DATA``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get(_DATA_ENV)
    return Path(env) if env else _REPO_ROOT.parent / "shared" / "data"


def shared_data_dir():
    """Return the folder holding the real datasets, or None when absent."""
    path = _candidate_data_dir()
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def data_dir():
    """The real-data folder; skips the test, saying why, when it is missing."""
    path = shared_data_dir()
    if path is None:
        reason = (
            f"real datasets not found in {_candidate_data_dir()}: set ${_DATA_ENV} to "
            "the folder holding ml-100k/, ml-1m/ and citeulike-a/"
        )
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(params=["hogwild", "block"])
def each_solver(request, monkeypatch):
    """Run a test once per solver: the solver becomes CMLRecommender's default.

    Modules use it with ``pytestmark = pytest.mark.usefixtures("each_solver")``
    so that every estimator built in their tests trains with each solver.
    """
    from sklearn_cml import CMLRecommender

    defaults = dict(CMLRecommender.__init__.__kwdefaults__, solver=request.param)
    monkeypatch.setattr(CMLRecommender.__init__, "__kwdefaults__", defaults)
    return request.param
