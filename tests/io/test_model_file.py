"""save/load round trips: every supported value comes back with the same type, dtype and bits."""

from __future__ import annotations

import math
import os
import struct
import sys
from pathlib import Path
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from latentmix.io import FORMAT_VERSION, MODEL_CLASSES, _model_file, load, read_metadata, save


class StandIn(BaseEstimator):
    """A scikit-learn-style estimator with every kind of fitted attribute a model can hold."""

    def __init__(
        self, n_components=2, *, means_init=None, tol=1e-3, name="stand-in", dims=(4, 2), extra=None
    ):
        self.n_components = n_components
        self.means_init = means_init
        self.tol = tol
        self.name = name
        self.dims = dims
        self.extra = extra

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        self.means_ = X[: self.n_components].copy()
        self.weights_ = np.full(self.n_components, 1 / self.n_components, dtype=np.float32)
        self.labels_ = np.arange(len(X), dtype=np.int64) % self.n_components
        self.converged_ = True
        self.n_iter_ = 7
        self.lower_bound_ = -1.25
        self.best_score_ = np.float64(-1.25)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.array([f"x{i}" for i in range(X.shape[1])], dtype=object)
        self.covariance_type_ = "full"
        self.init_params_ = None
        self.lower_bounds_ = [-3.0, -2.0, -1.25]
        self._private_cache = object()  # not a fitted attribute: never saved
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float64)
        return np.argmin(((X[:, None, :] - self.means_[None]) ** 2).sum(-1), axis=1)


class Hooked(BaseEstimator):
    """Keeps its state in a private dict, saved through the model-state hook (like the VAE)."""

    def __init__(self, hidden_dims=(8, 4), *, seed=0):
        self.hidden_dims = hidden_dims
        self.seed = seed

    def fit(self, X, y=None):
        rng = np.random.default_rng(self.seed)
        self._weights = {"enc.0.weight": rng.normal(size=(3, 2)).astype(np.float32)}
        self.history_ = [1.0, 0.5]
        self.module_ = object()  # not storable as an attribute: the hook handles it
        return self

    def _model_state(self):
        return {"history": self.history_, "note": ("a", 1)}, dict(self._weights)

    @classmethod
    def _from_model_state(cls, params, meta, arrays):
        model = cls(**params)
        model._weights = arrays
        model.history_ = meta["history"]
        model.module_ = meta["note"]
        return model


