"""Memory guards: oversized requests are refused before they allocate.

Each oversized request runs in a child process (``_isolated``) whose
address space is limited to what it uses after warming up plus
``HEADROOM``: a request that allocated first would fail there with
MemoryError or kill the child, instead of the clear ValueError expected.
The child also reports how much its peak resident memory grew while
refusing.
"""

import re
import sys

import numpy as np
import pytest
from _isolated import describe, run_isolated

from sklearn_cml import CMLRecommender, _memory
from sklearn_cml.datasets import make_interactions

HEADROOM = 3 << 29  # 1.5 GiB
# A refusal may grow the peak resident memory by at most this much (KiB).
REFUSAL_GROWTH_KIB = 100 * 1024

PRELUDE = f"""
import resource
import numpy as np
import scipy.sparse as sp
from sklearn_cml import CMLRecommender

PARAMS = dict(n_components=8, n_negatives=2, n_epochs=2, fold_in_epochs=2, random_state=0)
rng = np.random.default_rng(0)
X = sp.csr_matrix((rng.random((30, 10)) < 0.3).astype(np.float64))
features = sp.csr_matrix((rng.random((10, 6)) < 0.4).astype(np.float64))
wide_X = sp.csr_matrix((np.ones(1), (np.zeros(1, int), np.zeros(1, int))), shape=(10, 10**9))
# Warm up (compile, start the thread pools) before limiting the address space.
for solver in ("hogwild", "block"):
    block_model = CMLRecommender(**PARAMS, solver=solver).fit(X)
    block_model.transform(X)
CMLRecommender(**PARAMS, cold_start="network", hidden_size=8).fit(X, item_features=features)
neighbors_model = CMLRecommender(**PARAMS, cold_start="neighbors").fit(X, item_features=features)
neighbors_model.transform_items(features)
big = CMLRecommender(**PARAMS).fit(
    sp.random(300, 2000, density=0.01, format="csr", random_state=0))
big.recommend([0, 1], n_items=2000)
big.kneighbors_items([0, 1], n_neighbors=2000)
big.similar_users([0, 1], n_users=300)

with open("/proc/self/status") as status:
    in_use = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
_, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (in_use + {HEADROOM}, hard))

def attempt(action):
    '''Run ``action``; re-raise its ValueError with the growth of the peak RSS.'''
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        return action()
    except ValueError as error:
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        raise ValueError(f"grew {{grown}} KiB: {{error}}") from None
"""

# name -> (code, the parameter or input the message must name)
BOMBS = {
    "n_components block": (
        "CMLRecommender(**{**PARAMS, 'n_components': 10**5}, solver='block').fit(X)",
        "n_components"),
    "n_components hogwild": (
        "CMLRecommender(**{**PARAMS, 'n_components': 10**5}, solver='hogwild').fit(X)",
        "n_components"),
    "hidden_size": (
        "CMLRecommender(**PARAMS, cold_start='network', hidden_size=10**8).fit("
        "X, item_features=features)", "hidden_size"),
    "pool_size": ("CMLRecommender(**PARAMS, solver='block', pool_size=10**9).fit(X)",
                  "pool_size"),
    "n_negatives": (
        "CMLRecommender(**{**PARAMS, 'n_negatives': 10**8}, solver='hogwild').fit(X)",
        "n_negatives"),
    "a billion items": ("CMLRecommender(**PARAMS).fit(wide_X)", "items"),
    "partial_fit": ("CMLRecommender(**PARAMS, solver='block', pool_size=10**9).partial_fit(X)",
                    "pool_size"),
    "transform": ("block_model.set_params(pool_size=10**9).transform(X)", "pool_size"),
    "recommend": ("big.recommend(np.zeros(400_000, np.int32), n_items=2000)", "fewer users"),
    "kneighbors_items": ("big.kneighbors_items(np.zeros(400_000, np.int32), n_neighbors=2000)",
                         "n_neighbors"),
    "similar_users": ("big.similar_users(np.zeros(2_000_000, np.int32), n_users=300)",
                      "n_users"),
}


