"""A fitted model to one file and back, safely.

A model file is a numpy ``.npz`` archive (a zip of ``.npy`` arrays) that
holds a ``_model.FittedModel``, what the fitted model answers with: the
user and item vectors, the items' training counts (fold-in samples
negatives by them), the content model of item features (TF-IDF weights
and rows, the feature MLP), the ids and the history of training (as the
estimator's fitted attributes), the training matrix (which
``recommend(filter_seen=True)`` reads) unless the caller leaves it out,
and, for a ``RecommenderPipeline``, its ``InteractionEncoder``'s
parameters and ids.  A JSON header, itself an array of UTF-8 bytes,
names the format and its version, the package version, the constructor
parameters and every array with its dtype and shape.  This module knows
the fitted model and the parameters, never the estimators:
``CMLRecommender.save``, ``RecommenderPipeline.save`` and ``load_model``
call it.

The optimiser state (AdaGrad sums, the SGD vectors behind the averaged
ones, random streams), which ``partial_fit`` continues from, only when the
caller asks for it (``_saved_state``): without it a loaded model answers
exactly as the saved one did but cannot continue training.  Pickle keeps
everything.

Loading never runs code from the file (``allow_pickle=False``: an object
array is refused), and checks every array before the model is built: its
dtype, its shape against the others, finite values, and every index that a
Numba kernel will read (the CSR structures).  A file that fails a check
raises ValueError and no model is made.
"""

import json
import struct
import zipfile
import zlib
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer

from ._atomic import replacing
from ._config import POOL_BOUNDS
from ._content import ItemContent
from ._features import Encoder
from ._ids import IdLookup, as_ids
from ._model import FittedModel, History
from ._saved_state import StateError, read_state, state_section
from ._sparse_checks import check_csr_arrays
from ._version import __version__
from ._weights import INTERACTION_WEIGHTS

FORMAT = "sklearn-cml model"
FORMAT_VERSION = 1
_HEADER = "header"

# The header's "attributes" and "array_attributes" hold the estimator's
# fitted attributes besides the arrays stored by their own rules: JSON
# values, and 1-d arrays with one entry per user or per item.
_ATTRIBUTES = {"n_features_in_", "n_iter_", "loss_curve_", "feature_loss_curve_",
               "n_item_features_in_", "validation_scores_", "best_validation_score_",
               "best_epoch_", "resolved_params_", "user_ids_", "item_ids_"}
_LENGTHS = {"user_ids_": "users", "item_ids_": "items", "feature_names_in_": "items"}
# Fitted attributes that the estimator's methods read.
_REQUIRED = {"n_features_in_", "n_item_features_in_", "n_iter_", "loss_curve_"}
_ENCODER_DTYPE = np.dtype(np.float32)
_INDPTR, _INDICES = np.dtype(np.int64), np.dtype(np.int32)
# The arrays of a pipeline file's encoder: its id vocabularies.
_ENCODER_IDS = "pipeline.encoder."

# Parameters that set how long a query runs or how much it allocates, and
# the largest value a model file may hold: far above any useful setting,
# far below what would hang a query or exhaust memory.  save refuses a model
# past them, so that every saved file loads.
PARAMETER_LIMITS = {"fold_in_epochs": 10_000, "n_negatives": 10_000,
                    "cold_start_neighbors": 10_000, "pool_size": 65_536,
                    "block_size": 2**24}
# What a file may make the loader allocate: its arrays, inflated, at most
# this many times the archive's size (deflate reaches about 1,000; a
# model's vectors barely compress), plus a fixed allowance for small files.
MAX_INFLATION, INFLATION_ALLOWANCE = 100, 16 * 2**20
MAX_HEADER_BYTES = 8 * 2**20
# The .npy preamble before an array's data (numpy writes 128 bytes or so).
_MAX_NPY_PREAMBLE = 10_000 + 12
# Errors of a damaged archive, from zipfile, zlib and numpy's .npy reader:
# unknown compression (NotImplementedError), encryption (RuntimeError),
# truncated members (EOFError, OSError), damaged zip records (struct.error).
_ARCHIVE_ERRORS = (OSError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error,
                   NotImplementedError, RuntimeError, struct.error, OverflowError)


