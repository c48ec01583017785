"""Progress (``verbose``): compilation notice, epoch lines with time left,
early stopping's last line; and ``validation_interval``."""

import importlib
import re
import sys

import numpy as np
import pytest
from numba import njit

from sklearn_cml import CMLRecommender, _progress
from sklearn_cml.datasets import make_interactions
from sklearn_cml.model_selection import train_test_split

# An explicit temperature: "auto" adds a line after epoch 5 (test_temperature.py).
PARAMS = dict(n_components=8, top_k=10, temperature=0.3, random_state=0)
EPOCH_LINE = re.compile(
    r"\[CMLRecommender\] epoch (\d+)/(\d+): loss \d+\.\d{5}"
    r"(, validation recall@10 (\d\.\d{4}))?, \d+\.\d\d s; \d+\.\d s elapsed"
    r"(, (about|at most) \d+\.\d s left| \(with compilation\))?$"
)


@pytest.fixture(scope="module")
def X():
    return make_interactions(n_users=400, n_items=120, n_clusters=4, random_state=0)


RESOLVED = "[CMLRecommender] Resolved from the data: "


WATCHING = "[CMLRecommender] Early stopping: watching recall@"


def fit_output(capsys, X, **params):
    """The fitted model and the lines it printed after those that come
    before training: what the "auto" parameters resolved to
    (``test_resolved_line...``) and, with early stopping, what it watches."""
    model = CMLRecommender(**{**PARAMS, "verbose": 1, **params}).fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(RESOLVED)
    validated = model.best_epoch_ is not None
    assert lines[1].startswith(WATCHING) == validated
    return model, lines[1 + validated:]


def test_resolved_line_comes_first_and_names_the_auto_parameters(X, capsys):
    model = CMLRecommender(**PARAMS, n_epochs=2, verbose=1).fit(X)
    first = capsys.readouterr().out.splitlines()[0]
    assert first == RESOLVED + ", ".join(
        f"{name}={value!r}" for name, value in model.resolved_params_.items()) + "."
    assert "covariance_interval=" in first and "temperature" not in first


# ---------------------------------------------------------- the epoch lines


def test_one_line_per_epoch_with_the_time_left(X, capsys):
    _, lines = fit_output(capsys, X, n_epochs=3)
    epochs = [EPOCH_LINE.match(line) for line in lines if " epoch " in line]
    assert [int(match[1]) for match in epochs] == [1, 2, 3]
    assert all(match[2] == "3" for match in epochs)
    # Every epoch but the last estimates the time left; the last has none.
    assert [match[6] for match in epochs] == ["about", "about", None]


def test_partial_fit_numbers_epochs_from_those_already_run(X, capsys):
    model = CMLRecommender(**PARAMS, n_epochs=2).fit(X)
    model.set_params(verbose=1).partial_fit(X)
    assert EPOCH_LINE.match(capsys.readouterr().out.strip()).group(1, 2) == ("3", "3")


def test_time_left_is_the_mean_epoch_time_after_the_first_times_epochs_left():
    report = _progress.EpochReport(last_epoch=10, top_k=50)
    report.training_durations = [30.0, 2.0, 4.0]  # the first is left out of the mean
    assert report.line(3, 0.5, None, 4.0, 36.0) == (
        "[CMLRecommender] epoch 3/10: loss 0.50000, 4.00 s; 36.0 s elapsed, "
        "about 21.0 s left"
    )
    report.training_durations = [40.0]  # a single epoch: its own time
    assert report.line(1, 0.5, None, 40.0, 40.0).endswith("about 6 min 00 s left")
    report.compiling = True  # ... unless it carried the compilation
    assert report.line(1, 0.5, None, 40.0, 40.0).endswith("40.0 s elapsed (with compilation)")


def test_time_left_with_validations_counts_those_left():
    report = _progress.EpochReport(last_epoch=10, top_k=50, validation_interval=4)
    report.training_durations = [30.0, 2.0, 4.0]
    report.validation_durations = [20.0]  # no validation yet but this one
    # 7 epochs of 3 s, and validations at epochs 4, 8 and 10 (the last).
    assert report.line(3, 0.5, None, 4.0, 36.0).endswith("at most 1 min 21 s left")
    report.validation_durations = [20.0, 1.0, 2.0]
    assert report.line(3, 0.5, 0.25, 4.0, 36.0) == (
        "[CMLRecommender] epoch 3/10: loss 0.50000, validation recall@50 0.2500, 4.00 s; "
        "36.0 s elapsed, at most 25.5 s left"
    )


@pytest.mark.parametrize("seconds, text", [(0.04, "0.0 s"), (4.25, "4.2 s"), (59.9, "59.9 s"),
                                           (185.0, "3 min 05 s"), (7620.0, "2 h 07 min")])
def test_format_duration(seconds, text):
    assert _progress.format_duration(seconds) == text


def test_verbose_0_prints_nothing(X, capsys):
    CMLRecommender(**PARAMS, n_epochs=2, early_stopping=True).fit(X)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------ compilation notice


