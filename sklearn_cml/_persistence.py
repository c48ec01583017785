"""Saving a fitted CMLRecommender to one file, and loading it back safely.

A model file is a numpy ``.npz`` archive (a zip of ``.npy`` arrays) that
holds what the fitted model answers with: the user and item vectors, the
items' training counts (fold-in samples negatives by them), the content
model of item features (TF-IDF weights and rows, the feature MLP), the
fitted attributes, and optionally the training matrix (which
``recommend(filter_seen=True)`` reads).  A JSON header, itself an array of
UTF-8 bytes, names the format and its version, the package version, the
constructor parameters and every array with its dtype and shape.

Not saved: the optimiser state (AdaGrad sums, the SGD vectors behind the
averaged ones, random streams), so a loaded model answers exactly as the
saved one did but cannot continue training (``partial_fit``).  Pickle keeps
everything.

Loading never runs code from the file (``allow_pickle=False``: an object
array is refused), and checks every array before the model is built: its
dtype, its shape against the others, finite values, and every index that a
Numba kernel will read (the CSR structures).  A file that fails a check
raises ValueError and no model is made.
"""

import json
import zipfile
import zlib

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer

from ._content import ItemContent
from ._engine import TrainingState
from ._estimator import CMLRecommender
from ._features import Encoder
from ._ids import IdLookup
from ._sparse_checks import check_csr_arrays
from ._weights import INTERACTION_WEIGHTS

FORMAT = "sklearn-cml model"
FORMAT_VERSION = 1
_HEADER = "header"

# Fitted attributes stored by their own rules below; every other public
# attribute (ending in "_") is stored generically: JSON values in the header,
# 1-d arrays in the archive.
_STRUCTURED = {"user_embeddings_", "item_embeddings_", "user_items_", "feature_encoder_",
               "feature_idf_"}
_PRIVATE = {"_state", "_content", "_item_counts", "_fitted_parameters", "_fitted_cold_start"}
# Private caches, rebuilt on first use: not stored.
_CACHES = {"_id_lookups", "_search_index"}
# Generic 1-d arrays whose length is known: one entry per user or per item.
_LENGTHS = {"user_ids_": "users", "item_ids_": "items", "feature_names_in_": "items"}
# Fitted attributes that the estimator's methods read.
_REQUIRED = {"n_features_in_", "n_item_features_in_", "n_iter_", "loss_curve_"}
_ENCODER_DTYPE = np.dtype(np.float32)
_INDPTR, _INDICES = np.dtype(np.int64), np.dtype(np.int32)