class FittedEncoder(NamedTuple):
    """What a pipeline file adds to a model file: the step names of the
    pipeline (the encoder's, the model's), the ``InteractionEncoder``'s
    parameters and its fitted id vocabularies."""

    step_names: tuple
    params: dict
    user_ids: np.ndarray
    item_ids: np.ndarray


def save_model(file, params, model, *, include_training_matrix=True, compress=False,
               encoder=None, training=None, include_optimizer_state=False):
    """Write the ``FittedModel`` ``model`` of an estimator with parameters
    ``params`` (a dict) to ``file``: see ``CMLRecommender.save``.  With a
    ``FittedEncoder``, the file holds the pipeline of that encoder and the
    model: see ``RecommenderPipeline.save``.  With
    ``include_optimizer_state``, it also holds ``training``, the
    ``TrainingState`` that ``model`` was made from."""
    problem = _parameter_limit_problem(params)
    if problem:
        raise ValueError(f"This model cannot be saved: {problem}. Set a smaller value with "
                         "set_params before saving (the limits keep a hostile file from "
                         "hanging a query or exhausting memory), or pickle the model.")
    # Fold-in divides by these means and loading refuses any that is not
    # finite and positive: never write a file that cannot be loaded.
    unbounded = sorted(name for name, scale in model.value_scales.items()
                       if not 0 < scale < np.inf)
    if unbounded:
        raise ValueError(
            f"This model cannot be saved: the mean of its training values under "
            f"interaction_weight {unbounded} is not a finite positive number. Rescale "
            "X's values (divide them by their maximum) and fit again, or pickle the model."
        )
    arrays = {"user_embeddings": model.user_embeddings, "item_embeddings": model.item_embeddings,
              "item_counts": model.item_counts.astype(np.int64, copy=False)}
    if include_training_matrix:
        if model.user_items is None:
            raise ValueError(
                "This model has no training matrix to save: it was loaded from a file "
                "saved without it. Save it with include_training_matrix=False."
            )
        arrays.update(_csr_arrays("user_items", model.user_items))
    # The header's optional sections, after its arrays.
    sections = {}
    if include_optimizer_state:
        sections["optimizer_state"] = _optimizer_state_section(training, model, arrays)
    content = model.content
    if content is not None:
        arrays["content.idf"] = content.tfidf.idf_
        arrays["content.trained"] = content.trained
        arrays.update(_csr_arrays("content.rows", content.rows))
        arrays["content.rows.data"] = content.rows.data
    if model.encoder is not None:
        arrays.update({f"encoder.{name}": array
                       for name, array in model.encoder._asdict().items()})
    if encoder is not None:
        sections["pipeline"] = _pipeline_section(encoder, model, arrays)
    attributes, generic = {}, {}
    for name, value in _published(model).items():
        if isinstance(value, np.ndarray):
            arrays[f"attribute.{name}"], generic[name] = _generic_array(name, value)
        else:
            attributes[name] = _json_value(name, value)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sklearn_cml_version": __version__,
        "estimator": "CMLRecommender",
        "params": {name: _json_value(name, value, parameter=True)
                   for name, value in params.items()},
        "attributes": attributes,
        "array_attributes": generic,
        "state": {"seed": model.seed,
                  "median_user_count": model.median_user_count,
                  "value_scales": model.value_scales,
                  "fitted_cold_start": model.cold_start},
        "training_matrix": bool(include_training_matrix),
        "arrays": {name: {"dtype": array.dtype.str, "shape": list(array.shape)}
                   for name, array in arrays.items()},
    }
    header.update(sections)
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    write = np.savez_compressed if compress else np.savez
    if hasattr(file, "write"):
        write(file, **arrays)
    else:  # opened here, so that numpy does not append ".npz" to the name
        with replacing(file) as stream:
            write(stream, **arrays)


def _optimizer_state_section(training, model, arrays):
    """The header's "optimizer_state" section of the ``TrainingState``
    ``training``; its arrays go into ``arrays``."""
    if training is None:
        raise ValueError(
            "This model has no optimiser state to save: it was loaded from a file "
            "saved without it. Save it with include_optimizer_state=False, or fit it "
            "again to train it further."
        )
    section = state_section(training, model)
    arrays.update(section.arrays)
    return section.header


