"""Estimators on any data source: fit on Dask, files and chunk factories; lazy Dask predictions.

These functions hold what ``GaussianMixture.fit`` and ``KMeans.fit`` need to accept data
that is not an in-memory array. They run the estimator's own family in the one EM loop
(:func:`~latentmix.em.run_em`) with a start made of passes over the source
(:mod:`latentmix.em._init_scalable`), and set the same fitted attributes as ``fit``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from latentmix.em._dask import DaskData, is_dask_collection
from latentmix.em._data import DataSource
from latentmix.em._loop import EMFamily, _estep, run_em
from latentmix.em._stream import as_chunked_source

__all__ = [
    "as_source",
    "dask_predict",
    "dask_predict_proba",
    "dask_score_samples",
    "dask_transform",
    "fit_gaussian_mixture_on",
    "fit_kmeans_on",
    "is_out_of_core",
]


def is_out_of_core(X: Any) -> bool:
    """True for what ``fit`` should hand to :func:`as_source`: Dask, paths, chunk factories."""
    return (
        isinstance(X, DataSource)
        or is_dask_collection(X)
        or isinstance(X, str | os.PathLike)
        or (callable(X) and not hasattr(X, "__array__"))
    )


def as_source(
    X: Any,
    sample_weight: Any = None,
    *,
    columns: Any = None,
    weight_column: str | None = None,
    width: int = 1,
) -> DataSource:
    """The data source for ``X``: Dask collection, ``.npy``/Parquet path or chunk factory.

    A :class:`DataSource` is returned as it is (``sample_weight`` must then be None).
    """
    if isinstance(X, DataSource):
        if sample_weight is not None:
            raise ValueError("Give the weights to the DataSource itself, not as sample_weight.")
        return X
    if is_dask_collection(X):
        return DaskData(X, sample_weight)
    return as_chunked_source(
        X, sample_weight, columns=columns, weight_column=weight_column, width=width
    )


@dataclass(frozen=True)
class _Scan:
    """One validation pass: NaN and infinity counts, rows with at least one observed value."""

    n_nan: int
    n_inf: int
    n_observed: int

    def __add__(self, other: _Scan) -> _Scan:
        return _Scan(
            self.n_nan + other.n_nan, self.n_inf + other.n_inf, self.n_observed + other.n_observed
        )


def _scan_chunk(X: NDArray[Any], w: NDArray[np.float64] | None) -> _Scan:
    nan = np.isnan(X)
    observed = ~nan.all(axis=1)
    if w is not None:
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("sample_weight must be finite and non-negative.")
        observed &= w > 0
    return _Scan(int(nan.sum()), int(np.isinf(X).sum()), int(observed.sum()))


class _SourceFamily(EMFamily[Any, Any]):
    """An estimator's family with a start over any source, and a checkpoint after M-steps."""

    def __init__(
        self,
        inner: Any,
        initialize: Callable[[Any, DataSource, np.random.RandomState], Any],
        on_mstep: Callable[[Any, float], None] | None = None,
    ) -> None:
        self.inner = inner
        self._initialize = initialize
        self.on_mstep = on_mstep
        self.chunk_width = inner.chunk_width

    def initialize(self, data: DataSource, random_state: np.random.RandomState) -> Any:
        return self._initialize(self.inner, data, random_state)

    def estep_stats(self, X: NDArray[Any], w: NDArray[np.float64] | None, params: Any) -> Any:
        return self.inner.estep_stats(X, w, params)

    def mstep(self, stats: Any, params: Any) -> Any:
        new = self.inner.mstep(stats, params)
        if self.on_mstep is not None:
            self.on_mstep(new, self.inner.lower_bound(stats, params))
        return new

    def lower_bound(self, stats: Any, params: Any) -> float:
        return float(self.inner.lower_bound(stats, params))

    def converged(self, change: float, tol: float, old: Any, new: Any) -> bool:
        return bool(self.inner.converged(change, tol, old, new))

    def __getstate__(self) -> dict[str, Any]:
        # The tasks sent to Dask workers need only the E-step: leave the client-side hooks.
        state = self.__dict__.copy()
        state["on_mstep"] = None
        return state


