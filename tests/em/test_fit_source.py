"""Estimator-level: GaussianMixture and KMeans on Dask and streamed data, lazy predictions,
and resuming an interrupted fit from its last checkpoint."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from _common import D, K, blobs, estimator

import latentmix
from latentmix.cluster import KMeans
from latentmix.em._dask import DaskData
from latentmix.em._fit_source import (
    as_source,
    dask_predict,
    dask_predict_proba,
    dask_score_samples,
    dask_transform,
    fit_gaussian_mixture_on,
    fit_kmeans_on,
    is_out_of_core,
)
from latentmix.em._stream import ChunkedData


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return blobs(3000)


def _assert_same_estimator(a, b, rtol):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, err_msg=name)
    assert a.n_iter_ == b.n_iter_ and a.converged_ == b.converged_
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=rtol)


@pytest.mark.parametrize(
    "options",
    [{}, {"fixed": ("means",)}, {"covariance_type": "diag", "fixed": ("weights",)}],
    ids=["free", "fixed-means", "diag-fixed-weights"],
)
def test_gaussian_mixture_on_dask_equals_fit(data, options):
    X, w = data
    X = X.copy()
    X[np.random.RandomState(3).rand(*X.shape) < 0.03] = np.nan  # missing values too
    expected = estimator(**options).fit(X, sample_weight=w)
    got = fit_gaussian_mixture_on(
        estimator(**options), DaskData(da.from_array(X, chunks=(700, D)), w)
    )
    _assert_same_estimator(got, expected, rtol=1e-10)
    # The out-of-core fit sets every fitted attribute the in-memory one does.
    assert got.interrupted_ is expected.interrupted_ is False


def test_lazy_predictions_equal_in_memory(data):
    X, _ = data
    gm = estimator().fit(X)
    Xd = da.from_array(X, chunks=(1000, D))
    labels = dask_predict(gm, Xd)
    assert isinstance(labels, da.Array)  # nothing computed yet
    np.testing.assert_array_equal(labels.compute(), gm.predict(X))
    np.testing.assert_allclose(dask_predict_proba(gm, Xd).compute(), gm.predict_proba(X))
    np.testing.assert_allclose(dask_score_samples(gm, Xd).compute(), gm.score_samples(X))
    with pytest.raises(ValueError, match="expecting 3 features"):
        dask_predict(gm, Xd[:, :2])


def test_kmeans_on_dask_equals_fit(data):
    X, w = data
    init = X[[0, 1, 2]]
    expected = KMeans(K, init=init, n_init=1).fit(X, sample_weight=w)
    got = fit_kmeans_on(
        KMeans(K, init=init, n_init=1), DaskData(da.from_array(X, chunks=(700, D)), w)
    )
    np.testing.assert_allclose(got.cluster_centers_, expected.cluster_centers_, rtol=1e-10)
    assert got.inertia_ == pytest.approx(expected.inertia_, rel=1e-10)
    assert got.n_iter_ == expected.n_iter_
    np.testing.assert_array_equal(got.labels_.compute(), expected.labels_)
    Xd = da.from_array(X, chunks=(700, D))
    np.testing.assert_allclose(dask_transform(got, Xd).compute(), expected.transform(X))


def test_kmeans_seeded_by_kmeans_parallel(data):
    X, _ = data
    source = ChunkedData.from_chunks(lambda: (X[i : i + 500] for i in range(0, len(X), 500)))
    km = fit_kmeans_on(KMeans(K, random_state=0), source)
    reference = KMeans(K, random_state=0).fit(X)
    assert km.inertia_ == pytest.approx(reference.inertia_, rel=1e-6)
    assert not hasattr(km, "labels_")  # would grow with N for streamed data


def test_as_source(tmp_path, data):
    X, w = data
    np.save(tmp_path / "X.npy", X)
    assert isinstance(as_source(tmp_path / "X.npy", w), ChunkedData)
    assert isinstance(as_source(da.from_array(X)), DaskData)
    assert is_out_of_core(str(tmp_path / "X.npy")) and not is_out_of_core(X)
    with pytest.raises(ValueError, match="Cannot tell how to read"):
        as_source(tmp_path / "X.csv")


class _Interrupted(Exception):
    pass


def test_interrupted_fit_resumes_with_warm_start(tmp_path, data):
    X, w = data
    source = ChunkedData.from_npy(_save(tmp_path, X), w, chunk_size=500)
    undisturbed = fit_gaussian_mixture_on(estimator(tol=1e-10), source)
    assert undisturbed.n_iter_ > 6

    path = tmp_path / "checkpoint.lmx"

    def save_then_fail(est):
        latentmix.save(est, path)
        if est.n_iter_ == 5:
            raise _Interrupted  # the client dies after its 5th checkpoint

    with pytest.raises(_Interrupted):
        fit_gaussian_mixture_on(estimator(tol=1e-10), source, checkpoint=save_then_fail)
    resumed = latentmix.load(path)
    resumed.set_params(warm_start=True)
    fit_gaussian_mixture_on(resumed, source)
    assert resumed.n_iter_ == undisturbed.n_iter_ - 5
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(undisturbed, name))


def _save(tmp_path, X):
    path = tmp_path / "X.npy"
    np.save(path, X)
    return path