def _pipeline_section(encoder, model, arrays):
    """The header's "pipeline" section of a ``FittedEncoder``; its id arrays
    go into ``arrays``."""
    # The encoder's columns are the model's items: a pipeline whose two
    # steps saw different tables would place new users on the wrong items.
    if model.item_ids is None or not _same_ids(encoder.item_ids, model.item_ids):
        raise ValueError(
            "This pipeline cannot be saved: its InteractionEncoder's item ids are not its "
            "CMLRecommender's, so the two steps were fitted on different tables. Fit the "
            "pipeline again (pipeline.fit(table)) before saving it."
        )
    described = {}
    for name, ids in (("user_ids_", encoder.user_ids), ("item_ids_", encoder.item_ids)):
        arrays[f"{_ENCODER_IDS}{name}"], described[name] = _generic_array(name, ids)
    return {"steps": list(encoder.step_names),
            "encoder": {"params": {name: _json_value(name, value, parameter=True)
                                   for name, value in encoder.params.items()},
                        "array_attributes": described}}


def _same_ids(a, b):
    """Whether two arrays of ids are the same ids, of the same dtype, in the same order."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()


def _parameter_limit_problem(params):
    """What exceeds ``PARAMETER_LIMITS`` in ``params``, or None."""
    for name, limit in PARAMETER_LIMITS.items():
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            return f"{name}={value} is above {limit:,}, the largest a model file holds"
    return None


def _published(model):
    """The fitted attributes the header holds, by the estimator's names."""
    history = model.history
    attributes = {"n_features_in_": model.n_items}
    if model.item_names is not None:
        attributes["feature_names_in_"] = model.item_names
    attributes.update({
        "n_iter_": history.n_iter,
        "loss_curve_": history.loss_curve,
        "feature_loss_curve_": history.feature_loss_curve if model.encoder is not None else None,
        "n_item_features_in_": model.n_item_features,
        "validation_scores_": history.validation_scores or None,
        "best_validation_score_": max(history.validation_scores, default=None),
        "best_epoch_": history.best_epoch,
        "resolved_params_": history.resolved,
        "user_ids_": model.user_ids,
        "item_ids_": model.item_ids,
    })
    return attributes


def _csr_arrays(prefix, matrix):
    """The index arrays of a CSR matrix, in the dtypes the kernels take."""
    return {f"{prefix}.indptr": matrix.indptr.astype(_INDPTR, copy=False),
            f"{prefix}.indices": matrix.indices.astype(_INDICES, copy=False)}


def _generic_array(name, array):
    """``(array to store, its description)`` of a 1-d fitted array attribute."""
    if array.ndim != 1:
        raise ValueError(f"The fitted attribute {name} has shape {array.shape}; a model "
                         "file holds only 1-d array attributes.")
    if array.dtype.kind in "biufcU":
        return array, {"object": False}
    if array.dtype.kind == "O" and all(isinstance(value, str) for value in array):
        # numpy's fixed-width strings drop trailing NULs: "a" and "a\x00" would merge.
        if any(value.endswith("\x00") for value in array):
            raise ValueError(
                f"The fitted attribute {name} holds strings that end in a NUL character "
                "('\\x00'), which a model file cannot keep apart from the same strings "
                "without it. Rename those ids, or pickle the model instead."
            )
        return array.astype(str), {"object": True}
    raise ValueError(
        f"The fitted attribute {name} holds {array.dtype} values that a model file cannot "
        "hold without pickle: numbers and strings only. Pickle the model instead."
    )