def fit_gaussian_mixture_on(
    est: Any,
    data: DataSource,
    *,
    checkpoint: Callable[[Any], None] | None = None,
    checkpoint_every: int = 1,
) -> Any:
    """``GaussianMixture.fit`` on any data source (Dask, streamed files, chunk factories).

    The E-step runs where the chunks are (Dask workers, or worker threads over a stream)
    and only the statistics come back; the M-step runs here. The start is made of passes
    over the source (see :func:`latentmix.em._init_scalable.initialize_gaussian`); with
    ``weights_init``, ``means_init`` and ``precisions_init`` all given, the fit equals the
    in-memory fit up to the order of floating-point additions. Sample weights belong to
    the source; missing values (NaN) and ``fixed`` work as in memory. ``prior`` is not
    supported here yet (its default depends on data moments that need an extra pass).

    Parameters
    ----------
    est : GaussianMixture
        Its parameters configure the fit; the fitted attributes are set on it.
    data : DataSource
        For instance ``DaskData(X, w)`` or ``ChunkedData.from_parquet(path)``.
    checkpoint : callable, default=None
        Called as ``checkpoint(est)`` every ``checkpoint_every`` M-steps, with the fitted
        attributes of ``est`` set to the current parameters, so that it can be saved
        (``latentmix.save``). A fit interrupted after a checkpoint resumes from the saved
        model with ``warm_start=True``, along the same path as the undisturbed fit.
    checkpoint_every : int, default=1

    Returns
    -------
    est : GaussianMixture
    """
    from latentmix._param_validation import validate_params
    from latentmix.em._init_scalable import initialize_gaussian
    from latentmix.mixture._gaussian_mixture import _GaussianFamily

    validate_params(est, est._parameter_constraints)
    d = data.n_features
    if getattr(est, "prior", None) is not None:
        raise ValueError(
            "prior= is not supported for out-of-core or Dask data yet; fit with prior=None "
            "or on an in-memory array."
        )
    warm = bool(est.warm_start and hasattr(est, "converged_"))
    if warm and getattr(est, "n_features_in_", d) != d:
        raise ValueError(
            f"X has {d} features, but the model to warm-start was fitted with "
            f"{est.n_features_in_} features."
        )
    scan = data.reduce(_scan_chunk, width=1)
    if scan.n_inf:
        raise ValueError(
            f"Input X contains infinity in {scan.n_inf} entries. Mixture models need finite "
            "values: remove those rows or replace the values before fitting."
        )
    if scan.n_observed < est.n_components:
        raise ValueError(
            f"Expected n_samples >= n_components, but got {scan.n_observed} rows with an "
            f"observed value (and positive weight) and n_components={est.n_components}. Use "
            "fewer components or provide more samples."
        )
    est._check_initial_parameters(d)
    if hasattr(est, "_check_fixed"):
        est._check_fixed()
    inner = _GaussianFamily(est, d, missing=scan.n_nan > 0)
    trace: list[float] = []

    def on_mstep(params: Any, bound: float) -> None:
        trace.append(bound)
        if len(trace) % max(int(checkpoint_every), 1) == 0:
            assert checkpoint is not None
            est._set_params(params)
            est.converged_ = False
            est.n_iter_ = len(trace)
            est.lower_bound_ = float(bound)
            est.lower_bounds_ = list(trace)
            est.n_reseeded_ = int(inner.n_reseeded)
            est.n_features_in_ = d
            checkpoint(est)

    family = _SourceFamily(inner, initialize_gaussian, on_mstep if checkpoint else None)
    previous_reseeded = int(getattr(est, "n_reseeded_", 0)) if warm else 0
    result = run_em(family, data, **est._em_options(est._params() if warm else None))
    est._set_em_result(result)  # interrupted_ too, as the in-memory fit sets it
    est.n_reseeded_ = int(inner.n_reseeded + previous_reseeded)
    est.n_features_in_ = d
    if hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
    est.prior_ = None
    return est


