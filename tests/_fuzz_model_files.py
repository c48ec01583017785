"""Damaged model and pipeline files through ``load_model`` and, when they
load, every query and ``partial_fit``.

Run by ``test_persistence.py`` in a child process: a crash then fails that
test instead of killing the test run.  Loading must return a model or raise
ValueError; a model that loads must answer each query or raise one of
``EXPECTED``.  Anything else (an IndexError from an unchecked index, a
KeyError from a missing field) is a failure that hypothesis shrinks and
prints.
"""

import contextlib
import io
import json
import sys
import warnings

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_cml import CMLRecommender, RecommenderPipeline, load_model, make_recommender
from sklearn_cml.preprocessing import InteractionEncoder

EXPECTED = (ValueError, TypeError, FloatingPointError)

_rng = np.random.default_rng(0)
_dense = (_rng.random((12, 8)) < 0.4).astype(np.float64)
_dense[np.arange(12), np.arange(12) % 8] = 1.0  # every user has items
_coo = sp.coo_matrix(_dense)
# A table with string user ids, so that the file holds ids as well.
TABLE = [(f"u{user:02d}", int(item)) for user, item in zip(_coo.row, _coo.col)]
X = InteractionEncoder().fit_transform(TABLE)
FEATURES = sp.csr_matrix((_rng.random((8, 5)) < 0.5).astype(np.float64))
MODEL = CMLRecommender(n_components=4, n_epochs=1, fold_in_epochs=1, top_k=3, hidden_size=4,
                       cold_start="network", random_state=0).fit(X, item_features=FEATURES)
_file = io.BytesIO()
MODEL.save(_file, include_training_matrix=True)
_compressed = io.BytesIO()
MODEL.save(_compressed, include_training_matrix=True, compress=True)
# A pipeline file adds the encoder: its parameters and its ids.
PIPELINE = make_recommender(InteractionEncoder(), CMLRecommender(
    n_components=4, n_epochs=1, fold_in_epochs=1, top_k=3, random_state=0)).fit(TABLE)
_pipeline_file = io.BytesIO()
PIPELINE.save(_pipeline_file)
# A file with the optimiser state, averaging on so that it holds every
# array of the state, which partial_fit then trains on.
STATEFUL = CMLRecommender(**{**MODEL.get_params(), "n_epochs": 2, "average": 1}).fit(
    X, item_features=FEATURES)
_state_file = io.BytesIO()
STATEFUL.save(_state_file, include_optimizer_state=True)
# The archives' bytes, for bit flips in the zip's own records as well.
FILES = [_file.getvalue(), _compressed.getvalue(), _pipeline_file.getvalue(),
         _state_file.getvalue()]


def _contents(data):
    """``(arrays, header, array names)`` of a saved file."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    return arrays, json.loads(arrays.pop("header").tobytes()), sorted(arrays)


# The files that damaged_files starts from: a model's, a pipeline's, and a
# model's with its optimiser state.
BASES = [_contents(FILES[0]), _contents(FILES[2]), _contents(FILES[3])]

INTEGERS = [-(2**31), -2, -1, 0, 1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 2**31 - 1, 2**40]
FLOATS = [0.0, -1.0, 0.5, 1.0, 1e30, -1e30, np.nan, np.inf, 1e-300]
# Huge ints: parameters that would set a query's loops or allocations.
JSON_VALUES = st.sampled_from([None, True, False, -1, 0, 1, 2, 3, 0.5, 1e300, -1e300, "x",
                               "network", "neighbors", "auto", [], {}, [1.0], 10**9, 10**12,
                               2**63, float("nan")])
DTYPES = ["int32", "int64", "uint8", "float32", "float64", "bool", "<U2", ">f4", ">i8"]


@st.composite
def new_arrays(draw, old):
    """An array of some dtype and of the old shape, or one axis changed."""
    shape = list(old.shape)
    if shape and draw(st.booleans()):
        axis = draw(st.integers(0, len(shape) - 1))
        shape[axis] = max(0, shape[axis] + draw(st.sampled_from([-1, 1, -shape[axis]])))
    if draw(st.integers(0, 9)) == 0:
        shape = shape + [1] if draw(st.booleans()) else shape[:-1]
    dtype = np.dtype(draw(st.sampled_from(DTYPES + [old.dtype.str] * 4)))
    size = int(np.prod(shape))
    pool = INTEGERS if dtype.kind in "iub" else FLOATS
    values = draw(st.lists(st.sampled_from(pool), min_size=size, max_size=size)) if size \
        else []
    if dtype.kind == "U":
        return np.array([str(v) for v in values], dtype=dtype).reshape(shape)
    with np.errstate(all="ignore"):
        return np.array(values, dtype=np.float64).astype(dtype).reshape(shape)


@st.composite
def damaged_files(draw):
    base, base_header, names = draw(st.sampled_from(BASES))
    arrays = dict(base)
    header = json.loads(json.dumps(base_header))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["replace", "poke", "poke", "drop", "header"]))
        name = draw(st.sampled_from(names))
        if kind == "replace":
            arrays[name] = draw(new_arrays(arrays.get(name, base[name])))
        elif kind == "poke" and name in arrays and arrays[name].size:
            array = arrays[name].copy()
            flat = array.reshape(-1)
            position = draw(st.integers(0, flat.size - 1))
            pool = INTEGERS if array.dtype.kind in "iub" else FLOATS
            if array.dtype.kind != "U":
                with np.errstate(all="ignore"):
                    flat[position] = np.array(draw(st.sampled_from(pool))).astype(array.dtype)
            arrays[name] = array
        elif kind == "drop":
            arrays.pop(name, None)
        elif kind == "header":
            sections = ["params", "attributes", "state", None]
            if "optimizer_state" in header:
                sections.append("optimizer_state")
            if "pipeline" in header:
                sections += [("pipeline",), ("pipeline", "encoder", "params"),
                             ("pipeline", "encoder", "array_attributes")]
            section = draw(st.sampled_from(sections))
            target = header
            for key in (section,) if isinstance(section, str) else section or ():
                target = target.get(key) if isinstance(target, dict) else None
            if isinstance(target, dict):  # not already damaged
                key = draw(st.sampled_from(sorted(target) + ["format_version", "extra_"]))
                target[key] = draw(JSON_VALUES)
    if draw(st.integers(0, 4)):  # mostly, a header that describes the damaged arrays
        header["arrays"] = {name: {"dtype": array.dtype.str, "shape": list(array.shape)}
                            for name, array in arrays.items()}
    file = io.BytesIO()
    np.savez(file, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return file.getvalue()


def _records(data):
    """Offsets of the zip's records (local headers, directory, end): flips
    there reach zipfile's parsing, where a flip in the data only fails a CRC."""
    return [i for signature in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06")
            for i in range(len(data)) if data.startswith(signature, i)]