def save_model(model, file, *, include_training_matrix=False, compress=False):
    """Write a fitted ``CMLRecommender`` to ``file``: see ``CMLRecommender.save``."""
    from . import __version__

    model._check_fitted()
    arrays, attributes, generic = {}, {}, {}
    arrays["user_embeddings"] = model.user_embeddings_
    arrays["item_embeddings"] = model.item_embeddings_
    arrays["item_counts"] = model._item_counts.astype(np.int64, copy=False)
    if include_training_matrix:
        if model.user_items_ is None:
            raise ValueError(
                "This model has no training matrix to save: it was loaded from a file "
                "saved without it. Save it with include_training_matrix=False."
            )
        arrays.update(_csr_arrays("user_items", model.user_items_))
    content = model._content
    if content is not None:
        arrays["content.idf"] = content.tfidf.idf_
        arrays["content.trained"] = content.trained
        arrays.update(_csr_arrays("content.rows", content.rows))
        arrays["content.rows.data"] = content.rows.data
    encoder = model._state.encoder
    if encoder is not None:
        arrays.update({f"encoder.{name}": array for name, array in encoder._asdict().items()})
    for name, value in vars(model).items():
        if name in model._parameter_constraints or name in _STRUCTURED | _PRIVATE | _CACHES:
            continue
        if name.startswith("_"):
            raise ValueError(
                f"CMLRecommender has a private attribute {name!r} that the model file "
                "format does not know: add it to sklearn_cml._persistence."
            )
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
                   for name, value in model.get_params(deep=False).items()},
        "attributes": attributes,
        "array_attributes": generic,
        "state": {"seed": model._state.seed,
                  "median_user_count": model._state.median_user_count,
                  "value_scales": model._state.value_scales,
                  "fitted_cold_start": model._fitted_cold_start},
        "training_matrix": bool(include_training_matrix),
        "arrays": {name: {"dtype": array.dtype.str, "shape": list(array.shape)}
                   for name, array in arrays.items()},
    }
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    write = np.savez_compressed if compress else np.savez
    if hasattr(file, "write"):
        write(file, **arrays)
    else:  # opened here, so that numpy does not append ".npz" to the name
        with open(file, "wb") as stream:
            write(stream, **arrays)


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
            raise _corrupt(f"its array {name!r} is missing")
        array = _read_member(self.npz, name)
        description = self.described[name]
        if array.dtype.str != description["dtype"] or list(array.shape) != description["shape"]:
            raise _corrupt(f"its array {name!r} is {array.dtype.str} of shape {array.shape}, "
                           f"but its header says {description}")
        allowed = (array.dtype.kind in dtypes if isinstance(dtypes, str)
                   else array.dtype in [np.dtype(dtype) for dtype in dtypes])
        if not allowed:
            raise _corrupt(f"its array {name!r} has dtype {array.dtype}, not one of {dtypes}")
        if len(array.shape) != len(shape) or any(
                want is not None and have != want for have, want in zip(array.shape, shape)):
            expected = tuple("any" if want is None else want for want in shape)
            raise _corrupt(f"its array {name!r} has shape {array.shape}, not {expected}")
        if finite and not np.isfinite(array).all():
            raise _corrupt(f"its array {name!r} holds NaN or infinity")
        return np.ascontiguousarray(array)

    def csr(self, prefix, shape, data=None):
        """The CSR matrix of ``prefix``'s index arrays, every index checked.

        Without ``data`` it is an interaction matrix: ones, each row sorted
        and without repeats, as ``fit`` makes it.
        """
        indptr = self.get(f"{prefix}.indptr", [_INDPTR], (shape[0] + 1,))
        indices = self.get(f"{prefix}.indices", [_INDICES], (None,))
        if data is not None and data.shape != indices.shape:
            raise _corrupt(f"{prefix} has {indices.shape[0]} indices but {data.shape[0]} "
                           "values")
        problem = check_csr_arrays(indptr, indices, shape[1], canonical=data is None)
        if problem:
            raise _corrupt(f"{prefix} is not a valid sparse matrix: {problem}")
        if data is None:
            data = np.ones(indices.shape[0], dtype=np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=shape)


def _read_member(npz, name):
    """One array of the archive; ValueError if it cannot be read without pickle."""
    try:
        return npz[name]
    except ValueError as error:  # among others, object arrays with allow_pickle=False
        raise _corrupt(f"its array {name!r} cannot be read without pickle ({error})") \
            from error
    except (OSError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error) as error:
        # MemoryError: a damaged .npy header claiming a huge shape.
        raise _corrupt(f"its array {name!r} cannot be read ({error!r})") from error


def _corrupt(problem):
    return ValueError(f"This is not a valid sklearn-cml model file: {problem}. The file is "
                      "damaged or was not written by CMLRecommender.save.")