def fit_kmeans_on(est: Any, data: DataSource) -> Any:
    """``KMeans.fit`` on any data source: k-means|| seeds, Lloyd iterations over the source.

    Seeds come from :func:`~latentmix.em._init_scalable.kmeans_parallel` (``init`` a string)
    or the given array. ``labels_`` is a lazy Dask array for Dask data and is not set for
    streamed data (it would grow with N; call ``predict`` chunk by chunk instead).
    """
    from latentmix._exceptions import ConvergenceWarning
    from latentmix._validation import check_random_state
    from latentmix.cluster._kmeans import KMeansParams, LloydFamily
    from latentmix.em._init_scalable import column_moments, kmeans_parallel

    d, k = data.n_features, int(est.n_clusters)
    if data.n_samples < k:
        raise ValueError(
            f"Expected n_samples >= n_clusters, but got n_samples={data.n_samples} and "
            f"n_clusters={k}."
        )
    scan = data.reduce(_scan_chunk, width=1)
    if scan.n_nan or scan.n_inf:
        raise ValueError(
            f"Input X contains {scan.n_nan} NaN and {scan.n_inf} infinite entries; KMeans "
            "needs finite values."
        )
    rs = check_random_state(est.random_state)
    shift, var = column_moments(data)
    tol = float(est.tol) * float(np.mean(var))
    family = LloydFamily(k, d, shift)
    init = est.init
    n_init = 1 if not isinstance(init, str) else (1 if est.n_init == "auto" else int(est.n_init))
    best: tuple[float, Any, int, bool] | None = None
    for _ in range(n_init):
        if isinstance(init, str):
            seeds = kmeans_parallel(data, k, rs)
        else:
            seeds = np.asarray(init, dtype=np.float64)
            if seeds.shape != (k, d):
                raise ValueError(f"init should have the shape ({k}, {d}), got {seeds.shape}.")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            result = run_em(
                family,
                data,
                n_init=1,
                max_iter=est.max_iter,
                tol=tol,
                random_state=rs,
                init_params=KMeansParams(seeds - shift),
                verbose=est.verbose,
                name="KMeans",
            )
        for wm in caught:
            if not issubclass(wm.category, ConvergenceWarning):  # pragma: no cover
                warnings.warn_explicit(wm.message, wm.category, wm.filename, wm.lineno)
        final = data.reduce(partial(_estep, family, result.params), width=family.chunk_width)
        if best is None or final.inertia < best[0]:
            best = (float(final.inertia), result.params, result.n_iter, result.converged)
    assert best is not None
    inertia, params, n_iter, converged = best
    if not converged:
        warnings.warn(
            f"KMeans did not converge after max_iter={est.max_iter} iterations "
            f"(tol={est.tol}). Increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=2,
        )
    est.cluster_centers_ = params.centers + shift
    est.n_features_in_ = d
    est.inertia_ = inertia
    est.n_iter_ = int(n_iter)
    est.n_reseeded_ = int(params.n_reseeded)
    if isinstance(data, DaskData):
        est.labels_ = dask_predict(est, data.X)
    elif hasattr(est, "labels_"):
        del est.labels_
    return est


# -- lazy predictions for Dask input ---------------------------------------------------------------


def _lazy_rows(est: Any, X: Any) -> Any:
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    import dask.array as da

    if not isinstance(X, da.Array):
        X = X.to_dask_array()  # row counts may stay unknown: the map is row-wise
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got a Dask array of shape {X.shape}.")
    if X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def _call(block: NDArray[Any], est: Any, method: str) -> NDArray[Any]:
    return np.asarray(getattr(est, method)(block))


def _out_dtype(X: Any) -> np.dtype[Any]:
    return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def dask_predict(est: Any, X: Any) -> Any:
    """Lazy ``est.predict`` of a Dask array or DataFrame: a Dask array of labels."""
    X = _lazy_rows(est, X)
    return X.map_blocks(
        _call, est, "predict", drop_axis=1, dtype=np.intp, meta=np.empty(0, np.intp)
    )


def dask_score_samples(est: Any, X: Any) -> Any:
    """Lazy ``est.score_samples``: a Dask array of log-densities, one per row."""
    X = _lazy_rows(est, X)
    dt = _out_dtype(X)
    return X.map_blocks(_call, est, "score_samples", drop_axis=1, dtype=dt, meta=np.empty(0, dt))


def dask_predict_proba(est: Any, X: Any) -> Any:
    """Lazy ``est.predict_proba``: a Dask array of shape (n_samples, n_components)."""
    X = _lazy_rows(est, X)
    k = int(est.weights_.shape[0])
    dt = _out_dtype(X)
    return X.map_blocks(
        _call, est, "predict_proba", chunks=(X.chunks[0], (k,)), dtype=dt, meta=np.empty((0, 0), dt)
    )


def dask_transform(est: Any, X: Any) -> Any:
    """Lazy ``KMeans.transform``: distances to the centers, (n_samples, n_clusters)."""
    X = _lazy_rows(est, X)
    k = int(est.cluster_centers_.shape[0])
    dt = _out_dtype(X)
    return X.map_blocks(
        _call, est, "transform", chunks=(X.chunks[0], (k,)), dtype=dt, meta=np.empty((0, 0), dt)
    )