RECORDS = [_records(data) for data in FILES]


@st.composite
def flipped_files(draw):
    """A saved file (plain or compressed) with a few bits flipped, mostly in
    the zip's records and the .npy preambles after them."""
    which = draw(st.integers(0, len(FILES) - 1))
    data = bytearray(FILES[which])
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 3)):
            position = draw(st.sampled_from(RECORDS[which])) + draw(st.integers(0, 140))
        else:
            position = draw(st.integers(0, len(data) - 1))
        data[min(position, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def pipeline_queries(pipeline):
    """The pipeline's own queries, on tables and ids; then its model's."""
    users, new_table = list(PIPELINE[0].user_ids_[:2]), TABLE[:6]
    yield lambda: pipeline.predict(new_table)
    yield lambda: pipeline.transform(new_table)
    yield lambda: pipeline.score(TABLE)
    yield lambda: pipeline.recommend(users, n_items=3)
    yield lambda: pipeline.kneighbors_items([0, 1], n_neighbors=2)
    yield lambda: pipeline.similar_users(users[:1], n_users=2)
    yield lambda: pipeline.pair_distances(users, [1, 2])
    yield from queries(pipeline[-1])


def queries(model):
    """Every query method, as calls on a loaded model."""
    new_users, users = X[:3], list(MODEL.user_ids_[:2])
    yield lambda: model.recommend(users, n_items=3, filter_seen=False)
    yield lambda: model.recommend(users, n_items=3)
    yield lambda: model.recommend(users, n_items=3, user_items=X[[0, 1]])
    yield lambda: model.recommend(users[:1], n_items=2, item_features=FEATURES[:3])
    yield lambda: model.transform(new_users)
    yield lambda: model.predict(new_users)
    yield lambda: model.score(new_users)
    yield lambda: model.kneighbors_items([0, 1], n_neighbors=2)
    yield lambda: model.kneighbors_items(item_features=FEATURES[:2], n_neighbors=2)
    yield lambda: model.similar_users(users[:1], n_users=2)
    yield lambda: model.pair_distances(users, [1, 2])
    yield lambda: model.transform_items(FEATURES[:3])
    # Trains on the file's optimiser state (refused without one).
    yield lambda: model.partial_fit(X, item_features=FEATURES)
    yield lambda: model.set_params(cold_start="neighbors").transform_items(FEATURES[:3])


def run(n_examples, derandomize):
    @settings(max_examples=n_examples, deadline=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck), database=None)
    @given(st.one_of(damaged_files(), flipped_files()))
    def check(data):
        try:
            model = load_model(io.BytesIO(data))
        except ValueError:
            return
        ask = pipeline_queries if isinstance(model, RecommenderPipeline) else queries
        for query in ask(model):
            with contextlib.suppress(EXPECTED):
                query()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflows of damaged but finite values
        check()


if __name__ == "__main__":
    run(int(sys.argv[1]), sys.argv[2] == "derandomize")
    print("ok")
