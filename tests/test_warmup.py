"""The warm-up compiles what default calls run: afterwards nothing compiles.

Checked with Numba's own counters (each dispatcher's ``stats.cache_misses``
lists the signatures it compiled instead of loading them from the disk
cache), never with the clock.
"""

import os
import subprocess
import sys

import pytest
from _isolated import describe, run_isolated

from sklearn_cml import _progress, warmup

# Default calls on inputs of other dtypes than the warm-up's (float64 values,
# int64 indices, a dense float64 score array): the entry points convert them
# to the kernels' dtypes, so the warm-up's compilation must serve them.
_DEFAULT_CALLS = r"""
import numpy as np
import scipy.sparse as sp
from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions
from sklearn_cml.metrics import ranking_metrics

X = make_interactions(n_users=70, n_items=50, random_state=1).astype(np.float64)
X = sp.csr_matrix((X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)),
                  shape=X.shape)
model = CMLRecommender(n_components=6, n_epochs=2).fit(X)
model.partial_fit(X)
model.predict(X[:3].toarray())
model.transform(X[3:5])
model.score(X)
model.recommend(np.array([0, 1], dtype=np.int32), n_items=4)
model.kneighbors_items([2], n_neighbors=4)
ranking_metrics(X, model, k=5)
ranking_metrics(X, np.random.default_rng(0).random(X.shape), k=5)
"""

# Every sklearn_cml dispatcher of this process, with the signatures it compiled.
_COMPILED = r"""
import importlib
import pkgutil

from numba.core.registry import CPUDispatcher

import sklearn_cml
from sklearn_cml._solvers._base import _COPIES

dispatchers = {}
for info in pkgutil.walk_packages(sklearn_cml.__path__, "sklearn_cml."):
    module = importlib.import_module(info.name)
    for name, value in vars(module).items():
        if isinstance(value, CPUDispatcher):
            dispatchers[id(value)] = (f"{info.name}.{name}", value)
for copy in list(_COPIES.values()):  # the kernels compiled for each loss
    dispatchers[id(copy)] = (copy.py_func.__qualname__, copy)
loaded = sum(sum(d.stats.cache_hits.values()) for _, d in dispatchers.values())
compiled = sorted(f"{name}{list(map(str, d.stats.cache_misses))}"
                  for name, d in dispatchers.values() if d.stats.cache_misses)
"""


def _skip_without_disk_cache():
    if os.environ.get("SKLEARN_CML_NUMBA_CACHE", "1") == "0":
        reason = "SKLEARN_CML_NUMBA_CACHE=0: no disk cache for the warm-up to fill"
        print(f"SKIP: {reason}")
        pytest.skip(reason)


def test_after_the_warmup_default_calls_compile_nothing():
    _skip_without_disk_cache()
    subprocess.run([sys.executable, "-m", "sklearn_cml", "--warmup"], check=True,
                   capture_output=True, env=dict(os.environ))
    check = _DEFAULT_CALLS + _COMPILED + (
        "assert loaded > 0, 'no kernel was loaded from the disk cache'\n"
        "assert not compiled, 'compiled after the warm-up: ' + '; '.join(compiled)\n"
    )
    outcome = run_isolated({"default calls": check})["default calls"]
    assert outcome["outcome"] == "returned", describe(outcome)


def test_the_check_sees_a_compilation():
    # The counters the test above reads do record a kernel compiled in
    # the child: one written for the occasion, in the package's namespace.
    snippet = ("from numba import njit\nimport sklearn_cml._steps as steps\n"
               "steps.probe_kernel = njit(lambda x: x + 1)\nsteps.probe_kernel(1.5)\n"
               + _COMPILED + "assert any('probe_kernel' in c for c in compiled), compiled\n")
    outcome = run_isolated({"probe": snippet})["probe"]
    assert outcome["outcome"] == "returned", describe(outcome)


def test_warmup_says_what_it_does(capsys):
    _skip_without_disk_cache()
    seconds = warmup(verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and seconds >= 0
    assert lines[0].startswith("Compiling the Numba kernels") and "once per install" in lines[0]
    assert lines[1].startswith("Done in ")


def test_notice_names_the_warmup(monkeypatch):
    monkeypatch.setattr(_progress, "_kernel_readiness", lambda kernel: "cold")
    notice = _progress.compilation_notice([None], "the scoring kernels", "about 20 s")
    assert notice.startswith("[CMLRecommender] Compiling the scoring kernels (first use")
    assert "python -m sklearn_cml --warmup" in notice


def test_demo_mentions_compiling_only_when_a_compile_is_coming(monkeypatch, capsys):
    from sklearn_cml import __main__ as demo

    small = ["--n-users", "60", "--n-items", "40", "--n-epochs", "1", "--n-jobs", "1"]
    for ready, says_compiling in ((True, False), (False, True)):
        monkeypatch.setattr(demo, "default_kernels_ready", lambda ready=ready: ready)
        demo.main(small)
        out = capsys.readouterr().out
        assert ("compiling the training kernels" in out) is says_compiling, out
        assert ("compiling the ranking kernels" in out) is says_compiling, out


def test_default_kernels_ready_follows_the_kernels(monkeypatch):
    from sklearn_cml._warmup import default_kernels_ready

    warmup(verbose=False)  # compiled in this process, whatever the disk cache
    assert default_kernels_ready()
    monkeypatch.setattr(_progress, "_kernel_readiness", lambda kernel: "cold")
    assert not default_kernels_ready()