def load_model(file):
    """Read a model written by ``CMLRecommender.save``.

    Parameters
    ----------
    file : str, path-like or binary file object
        The model file.

    Returns
    -------
    model : CMLRecommender
        The fitted model, answering every query exactly as the saved model
        did.

    Raises
    ------
    ValueError
        If the file is not a model file, was written by a newer version of
        the format, or fails any check of its arrays.

    Examples
    --------
    >>> import io
    >>> from sklearn_cml import CMLRecommender, load_model
    >>> from sklearn_cml.datasets import make_interactions
    >>> X = make_interactions(n_users=100, n_items=60, random_state=0)
    >>> model = CMLRecommender(n_components=8, n_epochs=3, random_state=0).fit(X)
    >>> file = io.BytesIO()
    >>> model.save(file)
    >>> loaded = load_model(io.BytesIO(file.getvalue()))
    >>> bool((loaded.recommend([0, 1], filter_seen=False)
    ...       == model.recommend([0, 1], filter_seen=False)).all())
    True
    """
    try:
        npz = np.load(file, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _corrupt(f"numpy cannot open it as an .npz archive ({error})") from error
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _corrupt("it holds a single array, not an .npz archive")
    with npz:
        header = _read_header(npz)
        archive = _Archive(npz, header["arrays"])
        model = _build(header, archive)
        unread = set(npz.files) - archive.read - {_HEADER}
        if unread:
            raise _corrupt(f"it holds arrays this format does not have: {sorted(unread)}")
    return model


def _read_header(npz):
    """The JSON header, with its format and version checked."""
    if _HEADER not in npz.files:
        raise _corrupt("it has no header")
    raw = _read_member(npz, _HEADER)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _corrupt("its header is not an array of bytes")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise _corrupt(f"its header is not JSON ({error})") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _corrupt("its header does not name the sklearn-cml model format")
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
        raise _corrupt(f"its format version {version!r} is unknown")


def _check_layout(header, npz):
    """ValueError unless the header has its sections and describes arrays
    that the archive holds."""
    expected = {"params": dict, "attributes": dict, "array_attributes": dict, "state": dict,
                "arrays": dict, "training_matrix": bool, "estimator": str}
    for key, kind in expected.items():
        if not isinstance(header.get(key), kind):
            raise _corrupt(f"its header's {key!r} is missing or not a {kind.__name__}")
    if header["estimator"] != "CMLRecommender":
        raise _corrupt(f"it holds a {header['estimator']!r}, not a CMLRecommender")
    missing = sorted(set(header["arrays"]) - set(npz.files))
    if missing:
        raise _corrupt(f"its arrays {missing} are missing")
    for name, description in header["arrays"].items():
        if not (isinstance(description, dict) and isinstance(description.get("dtype"), str)
                and isinstance(description.get("shape"), list)):
            raise _corrupt(f"its header describes array {name!r} as {description!r}")


def _build(header, archive):
    """The fitted model of a header and its checked arrays."""
    model = _estimator(header["params"])
    n_components = model.n_components
    users = archive.get("user_embeddings", [np.float32], (None, n_components), finite=True)
    items = archive.get("item_embeddings", [np.float32], (None, n_components), finite=True)
    n_users, n_items = users.shape[0], items.shape[0]
    if n_users == 0 or n_items == 0:
        raise _corrupt("it has no user or no item vectors")
    counts = archive.get("item_counts", [np.int64], (n_items,))
    if counts.size and counts.min() < 0:
        raise _corrupt("its item counts are negative")
    attributes = _attributes(header, archive, n_users, n_items)
    seed, median, value_scales = _fold_in_state(header["state"])
    fitted_cold_start = header["state"].get("fitted_cold_start")
    content, encoder = _cold_start(archive, fitted_cold_start, n_items,
                                   attributes["n_item_features_in_"], n_components)
    user_items = None
    if header["training_matrix"]:
        user_items = archive.csr("user_items", (n_users, n_items))
        if not np.array_equal(np.bincount(user_items.indices, minlength=n_items), counts):
            raise _corrupt("its item counts do not match its training matrix")

    for name, value in attributes.items():
        setattr(model, name, value)
    model.user_embeddings_, model.item_embeddings_ = users, items
    model.user_items_ = user_items
    model._item_counts = counts
    model._content = content
    model._fitted_cold_start = fitted_cold_start
    model.feature_idf_ = None if content is None else content.tfidf.idf_
    model.feature_encoder_ = None if encoder is None else encoder._asdict()
    # The state of a model that answers queries: its vectors are the
    # published ones, and there is nothing to resume training from.
    model._state = TrainingState(
        user_embeddings=users, item_embeddings=items, user_grad_sq=None, item_grad_sq=None,
        rng_states=None, feature_rng_states=None, seed=seed, median_user_count=median,
        encoder=encoder, n_iter=model.n_iter_, loss_curve=model.loss_curve_,
        value_scales=value_scales,
    )
    model._fitted_parameters = model._parameter_values()
    try:
        model._check_fitted()
    except ValueError as error:
        raise _corrupt(f"its parameters do not fit its arrays ({error})") from error
    return model


def _fold_in_state(state):
    """``(seed, median_user_count, value_scales)``: what fold-in reads from the
    training state."""
    seed, median = state.get("seed"), state.get("median_user_count")
    value_scales = state.get("value_scales")
    # The mean of each interaction_weight's f over the training values, which
    # new users' weights are divided by.
    if not (isinstance(value_scales, dict) and set(value_scales) == set(INTERACTION_WEIGHTS)
            and all(type(v) in (int, float) and 0 < v < np.inf for v in value_scales.values())):
        raise _corrupt(f"its value scales {value_scales!r} are not a positive mean per "
                       f"interaction_weight ({sorted(INTERACTION_WEIGHTS)})")
    if not (type(seed) is int and 0 <= seed <= np.iinfo(np.int32).max):
        raise _corrupt(f"its seed {seed!r} is not an int32")
    # At most the largest number of interactions a model can be fitted on.
    if not (type(median) in (int, float) and 0 < median <= np.iinfo(np.int32).max):
        raise _corrupt(f"its median user count {median!r} is not a positive number")
    return seed, float(median), {name: float(v) for name, v in value_scales.items()}


def _cold_start(archive, fitted_cold_start, n_items, n_features, n_components):
    """``(ItemContent, Encoder)`` of a model fitted with item features, each
    None where the model has none."""
    if n_features is None:
        if fitted_cold_start is not None:
            raise _corrupt("it has a cold start but no item features")
        return None, None
    if fitted_cold_start not in ("neighbors", "network"):
        raise _corrupt(f"its cold start {fitted_cold_start!r} is unknown")
    encoder = None
    if fitted_cold_start == "network":
        encoder = _encoder(archive, n_features, n_components)
    return _content(archive, n_items, n_features), encoder


def _estimator(params):
    """A CMLRecommender of validated parameters."""
    try:
        model = CMLRecommender(**params)
        model._validate_params()
    except (TypeError, ValueError) as error:
        raise _corrupt(f"its parameters are not those of a CMLRecommender ({error})") \
            from error
    return model


def _attributes(header, archive, n_users, n_items):
    """The generically stored fitted attributes, with those the model's checks
    rely on verified."""
    attributes = dict(header["attributes"])
    for name in list(attributes) + list(header["array_attributes"]):
        if not (name.endswith("_") and name.isidentifier() and not name.startswith("_")
                and name not in _STRUCTURED):
            raise _corrupt(f"its attribute {name!r} is not a fitted attribute")
    for name, description in header["array_attributes"].items():
        length = {"users": n_users, "items": n_items}.get(_LENGTHS.get(name))
        array = archive.get(f"attribute.{name}", "biufcU", (length,))
        if not isinstance(description, dict) or not isinstance(description.get("object"), bool):
            raise _corrupt(f"its header describes attribute {name!r} as {description!r}")
        attributes[name] = array.astype(object) if description["object"] else array
        if name in _LENGTHS and IdLookup(array).has_repeats():
            raise _corrupt(f"its {name} repeats an id")
    missing = sorted(_REQUIRED - set(attributes))
    if missing:
        raise _corrupt(f"its attributes {missing} are missing")
    # n_features_in_ bounds the item indices of every matrix given later.
    if attributes["n_features_in_"] != n_items:
        raise _corrupt(f"its n_features_in_ {attributes['n_features_in_']!r} is not its "
                       f"number of item vectors, {n_items}")
    n_features = attributes["n_item_features_in_"]
    if n_features is not None and not (type(n_features) is int and n_features > 0):
        raise _corrupt(f"its n_item_features_in_ {n_features!r} is not a positive int")
    if type(attributes["n_iter_"]) is not int or not isinstance(attributes["loss_curve_"],
                                                                 list):
        raise _corrupt("its n_iter_ is not an int or its loss_curve_ not a list")
    return attributes


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