def test_notice_before_the_first_epoch_when_kernels_are_cold(X, capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_kernel_readiness", lambda kernel: "cold")
    _, lines = fit_output(capsys, X, n_epochs=2, early_stopping=True)
    assert lines[0] == ("[CMLRecommender] Compiling the training kernels (first use in this "
                        "environment, about a minute; `python -m sklearn_cml --warmup` "
                        "compiles every kernel once)...")
    # The first epoch's time holds the compilation: no estimate from it.
    assert lines[1].endswith("(with compilation)") and EPOCH_LINE.match(lines[1])


@pytest.mark.parametrize("solver", ["block", "hogwild"])
@pytest.mark.parametrize("loss", ["softmax", "hinge"])
def test_no_notice_once_the_kernels_are_compiled(X, capsys, solver, loss):
    params = dict(n_epochs=1, solver=solver, loss=loss, early_stopping=True)
    CMLRecommender(**PARAMS, **params).fit(X)
    _, lines = fit_output(capsys, X, **params)
    assert len(lines) == 2 and lines[0].startswith("[CMLRecommender] epoch 1/1")


def test_detection_in_this_process():
    @njit(cache=False)
    def kernel(x):
        return 2 * x

    assert "not cached on disk" in _progress.compilation_notice([kernel])
    kernel(3.0)
    assert _progress.compilation_notice([kernel]) is None


def test_detection_reads_the_on_disk_cache(tmp_path, monkeypatch):
    (tmp_path / "progress_cached_kernel.py").write_text(
        "from numba import njit\n\n\n@njit(cache=True)\ndef double(x):\n    return 2 * x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    module = importlib.import_module("progress_cached_kernel")
    try:
        assert "first use in this environment" in _progress.compilation_notice([module.double])
        module.double(1.0)  # compiles and writes the cache
        # A new dispatcher of the same function, as in a new process: not
        # compiled here, but its compiled code is cached on disk.
        fresh = njit(cache=True)(module.double.py_func)
        assert not fresh.signatures
        assert _progress.compilation_notice([fresh]) is None
    finally:
        sys.modules.pop("progress_cached_kernel", None)


def test_unreadable_cache_says_less(monkeypatch):
    def triple(x):
        return 3 * x

    def unreadable(kernel, cache):
        raise AttributeError("Numba's cache API changed")

    monkeypatch.setattr(_progress, "_cached_signatures", unreadable)
    notice = _progress.compilation_notice([njit(cache=True)(triple)])
    assert notice.endswith("(may take about a minute on first use)...")


# ---------------------------------------------------------- early stopping


def test_early_stopping_says_when_it_stopped_and_what_it_kept(X, capsys):
    model, lines = fit_output(capsys, X, n_epochs=200, early_stopping=True,
                              validation_fraction=0.2, n_iter_no_change=3)
    assert model.n_iter_ < 200
    assert lines[-1] == (
        f"[CMLRecommender] Early stopping at epoch {model.n_iter_}: validation recall@10 "
        "did not improve by more than tol=0.0001 in 3 validations; keeping the vectors of "
        f"epoch {model.best_epoch_} (validation recall@10 {model.best_validation_score_:.4f})."
    )
    scores = [EPOCH_LINE.match(line)[4] for line in lines[:-1]]
    assert scores == [f"{score:.4f}" for score in model.validation_scores_]


def test_early_stopping_that_never_stops_says_so(X, capsys):
    model, lines = fit_output(capsys, X, n_epochs=3, early_stopping=True, n_iter_no_change=5)
    assert lines[-1] == (
        "[CMLRecommender] Reached epoch 3 without early stopping; keeping the vectors of "
        f"epoch {model.best_epoch_} (validation recall@10 "
        f"{model.best_validation_score_:.4f}), the best."
    )
    assert all(EPOCH_LINE.match(line)[6] in ("at most", None) for line in lines[:-1])


# ----------------------------------------------------- validation_interval


@pytest.fixture(scope="module")
def every_epoch(X):
    """Validation scores of every epoch, never stopping."""
    return CMLRecommender(**PARAMS, n_epochs=10, early_stopping=True,
                          n_iter_no_change=100).fit(X)


def test_interval_scores_every_nth_epoch_and_the_last(X, every_epoch, capsys):
    model, lines = fit_output(capsys, X, n_epochs=10, early_stopping=True,
                              n_iter_no_change=100, validation_interval=3)
    scored = [int(match[1]) for match in map(EPOCH_LINE.match, lines[:-1]) if match[4]]
    assert scored == [3, 6, 9, 10]
    # Scoring does not change training: the scores are those of every epoch's.
    expected = [every_epoch.validation_scores_[epoch - 1] for epoch in scored]
    assert model.validation_scores_ == expected
    assert model.best_epoch_ == scored[int(np.argmax(expected))]
    assert len(every_epoch.validation_scores_) == 10


def test_interval_counts_validations_for_patience(X):
    model = CMLRecommender(**PARAMS, n_epochs=200, early_stopping=True,
                           validation_fraction=0.2, n_iter_no_change=2,
                           validation_interval=4).fit(X)
    assert model.n_iter_ < 200 and model.n_iter_ % 4 == 0
    assert model.best_epoch_ % 4 == 0
    assert model.n_iter_ - model.best_epoch_ == 2 * 4
    assert len(model.validation_scores_) == model.n_iter_ // 4
    # The vectors kept are those of the best validated epoch.
    train, _ = train_test_split(X, test_size=0.2, random_state=0)
    # (The pool is sized on the matrix given to fit, not on its training part.)
    reference = CMLRecommender(**PARAMS, n_epochs=model.best_epoch_,
                               pool_size=model.resolved_params_.get("pool_size", "auto")).fit(train)
    np.testing.assert_array_equal(model.item_embeddings_, reference.item_embeddings_)


def test_interval_longer_than_the_fit_scores_the_last_epoch(X):
    model = CMLRecommender(**PARAMS, n_epochs=2, early_stopping=True,
                           validation_interval=5).fit(X)
    assert len(model.validation_scores_) == 1 and model.best_epoch_ == 2


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_validation_interval(X, value):
    with pytest.raises(ValueError, match="The 'validation_interval' parameter"):
        CMLRecommender(**PARAMS, validation_interval=value).fit(X)
