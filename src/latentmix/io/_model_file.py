"""Safe model files: ``save(model, path)`` and ``load(path)``, without pickle.

A model file (recommended extension ``.lmx``) stores an estimator's constructor
parameters and fitted state as JSON metadata plus NumPy ``.npy`` arrays. Loading never
unpickles, never imports a module named by the file, and only instantiates classes from
:data:`MODEL_CLASSES`.

File format
-----------
**Frame** (the same in every format version). The file is a zip archive, members stored
uncompressed, whose archive comment is the 81 ASCII bytes ``latentmix-sha256:<hex>``:
the SHA-256 of every byte of the file before the comment (all members, their headers,
the central directory and the end-of-archive record). So a single flipped bit or a
truncation anywhere in the file fails the check, and the frame is verified before any
field is read, which lets a reader tell a corrupted file from a newer format.

**Members** (format version 1).

``metadata.json``
    A UTF-8 JSON object with the fields

    - ``"format"``: always ``"latentmix-model"``;
    - ``"format_version"``: an int, 1 here;
    - ``"library_version"``, ``"numpy_version"``: the versions that wrote the file;
    - ``"class"``: a key of :data:`MODEL_CLASSES`, e.g. ``"GaussianMixture"``;
    - ``"fitted"``: whether the model was fitted when saved;
    - ``"state"``: ``"attributes"`` (generic path) or ``"model_state"`` (hook path);
    - ``"params"``: ``get_params(deep=False)``, name to encoded value;
    - ``"attributes"`` (generic path): every fitted attribute, name to encoded value;
    - ``"model_state"`` and ``"model_state_arrays"`` (hook path, fitted only): the hook's
      metadata (encoded) and its arrays (name to ``{"$array": member}``).

``arrays/NNNN_<hint>.npy``
    One ``.npy`` file per array, referenced from the metadata by its member name; the
    ``<hint>`` (the parameter or attribute name) is for people only. Every member must
    be referenced exactly once.

**Value encoding.** ``None``, ``bool``, ``int``, ``str`` and finite ``float`` are plain
JSON; a ``list`` is a JSON array. Everything else is a one-key JSON object:
``{"$float": "nan" | "inf" | "-inf"}``, ``{"$tuple": [...]}``, ``{"$dict": {...}}``
(str keys), ``{"$array": member}`` for an ``ndarray`` of numeric, bool or fixed-width
string dtype (bits, dtype, byte order, shape and memory order are kept),
``{"$scalar": member}`` for a NumPy scalar (a 0-d member; ``np.float64`` stays
``np.float64``), and ``{"$str_array": {"shape": [...], "values": [...]}}`` for an object
array of ``str`` such as ``feature_names_in_`` (restored as an object array). Any other
value is refused at save time with a ``TypeError`` naming it. Round trips are exact:
Python ints stay ``int``, floats stay ``float`` (NaN payloads aside), bools stay ``bool``.

**Versioning rule.** ``format_version`` goes up by one whenever a reader of the previous
version could misread a new file (a changed field meaning, a new required field or
value tag). Adding a field that old readers may safely ignore does not change it. A
reader loads every version up to its own and refuses newer ones with a message saying
to upgrade latentmix. The frame above is never changed.

Saving
------
``save`` encodes everything first (so an unsupported value fails before the disk is
touched), writes a temporary file in the target's directory, flushes and fsyncs it, then
``os.replace``-s it over the target: a failed save leaves any previous file intact and
removes its temporary file. Files are byte-for-byte reproducible.

An **unfitted** model can be saved: the file then holds its parameters only
(``"fitted": false``), and ``load`` returns an unfitted estimator. A model counts as
fitted when ``vars(model)`` has a public name ending in ``_`` (scikit-learn's rule).

The generic path stores every such fitted attribute; private attributes (leading ``_``)
are not saved, so an estimator must keep what it needs after ``fit`` in public
trailing-underscore attributes, or use the hook.

The model-state hook
--------------------
A class whose state is not plain attributes (the VAE's torch weights) defines both::

    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        '''Return (metadata, arrays): JSON-able metadata, encoded like a parameter
        value, and named arrays of numeric or bool dtype (names are any str).'''

    @classmethod
    def _from_model_state(
        cls, params: dict[str, Any], meta: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> Self:
        '''Rebuild a fitted model from its get_params(deep=False), the metadata and the
        arrays returned by _model_state (same names, dtypes, shapes; writeable arrays).'''

``save`` calls ``_model_state`` only for a fitted model; an unfitted one is stored by its
parameters and loaded with ``cls(**params)`` as in the generic path.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from latentmix._exceptions import ModelFileError
from latentmix._version import __version__
from latentmix.io._codec import Decoder, Encoder
from latentmix.io._container import METADATA_MEMBER, pack, unpack

__all__ = ["FORMAT_VERSION", "MODEL_CLASSES", "ModelFileError", "load", "read_metadata", "save"]

logger = logging.getLogger(__name__)

FORMAT_NAME = "latentmix-model"
FORMAT_VERSION = 1

#: The only classes ``load`` instantiates: the name stored in a file -> "module:qualname".
#: Modules are imported lazily, when a file of that class is loaded.
MODEL_CLASSES: dict[str, str] = {
    "GaussianMixture": "latentmix.mixture._gaussian_mixture:GaussianMixture",
    "BayesianGaussianMixture": "latentmix.mixture._bayesian_mixture:BayesianGaussianMixture",
    "KMeans": "latentmix.cluster._kmeans:KMeans",
    "BernoulliMixture": "latentmix.mixture._bernoulli:BernoulliMixture",
    "VAE": "latentmix.vae._estimator:VAE",
    "ConditionalVAE": "latentmix.vae._estimator:ConditionalVAE",
}

_CHUNK = 1 << 20


# --------------------------------------------------------------------------- saving


def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save a latentmix estimator to a model file, atomically and without pickle.

    Parameters
    ----------
    model : estimator
        An instance of one of the classes in ``latentmix.io.MODEL_CLASSES``, fitted or
        not (an unfitted model is saved with its parameters only).
    path : str or os.PathLike
        Where to write. The extension ``.lmx`` is recommended, not required. An existing
        file is replaced only once the new one is completely on disk.

    Returns
    -------
    path : pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If the model's class is not supported, or a parameter or fitted attribute holds a
        value a model file cannot store (the message names it).

    See Also
    --------
    load : Read a model file back.
    read_metadata : Describe a model file without building the model.

    Examples
    --------
    >>> import numpy as np, latentmix
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> model = latentmix.GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> path = latentmix.save(model, "model.lmx")  # doctest: +SKIP
    >>> latentmix.load(path).predict(X[:3])  # doctest: +SKIP
    array([...])
    """
    path = Path(os.fspath(path))
    data = dumps(model)
    _write_atomically(path, data)
    logger.info("saved %s to %s (%d bytes)", type(model).__name__, path, len(data))
    return path