def _json_value(name, value, parameter=False):
    """``value`` as JSON (None, bool, int, float, str, lists and dicts of those), or an error."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(name, item, parameter) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):  # search_params
        return {key: _json_value(name, item, parameter) for key, item in value.items()}
    if parameter:
        raise ValueError(
            f"The parameter {name}={value!r} cannot be written to a model file, which holds "
            f"numbers and strings only. Set it to one (for random_state, an int or None: "
            f"set_params({name}=0); after fit it changes none of the model's answers), or "
            "pickle the model instead."
        )
    raise ValueError(f"The fitted attribute {name} is a {type(value).__name__}, which a "
                     "model file cannot hold. Pickle the model instead.")


# ------------------------------------------------------------------ loading


class _Archive:
    """The arrays of a model file, checked one by one as they are read."""

    def __init__(self, npz, described):
        self.npz = npz
        self.described = described
        self.read = set()

    def get(self, name, dtypes, shape, finite=False):
        """Array ``name``, of one of ``dtypes`` (or of a dtype kind in the string
        ``dtypes``) and of ``shape`` (None: any length on that axis),
        C-contiguous; ValueError otherwise."""
        self.read.add(name)
        if name not in self.described or name not in self.npz.files:
            raise corrupt(f"its array {name!r} is missing")
        description = self.described[name]
        _check_member(self.npz, name, description)
        array = _read_member(self.npz, name)
        if array.dtype.str != description["dtype"] or list(array.shape) != description["shape"]:
            raise corrupt(f"its array {name!r} is {array.dtype.str} of shape {array.shape}, "
                           f"but its header says {description}")
        allowed = (array.dtype.kind in dtypes if isinstance(dtypes, str)
                   else array.dtype in [np.dtype(dtype) for dtype in dtypes])
        if not allowed:
            raise corrupt(f"its array {name!r} has dtype {array.dtype}, not one of {dtypes}")
        if len(array.shape) != len(shape) or any(
                want is not None and have != want for have, want in zip(array.shape, shape)):
            expected = tuple("any" if want is None else want for want in shape)
            raise corrupt(f"its array {name!r} has shape {array.shape}, not {expected}")
        if finite and not np.isfinite(array).all():
            raise corrupt(f"its array {name!r} holds NaN or infinity")
        return np.ascontiguousarray(array)

    def csr(self, prefix, shape, data=None):
        """The CSR matrix of ``prefix``'s index arrays, every index checked.

        Without ``data`` it is an interaction matrix: ones, each row sorted
        and without repeats, as ``fit`` makes it.
        """
        indptr = self.get(f"{prefix}.indptr", [_INDPTR], (shape[0] + 1,))
        indices = self.get(f"{prefix}.indices", [_INDICES], (None,))
        if data is not None and data.shape != indices.shape:
            raise corrupt(f"{prefix} has {indices.shape[0]} indices but {data.shape[0]} "
                           "values")
        problem = check_csr_arrays(indptr, indices, shape[1], canonical=data is None)
        if problem:
            raise corrupt(f"{prefix} is not a valid sparse matrix: {problem}")
        if data is None:
            data = np.ones(indices.shape[0], dtype=np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=shape)


def _read_member(npz, name):
    """One array of the archive; ValueError if it cannot be read without pickle."""
    try:
        return npz[name]
    except ValueError as error:  # among others, object arrays with allow_pickle=False
        raise corrupt(f"its array {name!r} cannot be read without pickle ({error})") \
            from error
    except _ARCHIVE_ERRORS as error:
        # MemoryError: a damaged .npy header claiming a huge shape.
        raise corrupt(f"its array {name!r} cannot be read ({error!r})") from error


def _described_bytes(name, description):
    """The bytes of data of an array as the header describes it."""
    try:
        dtype = np.dtype(description["dtype"])
    except (TypeError, ValueError) as error:
        raise corrupt(f"its header gives array {name!r} the dtype "
                      f"{description['dtype']!r}") from error
    if dtype.hasobject:
        raise corrupt(f"its array {name!r} holds Python objects, which cannot be read "
                      "without pickle")
    shape = description["shape"]
    if not all(type(n) is int and n >= 0 for n in shape):
        raise corrupt(f"its header describes array {name!r} as {description!r}")
    return dtype.itemsize * int(np.prod(shape, dtype=object))


def _check_member(npz, name, description):
    """ValueError unless the archive's own record of member ``name`` (its
    inflated size, from the zip's directory) and its .npy preamble agree with
    the header: checked before the array is inflated, so that a member can
    make the loader allocate no more than the header, itself bounded by the
    archive's size, says."""
    expected = _described_bytes(name, description)
    try:
        info = npz.zip.getinfo(f"{name}.npy")
        size = info.file_size
        if not expected <= size <= expected + _MAX_NPY_PREAMBLE:
            raise corrupt(f"its array {name!r} inflates to {size:,} bytes, but its header "
                          f"describes {expected:,} bytes of data")
        with npz.zip.open(info) as member:
            npy = np.lib.format
            read = (npy.read_array_header_1_0 if npy.read_magic(member) == (1, 0)
                    else npy.read_array_header_2_0)
            shape, _, dtype = read(member)
    except ValueError:
        raise
    except _ARCHIVE_ERRORS + (KeyError,) as error:
        raise corrupt(f"its array {name!r} cannot be read ({error!r})") from error
    if dtype.str != description["dtype"] or list(shape) != description["shape"]:
        raise corrupt(f"its array {name!r} is {dtype.str} of shape {shape}, but its header "
                      f"says {description}")