@pytest.fixture(scope="module")
def bomb_outcomes():
    if not sys.platform.startswith("linux"):
        pytest.skip("limits the child's address space through /proc and RLIMIT_AS: Linux only")
    cases = {name: f"attempt(lambda: {code})" for name, (code, _) in BOMBS.items()}
    # Capped at the number of items: it runs, and places items as 10 neighbours would.
    cases["cold_start_neighbors"] = (
        "neighbors_model.set_params(cold_start_neighbors=10**9)\n"
        "placed = attempt(lambda: neighbors_model.transform_items(features))\n"
        "neighbors_model.set_params(cold_start_neighbors=10)\n"
        "assert np.array_equal(placed, neighbors_model.transform_items(features))"
    )
    return run_isolated(cases, prelude=PRELUDE)


@pytest.mark.parametrize("name", list(BOMBS))
def test_oversized_request_is_refused_before_allocating(bomb_outcomes, name):
    outcome = bomb_outcomes[name]
    assert outcome["outcome"] == "raised" and outcome["type"] == "ValueError", describe(outcome)
    message = outcome["message"]
    assert re.search(r"at least [\d.]+ GiB", message) and "this machine has" in message
    assert BOMBS[name][1] in message, message
    grown = int(re.match(r"grew (-?\d+) KiB", message).group(1))
    assert grown < REFUSAL_GROWTH_KIB, message


def test_cold_start_neighbors_is_capped_at_the_items(bomb_outcomes):
    outcome = bomb_outcomes["cold_start_neighbors"]
    assert outcome["outcome"] == "returned", describe(outcome)


RECOMMEND_PEAK = """
import tracemalloc
import numpy as np
import scipy.sparse as sp
from sklearn_cml import CMLRecommender

X = sp.random(2000, 300, density=0.03, format="csr", random_state=0)
model = CMLRecommender(n_components=64, n_epochs=1, random_state=0).fit(X)
model.recommend([0, 1])

def extra_peak(n_users):
    '''Peak traced bytes of a recommend for n_users, beyond its answer.'''
    users = np.arange(n_users) % 2000
    tracemalloc.start()
    distances, items = model.recommend(users, n_items=10, return_distance=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - users.nbytes - distances.nbytes - items.nbytes
"""


def test_recommend_for_many_users_has_bounded_peak_memory():
    # Four times the users must not grow the memory used beyond the answer:
    # without chunks, 300,000 more users' vectors (256 bytes each) and seen
    # items would add over 70 MiB.
    code = ("small, large = extra_peak(100_000), extra_peak(400_000)\n"
            "assert large < small + (16 << 20), (small, large)\n"
            "assert large < 256 << 20, large")
    outcome = run_isolated({"peak": code}, prelude=RECOMMEND_PEAK)["peak"]
    assert outcome["outcome"] == "returned", describe(outcome)


def test_chunked_recommend_answers_as_one_batch(monkeypatch):
    X = make_interactions(n_users=60, n_items=40, random_state=0)
    model = CMLRecommender(n_components=8, n_epochs=2, random_state=0).fit(X)
    users = np.arange(60)[::-1]
    current = X[users]
    whole = model.recommend(users, n_items=7, return_distance=True, user_items=current)
    from sklearn_cml import _query
    monkeypatch.setattr(_query, "users_per_chunk", lambda *args: 7)
    chunked = model.recommend(users, n_items=7, return_distance=True, user_items=current)
    for expected, got in zip(whole, chunked):
        np.testing.assert_array_equal(got, expected)
    assert model.recommend([], n_items=3).shape == (0, 3)


def test_refusal_names_size_limit_and_fix_and_keeps_the_model(monkeypatch):
    X = make_interactions(n_users=60, n_items=40, random_state=0)
    model = CMLRecommender(n_components=8, n_epochs=2, random_state=0).fit(X)
    before = model.user_embeddings_.copy()
    monkeypatch.setattr(_memory, "memory_limit", lambda: 1 << 20)  # a 1 MiB machine
    with pytest.raises(ValueError, match=r"pool_size=100000 .*Lower pool_size"):
        model.set_params(pool_size=100_000, solver="block").partial_fit(X)
    assert model.n_iter_ == 2
    np.testing.assert_array_equal(model.user_embeddings_, before)
    with pytest.raises(ValueError, match=r"at least 0\.\d GiB .* the 0\.0 GiB"):
        CMLRecommender(n_components=10**3).fit(X)


def test_memory_limit_is_known_and_positive():
    limit = _memory.memory_limit()
    if sys.platform.startswith("linux"):
        assert limit is not None
    assert limit is None or limit > 1 << 26
