"""Shared by tests/, the docs pages' doctests and the modules' doctests: where
the real datasets live, and how to skip without them; hypothesis's profiles;
the slow group, left out of a run without ``-m``.  At the repository's root,
so that ``pytest docs/`` alone loads it too."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis: the same examples on every run (a failure reproduces on the
# next run and on any machine), and no deadline (a time limit would fail a
# test on a busy machine, not a wrong result).  Each test keeps its own
# max_examples.  For a randomised search: --hypothesis-profile=random.
settings.register_profile("derandomized", derandomize=True, deadline=None)
settings.register_profile("random", deadline=None)
settings.load_profile("derandomized")

_REPO_ROOT = Path(__file__).resolve().parent
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


# ------------------------------------------------------------ the slow group

_SLOW_DESELECTED = pytest.StashKey[int]()


# Markdown pages whose examples read MovieLens-100K from ``DATA_DIR``.
_REAL_DATA_PAGES = {"tutorial_movielens.md"}


def _give_pages_their_data(items):
    """Put ``DATA_DIR`` in the real-data pages' doctests, or skip them, saying
    why, without the data (a hook: fixtures cannot put names in a page's
    doctest namespace)."""
    for item in items:
        if item.path.name not in _REAL_DATA_PAGES or not hasattr(item, "dtest"):
            continue
        data_dir = shared_data_dir()
        if data_dir is None or not (data_dir / "ml-100k" / "u.data").is_file():
            reason = (f"MovieLens-100K not found in {_candidate_data_dir() / 'ml-100k'}: set "
                      f"${_DATA_ENV} to the folder holding ml-100k/")
            print(f"SKIP: {reason}")
            item.add_marker(pytest.mark.skip(reason=reason))
        else:
            item.dtest.globs["DATA_DIR"] = data_dir


def pytest_collection_modifyitems(config, items):
    """Give the real-data pages their data; leave out the tests marked
    ``slow`` unless a ``-m`` expression is given.

    The slow group (long end-to-end runs) runs with ``-m slow``; CI runs it
    after the default run.  ``pytest_terminal_summary`` says how many were
    left out and how to run them.
    """
    _give_pages_their_data(items)
    if config.option.markexpr:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
        config.hook.pytest_deselected(items=slow)
    config.stash[_SLOW_DESELECTED] = len(slow)
    if hasattr(config, "workeroutput"):  # a pytest-xdist worker: tell the controller
        config.workeroutput["slow_deselected"] = len(slow)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """With pytest-xdist, the controller collects nothing: its workers say
    how many slow tests they left out."""
    n_slow = getattr(node, "workeroutput", {}).get("slow_deselected")
    if n_slow:
        node.config.stash[_SLOW_DESELECTED] = n_slow


def pytest_terminal_summary(terminalreporter, config):
    n_slow = config.stash.get(_SLOW_DESELECTED, 0)
    if n_slow:
        terminalreporter.write_line(
            f"{n_slow} slow tests deselected (long end-to-end runs); run them with "
            "`python -m pytest -m slow`, or every test with "
            "`python -m pytest -m 'slow or not slow'`"
        )