def corrupt(problem):
    return ValueError(f"This is not a valid sklearn-cml model file: {problem}. The file is "
                      "damaged or was not written by CMLRecommender.save.")


def read_model(file, make_estimator, make_encoder):
    """``(estimator, FittedModel, TrainingState or None, FittedEncoder or
    None)`` of a file written by ``save_model``: the training state is None
    unless the file holds the optimiser state, the encoder None unless it
    holds a pipeline.

    ``make_estimator(params)`` returns the estimator of the header's
    parameters, raising TypeError or ValueError when they are not valid
    ones; its ``n_components`` shapes the vectors read.  ``make_encoder``
    likewise checks the parameters of a pipeline's encoder.  Raises
    ValueError if the file is not a model file, was written by a newer
    version of the format, or fails any check of its arrays.
    """
    try:
        npz = np.load(file, allow_pickle=False)
    except (ValueError, *_ARCHIVE_ERRORS) as error:
        if isinstance(error, OSError) and not isinstance(error, zipfile.BadZipFile) and \
                not hasattr(file, "read"):
            raise  # a path that cannot be opened: not found, no permission
        raise corrupt(f"numpy cannot open it as an .npz archive ({error!r})") from error
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise corrupt("it holds a single array, not an .npz archive")
    with npz:
        header = _read_header(npz)
        archive = _Archive(npz, header["arrays"])
        try:
            estimator = make_estimator(header["params"])
        except (TypeError, ValueError) as error:
            raise corrupt(f"its parameters are not those of a CMLRecommender ({error})") \
                from error
        problem = _parameter_limit_problem(header["params"])
        if problem:
            raise corrupt(f"its parameter {problem}")
        model = _build(header, archive, estimator.n_components)
        training = None
        if "optimizer_state" in header:
            try:
                training = read_state(header["optimizer_state"], archive.get, model)
            except StateError as error:
                raise corrupt(str(error)) from error
        encoder = _pipeline_encoder(header, archive, model, make_encoder)
        unread = set(npz.files) - archive.read - {_HEADER}
        if unread:
            raise corrupt(f"it holds arrays this format does not have: {sorted(unread)}")
    return estimator, model, training, encoder


def _read_header(npz):
    """The JSON header, with its format and version checked."""
    if _HEADER not in npz.files:
        raise corrupt("it has no header")
    try:
        size = npz.zip.getinfo(f"{_HEADER}.npy").file_size
    except KeyError as error:
        raise corrupt("its header is not an array") from error
    if size > MAX_HEADER_BYTES:
        raise corrupt(f"its header inflates to {size:,} bytes, more than the "
                      f"{MAX_HEADER_BYTES:,} a header may have")
    raw = _read_member(npz, _HEADER)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise corrupt("its header is not an array of bytes")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise corrupt(f"its header is not JSON ({error})") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise corrupt("its header does not name the sklearn-cml model format")
    _check_version(header)
    _check_layout(header, npz)
    return header