def _path_of(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@pytest.fixture(autouse=True)
def _allow_test_classes(monkeypatch):
    for cls in (StandIn, Hooked):
        monkeypatch.setitem(MODEL_CLASSES, cls.__name__, _path_of(cls))


def assert_identical(a: Any, b: Any, where: str = "value") -> None:
    """Same Python type, and for arrays the same dtype (with byte order), shape, layout, bits."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.dtype.str == b.dtype.str and a.shape == b.shape, where
        assert a.flags.f_contiguous == b.flags.f_contiguous, where
        assert b.flags.writeable, where
        if a.dtype == object:
            assert [type(x) for x in a.flat] == [type(x) for x in b.flat], where
            assert a.tolist() == b.tolist(), where
        else:
            assert a.tobytes(order="A") == b.tobytes(order="A"), where
    elif isinstance(a, np.generic):
        assert a.dtype.str == b.dtype.str and a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        # NaN payloads are not kept for Python floats (documented); everything else is.
        assert (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b), (
            where
        )
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    else:
        assert a == b, where


def assert_same_model(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert_identical(a.get_params(deep=False), b.get_params(deep=False), "params")
    public = sorted(k for k in vars(a) if k.endswith("_") and not k.startswith("_"))
    assert public == sorted(k for k in vars(b) if k.endswith("_") and not k.startswith("_"))
    for name in public:
        assert_identical(getattr(a, name), getattr(b, name), name)


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(20, 3))


def test_round_trip_keeps_every_parameter_and_fitted_attribute(tmp_path, X):
    means_init = np.asfortranarray(np.arange(6, dtype=">f8").reshape(3, 2))
    model = StandIn(
        3, means_init=means_init, tol=np.float32(0.5), dims=(4, [2, "a"]), extra={"k": None}
    )
    model.fit(X)
    model.empty_ = np.empty((0, 3), dtype=np.uint16)
    model.cube_ = np.zeros((2, 0, 2), dtype=np.complex64)
    model.zero_d_ = np.array(3.5)
    model.huge_ = 2**100
    model.special_ = [math.inf, -math.inf, -0.0, 5e-324]
    model.text_ = "ünïcode \ud800 surrogate"
    model.names_2d_ = np.array([["a", "b"], ["c", ""]], dtype=object)

    loaded = load(save(model, tmp_path / "model.lmx"))

    assert_same_model(model, loaded)
    assert not hasattr(loaded, "_private_cache")
    assert type(loaded.n_iter_) is int and type(loaded.lower_bound_) is float
    assert type(loaded.converged_) is bool and type(loaded.best_score_) is np.float64
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_save_accepts_str_and_pathlike_and_returns_the_path(tmp_path, X):
    model = StandIn().fit(X)
    as_str = save(model, str(tmp_path / "a.model"))  # the .lmx extension is not required
    assert as_str == tmp_path / "a.model" and isinstance(as_str, Path)

    class Fspath(os.PathLike):
        def __fspath__(self):
            return str(tmp_path / "b.lmx")

    assert save(model, Fspath()) == tmp_path / "b.lmx"
    assert_same_model(model, load(Fspath()))
    assert_same_model(model, load(str(as_str)))


def test_files_are_byte_for_byte_reproducible(tmp_path, X):
    model = StandIn().fit(X)
    first = save(model, tmp_path / "1.lmx").read_bytes()
    assert first == save(StandIn().fit(X), tmp_path / "2.lmx").read_bytes()


def test_save_replaces_an_existing_file(tmp_path, X):
    path = tmp_path / "model.lmx"
    save(StandIn(2).fit(X), path)
    save(StandIn(3).fit(X), path)
    assert load(path).n_components == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.lmx"]


def test_unfitted_model_is_saved_with_its_parameters_only(tmp_path):
    # Our choice: allowed, so that a configuration can be stored; the file says it.
    model = StandIn(4, means_init=np.ones((4, 2)))
    loaded = load(save(model, tmp_path / "unfitted.lmx"))
    assert_same_model(model, loaded)
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded)
    info = read_metadata(tmp_path / "unfitted.lmx")
    assert info["fitted"] is False and info["attributes"] == {}


def test_read_metadata_describes_without_building(tmp_path, X):
    path = save(StandIn(2, means_init=np.zeros((2, 3))).fit(X), tmp_path / "m.lmx")
    info = read_metadata(path)
    assert info["class"] == "StandIn" and info["fitted"] is True
    assert info["format_version"] == FORMAT_VERSION
    assert info["library_version"] == _model_file.__version__
    assert info["state"] == "attributes"
    assert info["params"]["n_components"] == 2 and info["params"]["dims"] == (4, 2)
    assert info["params"]["means_init"] == {"dtype": "float64", "shape": [2, 3]}
    assert info["attributes"]["means_"] == {"dtype": "float64", "shape": [2, 3]}
    assert info["attributes"]["feature_names_in_"] == ["x0", "x1", "x2"]
    assert info["attributes"]["best_score_"] == -1.25


@pytest.mark.parametrize(
    ("setup", "named"),
    [
        (lambda m: m.set_params(extra=np.random.RandomState(0)), "parameter 'extra'"),
        (lambda m: m.set_params(extra=[1, {2}]), "parameter 'extra'[1]"),
        (lambda m: m.set_params(extra={1: "a"}), "parameter 'extra'"),
        (lambda m: setattr(m, "bad_", np.array([1, "a"], dtype=object)), "fitted attribute 'bad_'"),
        (lambda m: setattr(m, "bad_", np.ma.masked_array([1.0])), "fitted attribute 'bad_'"),
        (lambda m: setattr(m, "bad_", np.zeros(2, dtype="M8[s]")), "fitted attribute 'bad_'"),
        (lambda m: setattr(m, "bad_", np.zeros(2, dtype=[("a", "f8")])), "fitted attribute 'bad_'"),
        (lambda m: setattr(m, "bad_", StandIn()), "fitted attribute 'bad_'"),
    ],
)
def test_unsupported_values_are_refused_at_save_time_and_nothing_is_written(
    tmp_path, X, setup, named
):
    path = tmp_path / "model.lmx"
    save(StandIn().fit(X), path)
    before = path.read_bytes()
    model = StandIn().fit(X)
    setup(model)
    with pytest.raises(TypeError, match=r"cannot save") as info:
        save(model, path)
    assert named in str(info.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.lmx"]


def test_classes_outside_the_allowlist_are_refused(tmp_path, X, monkeypatch):
    class Unlisted(StandIn):
        pass

    with pytest.raises(TypeError, match=r"model files support only"):
        save(Unlisted().fit(X), tmp_path / "m.lmx")
    # Same name as an allowed class, different class: refused too.
    monkeypatch.setitem(MODEL_CLASSES, "StandIn", "latentmix.mixture._gaussian_mixture:StandIn")
    with pytest.raises(TypeError, match=r"model files support only"):
        save(StandIn().fit(X), tmp_path / "m.lmx")
    assert not (tmp_path / "m.lmx").exists()


def test_allowlist_names_latentmix_classes_only():
    for name, target in MODEL_CLASSES.items():
        if name in ("StandIn", "Hooked"):
            continue
        module, _, qualname = target.partition(":")
        assert module.startswith("latentmix.") and qualname == name


def test_a_class_whose_module_is_missing_raises_import_error(tmp_path, X, monkeypatch):
    path = save(StandIn().fit(X), tmp_path / "m.lmx")
    monkeypatch.setitem(MODEL_CLASSES, "StandIn", "latentmix._no_such_module:StandIn")
    with pytest.raises(ImportError, match=r"needs latentmix._no_such_module"):
        load(path)


def test_model_state_hook_round_trip(tmp_path, X):
    model = Hooked((16, 8), seed=3).fit(X)
    loaded = load(save(model, tmp_path / "hooked.lmx"))
    assert loaded.get_params() == {"hidden_dims": (16, 8), "seed": 3}
    assert list(loaded._weights) == ["enc.0.weight"]
    assert_identical(model._weights["enc.0.weight"], loaded._weights["enc.0.weight"])
    assert loaded.history_ == [1.0, 0.5] and loaded.module_ == ("a", 1)
    info = read_metadata(tmp_path / "hooked.lmx")
    assert info["state"] == "model_state"
    assert info["attributes"] == {"enc.0.weight": {"dtype": "float32", "shape": [3, 2]}}


def test_model_state_hook_unfitted_uses_the_parameters(tmp_path):
    loaded = load(save(Hooked((2,)), tmp_path / "h.lmx"))
    assert loaded.hidden_dims == (2,) and not hasattr(loaded, "_weights")


def test_half_a_hook_is_refused(tmp_path, X):
    class HalfHooked(StandIn):
        def _model_state(self):
            return {}, {}

    with pytest.raises(TypeError, match=r"both _model_state and _from_model_state"):
        _model_file._has_state_hook(HalfHooked)


# ------------------------------------------------------------------ atomic writes


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_save_failing_midway_leaves_the_old_file_and_no_temporary(tmp_path, X, monkeypatch):
    path = save(StandIn(2).fit(X), tmp_path / "model.lmx")
    before = path.read_bytes()

    def write_half_then_fail(file, data):
        file.write(data[: len(data) // 2])
        raise OSError("simulated: disk full")

    monkeypatch.setattr(_model_file, "_write_all", write_half_then_fail)
    with pytest.raises(OSError, match=r"disk full"):
        save(StandIn(3).fit(X), path)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["model.lmx"]
    assert load(path).n_components == 2


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failing_fsync_or_rename_leaves_the_old_file(tmp_path, X, monkeypatch, failing):
    path = save(StandIn(2).fit(X), tmp_path / "model.lmx")
    before = path.read_bytes()

    def fail(*args):
        raise OSError(f"simulated {failing} failure")

    monkeypatch.setattr(_model_file.os, failing, fail)
    with pytest.raises(OSError, match=r"simulated"):
        save(StandIn(3).fit(X), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["model.lmx"]


def test_a_save_interrupted_before_any_previous_file_leaves_nothing(tmp_path, X, monkeypatch):
    def fail(file, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(_model_file, "_write_all", fail)
    with pytest.raises(KeyboardInterrupt):
        save(StandIn().fit(X), tmp_path / "new.lmx")
    assert _listing(tmp_path) == []


def test_saving_onto_a_directory_fails_and_cleans_up(tmp_path, X):
    (tmp_path / "dir.lmx").mkdir()
    with pytest.raises(OSError):
        save(StandIn().fit(X), tmp_path / "dir.lmx")
    assert _listing(tmp_path) == ["dir.lmx"]


# ------------------------------------------------------------------ property test

_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.byte_string_dtypes(max_len=3),
    hnp.unicode_string_dtypes(max_len=3),
)
_arrays = st.builds(
    lambda a, fortran: np.asfortranarray(a) if fortran else a,
    hnp.arrays(_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)),
    st.booleans(),
)
_numpy_scalars = hnp.arrays(_dtypes, ()).map(lambda a: a[()])
_str_arrays = st.lists(st.text(max_size=4), max_size=4).map(
    lambda v: np.array([*v, ""], dtype=object)[:-1]
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
    _arrays,
    _numpy_scalars,
    _str_arrays,
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
    ),
    max_leaves=6,
)
_names = st.from_regex(r"[a-z][a-z0-9]{0,6}_", fullmatch=True)


@given(param=_values, attributes=st.dictionaries(_names, _values, max_size=4))
def test_round_trip_is_exact_for_random_values(tmp_path_factory, param, attributes):
    model = StandIn(extra=param)
    for name, value in attributes.items():
        setattr(model, name, value)
    path = save(model, tmp_path_factory.mktemp("prop") / "m.lmx")
    assert_same_model(model, load(path))


# ------------------------------------------------------------------ real estimators


def _blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(-3, 1, size=(60, 2)), rng.normal(3, 0.5, size=(60, 2))])


@pytest.mark.parametrize(
    ("module", "name", "kwargs"),
    [
        # init_params="random" keeps this test independent of KMeans (used by the default init).
        (
            "latentmix.mixture._gaussian_mixture",
            "GaussianMixture",
            {"n_components": 2, "init_params": "random", "random_state": 0},
        ),
        ("latentmix.cluster._kmeans", "KMeans", {"n_clusters": 2, "random_state": 0}),
    ],
)
def test_real_estimators_round_trip(tmp_path, module, name, kwargs):
    cls = getattr(pytest.importorskip(module, exc_type=ModuleNotFoundError), name)
    X = _blobs()
    model = cls(**kwargs).fit(X)
    loaded = load(save(model, tmp_path / f"{name}.lmx"))
    assert_same_model(model, loaded)
    for method in ("predict", "predict_proba", "score_samples", "transform"):
        if hasattr(model, method):
            np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(model, method)(X))
    assert module in sys.modules