def dumps(model: Any, *, format_version: int = FORMAT_VERSION) -> bytes:
    """Return the bytes of the model file for ``model`` (what :func:`save` writes)."""
    class_name = _class_name(model)
    encoder = Encoder(class_name)
    if not callable(getattr(model, "get_params", None)):
        raise TypeError(f"cannot save {class_name}: it has no get_params() method")
    params = {
        name: encoder.encode(value, f"parameter {name!r}")
        for name, value in model.get_params(deep=False).items()
    }
    fitted_names = _fitted_attribute_names(model)
    metadata: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": format_version,
        "library_version": __version__,
        "numpy_version": np.__version__,
        "class": class_name,
        "fitted": bool(fitted_names),
        "state": "model_state" if _has_state_hook(type(model)) else "attributes",
        "params": params,
    }
    if metadata["state"] == "attributes":
        metadata["attributes"] = {
            name: encoder.encode(getattr(model, name), f"fitted attribute {name!r}")
            for name in fitted_names
        }
    elif fitted_names:
        meta, arrays = model._model_state()
        if type(meta) is not dict or type(arrays) is not dict:
            raise TypeError(f"{class_name}._model_state() must return (dict, dict)")
        metadata["model_state"] = encoder.encode(meta, "model state")["$dict"]
        metadata["model_state_arrays"] = {}
        for name, array in arrays.items():
            if type(name) is not str or type(array) is not np.ndarray or array.dtype == object:
                raise TypeError(
                    f"{class_name}._model_state() arrays must map str to numeric or bool "
                    f"ndarrays; got {name!r}: {type(array).__name__}"
                )
            metadata["model_state_arrays"][name] = encoder.encode(
                array, f"model state array {name!r}"
            )
    # ensure_ascii: lone surrogates in a str survive the trip through UTF-8.
    text = json.dumps(metadata, indent=1, allow_nan=False)
    return pack(text.encode("utf-8"), encoder.members)