def _check_version(header):
    """ValueError unless the header's format version is the one this code reads."""
    version = header.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ValueError(
            f"This model file has format version {version}, written by sklearn-cml "
            f"{header.get('sklearn_cml_version')}; this sklearn-cml reads version "
            f"{FORMAT_VERSION} only. Upgrade sklearn-cml to load it."
        )
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise corrupt(f"its format version {version!r} is unknown")


def _check_layout(header, npz):
    """ValueError unless the header has its sections and describes arrays
    that the archive holds."""
    expected = {"params": dict, "attributes": dict, "array_attributes": dict, "state": dict,
                "arrays": dict, "training_matrix": bool, "estimator": str}
    for key, kind in expected.items():
        if not isinstance(header.get(key), kind):
            raise corrupt(f"its header's {key!r} is missing or not a {kind.__name__}")
    if header["estimator"] != "CMLRecommender":
        raise corrupt(f"it holds a {header['estimator']!r}, not a CMLRecommender")
    missing = sorted(set(header["arrays"]) - set(npz.files))
    if missing:
        raise corrupt(f"its arrays {missing} are missing")
    described = 0
    for name, description in header["arrays"].items():
        if not (isinstance(description, dict) and isinstance(description.get("dtype"), str)
                and isinstance(description.get("shape"), list)):
            raise corrupt(f"its header describes array {name!r} as {description!r}")
        described += _described_bytes(name, description)
    # Before anything is inflated: a small file cannot make the loader allocate much.
    archive_bytes = sum(info.compress_size for info in npz.zip.infolist())
    budget = MAX_INFLATION * archive_bytes + INFLATION_ALLOWANCE
    if described > budget:
        raise corrupt(f"its arrays would inflate to {described:,} bytes from "
                      f"{archive_bytes:,} bytes of archive, more than {MAX_INFLATION} "
                      f"times its size (plus {INFLATION_ALLOWANCE:,} bytes)")


def _build(header, archive, n_components):
    """The ``FittedModel`` of a header and its checked arrays."""
    users = archive.get("user_embeddings", [np.float32], (None, n_components), finite=True)
    items = archive.get("item_embeddings", [np.float32], (None, n_components), finite=True)
    n_users, n_items = users.shape[0], items.shape[0]
    if n_users == 0 or n_items == 0:
        raise corrupt("it has no user or no item vectors")
    counts = archive.get("item_counts", [np.int64], (n_items,))
    if counts.size and counts.min() < 0:
        raise corrupt("its item counts are negative")
    attributes = _attributes(header, archive, n_users, n_items)
    seed, median, value_scales = _fold_in_state(header["state"])
    fitted_cold_start = header["state"].get("fitted_cold_start")
    content, encoder = _cold_start(archive, fitted_cold_start, n_items,
                                   attributes["n_item_features_in_"], n_components)
    user_items = None
    if header["training_matrix"]:
        user_items = archive.csr("user_items", (n_users, n_items))
        if not np.array_equal(np.bincount(user_items.indices, minlength=n_items), counts):
            raise corrupt("its item counts do not match its training matrix")
    history = History(
        n_iter=attributes["n_iter_"], loss_curve=attributes["loss_curve_"],
        feature_loss_curve=attributes.get("feature_loss_curve_") or [],
        validation_scores=attributes.get("validation_scores_") or [],
        best_epoch=attributes.get("best_epoch_"),
        resolved=attributes.get("resolved_params_") or {},
    )  # fmt: skip
    return FittedModel(
        user_embeddings=users, item_embeddings=items, item_counts=counts,
        user_items=user_items, seed=seed, median_user_count=median,
        value_scales=value_scales, history=history, user_ids=attributes.get("user_ids_"),
        item_ids=attributes.get("item_ids_"), item_names=attributes.get("feature_names_in_"),
        cold_start=fitted_cold_start, content=content, encoder=encoder,
    )  # fmt: skip


