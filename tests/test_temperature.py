"""temperature="auto": the measured temperature, and how fit uses it."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_cml import CMLRecommender, _temperature
from sklearn_cml._config import training_config
from sklearn_cml._interactions import Interactions, to_interactions
from sklearn_cml.datasets import make_interactions

N_USERS, N_ITEMS, DIM = 400, 600, 8
CONFIG = CMLRecommender().get_params()


def one_per_user(items_of_users, n_items=N_ITEMS):
    """Interactions with the given item of each user (one each)."""
    indptr = np.arange(len(items_of_users) + 1, dtype=np.int64)
    return Interactions(indptr, np.asarray(items_of_users, dtype=np.int32), n_items)


def planted_geometry(spread, seed=0):
    """Vectors where each user's held-out item lies ``spread`` away on average,
    the other items anywhere in the unit ball; and the two interaction sets."""
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    items /= 2 * np.linalg.norm(items, axis=1, keepdims=True)
    held = rng.integers(0, N_ITEMS, N_USERS)
    offsets = rng.normal(size=(N_USERS, DIM)).astype(np.float32)
    offsets *= spread / np.linalg.norm(offsets, axis=1, keepdims=True)
    users = (items[held] + offsets).astype(np.float32)
    trained = one_per_user((held + 1) % N_ITEMS)
    return users, items, trained, one_per_user(held)


def measure(users, items, train, holdout, max_norm=1.0):
    config = training_config({**CONFIG, "max_norm": max_norm}, train)
    counts = np.bincount(train.indices, minlength=train.n_items)
    return _temperature.calibrated_temperature(users, items, train, holdout, counts, config,
                                               1.0, seed=0)


def test_sharper_data_gives_a_lower_temperature():
    # Items in a ball of radius 0.5: from spread 0.5 on, the held-out item is
    # not always the nearest, and the likelihood has an inner maximum.
    spreads = [0.5, 0.6, 0.8, 1.0, 1.5]
    measured = [measure(*planted_geometry(spread)) for spread in spreads]
    assert all(a < b for a, b in zip(measured, measured[1:])), measured
    # Nearly always the nearest: the sharpest temperature searched.
    sharpest = _temperature.SOFTER * _temperature.BOUNDS[0]
    assert measure(*planted_geometry(0.1)) == pytest.approx(sharpest, rel=1e-3)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), spread=st.floats(0.0, 3.0),
       max_norm=st.sampled_from([0.5, 1.0, 2.0]))
def test_always_finite_and_within_bounds(seed, spread, max_norm):
    users, items, train, holdout = planted_geometry(spread, seed)
    measured = measure(users * max_norm, items * max_norm, train, holdout, max_norm)
    low, high = (bound * max_norm**2 for bound in _temperature.BOUNDS)
    assert np.isfinite(measured) and low * 0.999 <= measured <= high * 1.001
    assert measured >= low * _temperature.SOFTER * 0.995  # 3 significant digits


def test_degenerate_vectors_give_a_bounded_temperature():
    # Every vector at the origin: every temperature explains the pairs equally.
    zeros = np.zeros((N_USERS, DIM), np.float32), np.zeros((N_ITEMS, DIM), np.float32)
    _, _, train, holdout = planted_geometry(0.1)
    measured = measure(*zeros, train, holdout)
    assert np.isfinite(measured)
    assert _temperature.BOUNDS[0] * 0.999 <= measured <= _temperature.BOUNDS[1] * 1.001


# ------------------------------------------------------------------ in fit


@pytest.fixture(scope="module")
def X():
    return make_interactions(n_users=2500, n_items=300, n_clusters=6, mean_interactions=12,
                             random_state=1)


@pytest.fixture(scope="module")
def auto_model(X):
    return CMLRecommender(n_components=8, n_epochs=12, random_state=0).fit(X)


def test_fit_measures_the_temperature_and_reproduces_it(X, auto_model):
    measured = auto_model.resolved_params_["temperature"]
    low, high = _temperature.BOUNDS
    assert low <= measured <= high and measured != _temperature.START
    again = CMLRecommender(n_components=8, n_epochs=12, random_state=0).fit(X)
    assert again.resolved_params_ == auto_model.resolved_params_
    np.testing.assert_array_equal(again.user_embeddings_, auto_model.user_embeddings_)


def test_fit_trains_on_with_the_measured_temperature(X, auto_model):
    # The same fit with that value given from epoch 6 on: identical vectors.
    measured = auto_model.resolved_params_["temperature"]
    first = CMLRecommender(n_components=8, n_epochs=_temperature.CALIBRATION_EPOCHS,
                           early_stopping=False, random_state=0)
    assert first.fit(X).resolved_params_["temperature"] == _temperature.START
    different = CMLRecommender(n_components=8, n_epochs=12, temperature=measured * 1.5,
                               random_state=0).fit(X)
    assert not np.array_equal(different.user_embeddings_, auto_model.user_embeddings_)


def test_partial_fit_and_fold_in_go_on_with_the_fitted_temperature(X, auto_model):
    import copy

    measured = auto_model.resolved_params_["temperature"]
    explicit = copy.deepcopy(auto_model).set_params(temperature=measured)
    implicit = copy.deepcopy(auto_model)
    explicit.partial_fit(X)
    implicit.partial_fit(X)
    np.testing.assert_array_equal(explicit.user_embeddings_, implicit.user_embeddings_)
    np.testing.assert_array_equal(explicit.transform(X[:20]), implicit.transform(X[:20]))
    assert implicit.resolved_params_["temperature"] == measured


@pytest.mark.parametrize("params", [{"temperature": 0.25}, {"loss": "hinge"},
                                    {"temperature": 0.25, "early_stopping": False}])
def test_an_explicit_temperature_or_the_hinge_measures_nothing(X, params):
    model = CMLRecommender(n_components=8, n_epochs=8, random_state=0, **params).fit(X)
    assert "temperature" not in model.resolved_params_
    config = training_config(model.get_params(), to_interactions(X))
    assert not config.calibrate_temperature


def test_without_early_stopping_the_measured_pairs_rejoin_training(X):
    model = CMLRecommender(n_components=8, n_epochs=8, early_stopping=False,
                           random_state=0).fit(X)
    assert model.resolved_params_["temperature"] != _temperature.START
    assert model.n_iter_ == 8 and model.best_epoch_ is None


def test_small_data_keeps_the_starting_temperature():
    X = make_interactions(n_users=200, n_items=100, random_state=0)
    model = CMLRecommender(n_components=8, n_epochs=8, random_state=0).fit(X)
    assert model.resolved_params_["temperature"] == _temperature.START


def test_verbose_says_which_temperature_it_measured(X, capsys):
    model = CMLRecommender(n_components=8, n_epochs=7, random_state=0, verbose=1).fit(X)
    lines = capsys.readouterr().out.splitlines()
    measured = model.resolved_params_["temperature"]
    notice = re.compile(rf"\[CMLRecommender\] Temperature: {measured:g}, 1.2 times the most "
                        r"likely for \d+ held-out interactions after 5 epochs at 0.3; training "
                        r"on with it.$")
    position = [n for n, line in enumerate(lines) if notice.match(line)]
    assert len(position) == 1
    # After epoch 5's line and before epoch 6's.
    assert "epoch 5/7" in lines[position[0] - 1] and "epoch 6/7" in lines[position[0] + 1]
    # The first line does not announce the temperature: it is not known yet.
    assert "temperature" not in lines[0]
    # One fit, one clock: the time elapsed runs on across the measurement.
    elapsed = [float(match[1]) for match in map(re.compile(r".*; (\d+\.\d) s elapsed").match,
                                                lines) if match]
    assert len(elapsed) == 7 and elapsed == sorted(elapsed)


def test_a_saved_model_keeps_its_temperature_for_fold_in(X, auto_model, tmp_path):
    from sklearn_cml import load_model

    auto_model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert loaded.resolved_params_ == auto_model.resolved_params_
    np.testing.assert_array_equal(loaded.transform(X[:20]), auto_model.transform(X[:20]))