def _class_name(model: Any) -> str:
    cls = type(model)
    name = cls.__name__
    if MODEL_CLASSES.get(name) != f"{cls.__module__}:{cls.__qualname__}":
        raise TypeError(
            f"cannot save a {cls.__module__}.{cls.__qualname__}: model files support only "
            f"{', '.join(MODEL_CLASSES)} (see latentmix.io.MODEL_CLASSES)"
        )
    return name


def _fitted_attribute_names(model: Any) -> list[str]:
    return [name for name in vars(model) if name.endswith("_") and not name.startswith("_")]


def _has_state_hook(cls: type) -> bool:
    has_save = callable(getattr(cls, "_model_state", None))
    has_load = callable(getattr(cls, "_from_model_state", None))
    if has_save != has_load:
        raise TypeError(
            f"{cls.__name__} must define both _model_state and _from_model_state, or neither"
        )
    return has_save


def _write_all(file: Any, data: bytes) -> None:
    """Write ``data`` to an open binary file (a seam for tests that simulate failures)."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        file.write(view[start : start + _CHUNK])


def _write_atomically(path: Path, data: bytes) -> None:
    # A random name in the same directory, so that os.replace is an atomic rename; created
    # with O_EXCL and mode 0o666 so that the final file gets the usual umask permissions.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            _write_all(file, data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) everywhere.
    if os.name != "posix":
        return
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# --------------------------------------------------------------------------- loading


def load(path: str | os.PathLike[str]) -> Any:
    """Load an estimator from a model file written by :func:`save`.

    Only classes listed in ``latentmix.io.MODEL_CLASSES`` are instantiated, arrays are
    read with ``allow_pickle=False``, and the whole file is checked against its SHA-256
    before anything in it is used.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.

    Returns
    -------
    model : estimator
        The estimator, with the saved parameters and, if it was fitted, every fitted
        attribute restored exactly (values, dtypes and Python types).

    Raises
    ------
    ModelFileError
        If the file is missing, a directory, empty, truncated, corrupted, not a latentmix
        model file, of a newer format than this latentmix reads, or of an unknown class.
        The message names the problem.
    ImportError
        If the model's class needs an optional dependency that is not installed.

    See Also
    --------
    save : Write a model file.
    read_metadata : Describe a model file without building the model.

    Examples
    --------
    >>> import latentmix
    >>> model = latentmix.load("model.lmx")  # doctest: +SKIP
    >>> labels = model.predict(X)  # doctest: +SKIP
    """
    path = Path(os.fspath(path))
    model = loads(_read(path), source=str(path))
    logger.info("loaded %s from %s", type(model).__name__, path)
    return model


def loads(data: bytes, *, source: str = "model file") -> Any:
    """Build the estimator from the bytes of a model file (what :func:`load` reads)."""
    metadata, decoder = _open(data, source)
    name = metadata["class"]
    cls = _import_class(name, source)
    params = _decode_mapping(decoder, metadata.get("params"), "params", "parameter")
    attributes: dict[str, Any] = {}
    state: tuple[Any, dict[str, np.ndarray]] | None = None
    if metadata["state"] == "attributes":
        attributes = _decode_mapping(
            decoder, metadata.get("attributes", {}), "attributes", "fitted attribute"
        )
    elif metadata["fitted"]:
        meta = _decode_mapping(decoder, metadata.get("model_state"), "model_state", "model state")
        arrays = _decode_mapping(
            decoder, metadata.get("model_state_arrays"), "model_state_arrays", "array"
        )
        if not all(type(a) is np.ndarray for a in arrays.values()):
            raise ModelFileError(f"{source}: model_state_arrays must hold arrays only")
        state = (meta, arrays)
    decoder.check_all_used()

    if state is not None:
        if not _has_state_hook(cls):
            raise ModelFileError(
                f"{source}: {name} in this latentmix version does not read model state"
            )
        return cls._from_model_state(params, *state)
    try:
        model = cls(**params)
    except TypeError as exc:
        raise ModelFileError(
            f"{source}: the saved parameters do not fit {name} in latentmix {__version__} "
            f"(file written by latentmix {metadata['library_version']}): {exc}"
        ) from exc
    for attribute, value in attributes.items():
        setattr(model, attribute, value)
    return model


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe a model file without importing or building the model.

    The file is fully checked (checksum, format version, structure) first.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.

    Returns
    -------
    info : dict
        ``"class"``, ``"format_version"``, ``"library_version"``, ``"numpy_version"``,
        ``"fitted"``, ``"state"``, ``"params"`` (name to value) and ``"attributes"``
        (fitted attribute, or model-state array, name to value). For display, an array
        is shown as ``{"dtype": str, "shape": list}``, a NumPy scalar as its Python
        value, and an object array of str as a list; use :func:`load` for exact values.

    Raises
    ------
    ModelFileError
        For the same reasons as :func:`load`, except an unknown class (which is reported
        under ``"class"``).

    Examples
    --------
    >>> from latentmix.io import read_metadata
    >>> info = read_metadata("model.lmx")  # doctest: +SKIP
    >>> info["class"], info["attributes"]["means_"]  # doctest: +SKIP
    ('GaussianMixture', {'dtype': 'float64', 'shape': [3, 2]})
    """
    path = Path(os.fspath(path))
    source = str(path)
    metadata, decoder = _open(_read(path), source)
    params = _decode_mapping(decoder, metadata.get("params"), "params", "parameter")
    if metadata["state"] == "attributes":
        attributes = _decode_mapping(
            decoder, metadata.get("attributes", {}), "attributes", "fitted attribute"
        )
    elif metadata["fitted"]:
        _decode_mapping(decoder, metadata.get("model_state"), "model_state", "model state")
        attributes = _decode_mapping(
            decoder, metadata.get("model_state_arrays"), "model_state_arrays", "array"
        )
    else:
        attributes = {}
    decoder.check_all_used()
    return {
        "class": metadata["class"],
        "format_version": metadata["format_version"],
        "library_version": metadata["library_version"],
        "numpy_version": metadata.get("numpy_version"),
        "fitted": metadata["fitted"],
        "state": metadata["state"],
        "params": {name: _describe(value) for name, value in params.items()},
        "attributes": {name: _describe(value) for name, value in attributes.items()},
    }