def _fold_in_state(state):
    """``(seed, median_user_count, value_scales)``: what fold-in reads from the
    training state."""
    seed, median = state.get("seed"), state.get("median_user_count")
    value_scales = state.get("value_scales")
    # The mean of each interaction_weight's f over the training values, which
    # new users' weights are divided by.
    if not (isinstance(value_scales, dict) and set(value_scales) == set(INTERACTION_WEIGHTS)
            and all(type(v) in (int, float) and 0 < v < np.inf for v in value_scales.values())):
        raise corrupt(f"its value scales {value_scales!r} are not a positive mean per "
                       f"interaction_weight ({sorted(INTERACTION_WEIGHTS)})")
    if not (type(seed) is int and 0 <= seed <= np.iinfo(np.int32).max):
        raise corrupt(f"its seed {seed!r} is not an int32")
    # At most the largest number of interactions a model can be fitted on.
    if not (type(median) in (int, float) and 0 < median <= np.iinfo(np.int32).max):
        raise corrupt(f"its median user count {median!r} is not a positive number")
    return seed, float(median), {name: float(v) for name, v in value_scales.items()}


def _cold_start(archive, fitted_cold_start, n_items, n_features, n_components):
    """``(ItemContent, Encoder)`` of a model fitted with item features, each
    None where the model has none."""
    if n_features is None:
        if fitted_cold_start is not None:
            raise corrupt("it has a cold start but no item features")
        return None, None
    if fitted_cold_start not in ("neighbors", "network"):
        raise corrupt(f"its cold start {fitted_cold_start!r} is unknown")
    encoder = None
    if fitted_cold_start == "network":
        encoder = _encoder(archive, n_features, n_components)
    return _content(archive, n_items, n_features), encoder


def _attributes(header, archive, n_users, n_items):
    """The generically stored fitted attributes, with those the model's checks
    rely on verified."""
    attributes = dict(header["attributes"])
    for name in list(attributes) + list(header["array_attributes"]):
        if name not in _ATTRIBUTES | set(_LENGTHS):
            raise corrupt(f"its attribute {name!r} is not a fitted attribute of this format")
    for name, description in header["array_attributes"].items():
        length = {"users": n_users, "items": n_items}.get(_LENGTHS.get(name))
        array = archive.get(f"attribute.{name}", "biufcU", (length,))
        if not isinstance(description, dict) or not isinstance(description.get("object"), bool):
            raise corrupt(f"its header describes attribute {name!r} as {description!r}")
        attributes[name] = array.astype(object) if description["object"] else array
        if name in _LENGTHS:
            _check_ids(array, name)
    missing = sorted(_REQUIRED - set(attributes))
    if missing:
        raise corrupt(f"its attributes {missing} are missing")
    # n_features_in_ bounds the item indices of every matrix given later.
    if attributes["n_features_in_"] != n_items:
        raise corrupt(f"its n_features_in_ {attributes['n_features_in_']!r} is not its "
                       f"number of item vectors, {n_items}")
    n_features = attributes["n_item_features_in_"]
    if n_features is not None and not (type(n_features) is int and n_features > 0):
        raise corrupt(f"its n_item_features_in_ {n_features!r} is not a positive int")
    _check_history(attributes)
    return attributes


def _check_ids(ids, name):
    """ValueError unless ``ids`` are ids as the InteractionEncoder makes them:
    none missing, none twice."""
    try:
        as_ids(ids, name)
    except ValueError as error:
        raise corrupt(f"its {name} are not valid ids ({error})") from error
    if IdLookup(ids).has_repeats():
        raise corrupt(f"its {name} repeats an id")


def _pipeline_encoder(header, archive, model, make_encoder):
    """The ``FittedEncoder`` of a pipeline file, checked; None for a model file."""
    if "pipeline" not in header:
        return None
    section = header["pipeline"]
    encoder = section.get("encoder") if isinstance(section, dict) else None
    steps = section.get("steps") if isinstance(section, dict) else None
    if not (isinstance(steps, list) and len(steps) == 2
            and all(isinstance(name, str) for name in steps)):
        raise corrupt(f"its pipeline's steps {steps!r} are not two names")
    if not (isinstance(encoder, dict) and isinstance(encoder.get("params"), dict)
            and isinstance(encoder.get("array_attributes"), dict)):
        raise corrupt("its pipeline's encoder has no parameters or no ids")
    try:
        make_encoder(encoder["params"])
    except (TypeError, ValueError) as error:
        raise corrupt(f"its encoder's parameters are not those of an InteractionEncoder "
                      f"({error})") from error
    described = encoder["array_attributes"]
    if set(described) != {"user_ids_", "item_ids_"}:
        raise corrupt(f"its encoder's fitted attributes {sorted(described)} are not "
                      "user_ids_ and item_ids_")
    ids = {}
    for name, description in described.items():
        if not isinstance(description, dict) or not isinstance(description.get("object"), bool):
            raise corrupt(f"its header describes the encoder's {name} as {description!r}")
        array = archive.get(f"{_ENCODER_IDS}{name}", "biufcU", (None,))
        ids[name] = array.astype(object) if description["object"] else array
        _check_ids(ids[name], f"encoder's {name}")
    if ids["user_ids_"].size == 0:
        raise corrupt("its encoder has no user ids")
    if model.item_ids is None or not _same_ids(ids["item_ids_"], model.item_ids):
        raise corrupt("its encoder's item ids are not its model's")
    return FittedEncoder(tuple(steps), encoder["params"], ids["user_ids_"], ids["item_ids_"])


def _check_history(attributes):
    """ValueError unless the history of training has the types it is read with."""
    if type(attributes["n_iter_"]) is not int or not isinstance(attributes["loss_curve_"],
                                                                 list):
        raise corrupt("its n_iter_ is not an int or its loss_curve_ not a list")
    for name in ("feature_loss_curve_", "validation_scores_"):
        value = attributes.get(name)
        if value is not None and not (isinstance(value, list) and all(
                type(number) in (int, float) for number in value)):
            raise corrupt(f"its {name} is not a list of numbers")
    best_epoch = attributes.get("best_epoch_")
    if best_epoch is not None and type(best_epoch) is not int:
        raise corrupt(f"its best_epoch_ {best_epoch!r} is not an int")
    resolved = attributes.get("resolved_params_")
    if resolved is not None and not (isinstance(resolved, dict) and all(
            type(value) in (bool, int, float, str) for value in resolved.values())):
        raise corrupt("its resolved_params_ is not a dict of numbers, flags and names")
    # Fold-in trains new users at the fitted temperature.
    temperature = (resolved or {}).get("temperature")
    if temperature is not None and not (type(temperature) in (int, float)
                                        and 0 < temperature < np.inf):
        raise corrupt(f"its resolved temperature {temperature!r} is not a positive number")
    # ... and with the fitted pool, whose size sets the solver's buffers.
    pool_size = (resolved or {}).get("pool_size")
    low, high = POOL_BOUNDS
    if pool_size is not None and not (type(pool_size) is int and low <= pool_size <= high):
        raise corrupt(f"its resolved pool_size {pool_size!r} is not an int from {low} to {high}")
    for name in ("user_ids_", "item_ids_"):
        if attributes.get(name) is not None and not isinstance(attributes[name], np.ndarray):
            raise corrupt(f"its {name} is not an array")


def _content(archive, n_items, n_features):
    """The ``ItemContent`` of cold start from features."""
    idf = archive.get("content.idf", [np.float32, np.float64], (n_features,), finite=True)
    trained = archive.get("content.trained", [np.bool_], (n_items,))
    data = archive.get("content.rows.data", [np.float32], (None,), finite=True)
    rows = archive.csr("content.rows", (n_items, n_features), data)
    tfidf = TfidfTransformer()
    tfidf.idf_ = idf
    tfidf.n_features_in_ = n_features
    return ItemContent(tfidf, rows, trained)


def _encoder(archive, n_features, n_components):
    """The feature MLP's weights."""
    w1 = archive.get("encoder.w1", [_ENCODER_DTYPE], (n_features, None), finite=True)
    n_hidden = w1.shape[1]
    return Encoder(
        w1,
        archive.get("encoder.b1", [_ENCODER_DTYPE], (n_hidden,), finite=True),
        archive.get("encoder.w2", [_ENCODER_DTYPE], (n_hidden, n_components), finite=True),
        archive.get("encoder.b2", [_ENCODER_DTYPE], (n_components,), finite=True),
    )