def _read(path: Path) -> bytes:
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file")
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelFileError(f"no model file at {path}: the file does not exist") from exc


def _open(data: bytes, source: str) -> tuple[dict[str, Any], Decoder]:
    """Check the frame, parse and validate the metadata header; return it and a decoder."""
    raw, members = unpack(data, source)
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(f"{source}: {METADATA_MEMBER} is not valid JSON: {exc}") from exc
    if type(metadata) is not dict or metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{source} is not a latentmix model file (no 'format': {FORMAT_NAME!r})"
        )
    version = metadata.get("format_version")
    library_version = metadata.get("library_version")
    if type(version) is not int or version < 1 or type(library_version) is not str:
        raise ModelFileError(f"{source}: 'format_version' or 'library_version' is malformed")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{source} was written by latentmix {library_version} with format {version}; this "
            f"is format {FORMAT_VERSION} (latentmix {__version__}): upgrade latentmix to load it"
        )
    if (
        type(metadata.get("class")) is not str
        or type(metadata.get("fitted")) is not bool
        or metadata.get("state") not in ("attributes", "model_state")
    ):
        raise ModelFileError(f"{source}: 'class', 'fitted' or 'state' is malformed")
    return metadata, Decoder(members, source)


def _decode_mapping(decoder: Decoder, data: Any, field: str, label: str) -> dict[str, Any]:
    if type(data) is not dict:
        raise ModelFileError(f"{decoder.source}: {field!r} is missing or malformed")
    return {name: decoder.decode(value, f"{label} {name!r}") for name, value in data.items()}


def _import_class(name: str, source: str) -> type[Any]:
    target = MODEL_CLASSES.get(name)
    if target is None:
        raise ModelFileError(
            f"{source} holds a model of unknown class {name!r}; this latentmix ({__version__}) "
            f"loads {', '.join(MODEL_CLASSES)}"
        )
    module_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"loading a {name} model needs {module_name}, which cannot be imported: {exc} "
            "(is the matching latentmix extra, e.g. latentmix[vae], installed?)"
        ) from exc
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise TypeError(f"MODEL_CLASSES[{name!r}] = {target!r} is not a class")
    return obj


def _describe(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return value.tolist()
        return {"dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return type(value)(_describe(item) for item in value)
    if isinstance(value, dict):
        return {key: _describe(item) for key, item in value.items()}
    return value
