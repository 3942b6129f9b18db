"""DaskData: a fit on a Dask array equals the in-memory fit (the parallel path is the serial one)."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from _common import D, assert_same_fit, blobs, run

from latentmix.em._dask import DaskData, is_dask_collection
from latentmix.em._data import ArrayData

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return blobs()


@pytest.fixture(scope="module")
def reference(data: tuple[np.ndarray, np.ndarray]) -> dict[tuple[str, bool], object]:
    X, w = data
    return {
        (ct, weighted): run(ArrayData(X, w if weighted else None), ct)
        for ct in COVARIANCE_TYPES
        for weighted in (False, True)
    }


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("block_rows", [517, 1250, 5000])
def test_dask_fit_equals_in_memory(data, reference, covariance_type, weighted, block_rows):
    X, w = data
    Xd = da.from_array(X, chunks=(block_rows, D))
    wd = da.from_array(w, chunks=block_rows) if weighted else None
    result = run(DaskData(Xd, wd, split_every=3), covariance_type)
    assert_same_fit(result, reference[(covariance_type, weighted)], rtol=1e-10)


def test_dataframe_and_series_weights(data, reference):
    X, w = data
    frame = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]), npartitions=4)
    weights = dd.from_pandas(pd.Series(w), npartitions=4)
    assert is_dask_collection(frame) and not is_dask_collection(X)
    result = run(DaskData(frame, weights), "full")
    assert_same_fit(result, reference[("full", True)], rtol=1e-10)


def test_numpy_weights_are_rechunked_to_the_blocks(data, reference):
    X, w = data
    source = DaskData(da.from_array(X, chunks=(999, 1)), w)  # column blocks are merged too
    assert source.X.chunks[1] == (D,)
    assert source.sample_weight.chunks[0] == source.X.chunks[0]
    assert source.total_weight() == pytest.approx(w.sum(), rel=1e-12)
    assert_same_fit(run(source, "diag"), reference[("diag", True)], rtol=1e-10)


def test_missing_values(data):
    X, w = data
    X = X.copy()
    rng = np.random.RandomState(1)
    X[rng.rand(*X.shape) < 0.05] = np.nan
    expected = run(ArrayData(X, w), "full", missing=True)
    result = run(DaskData(da.from_array(X, chunks=(800, D)), w), "full", missing=True)
    assert_same_fit(result, expected, rtol=1e-10)


def test_result_does_not_depend_on_the_scheduler(data):
    X, _ = data
    source = DaskData(da.from_array(X, chunks=(600, D)), split_every=2)
    import dask

    def total(Xc, wc):
        return np.asarray(Xc, dtype=np.float64).sum(axis=0)

    with dask.config.set(scheduler="threads"):
        a = source.reduce(total)
    with dask.config.set(scheduler="sync"):
        b = source.reduce(total)
    np.testing.assert_array_equal(a, b)  # one fixed tree of additions


def test_unknown_chunk_sizes_are_refused(data):
    X, _ = data
    Xd = da.from_array(X, chunks=(1000, D))
    unknown = Xd[Xd[:, 0] > 100]  # boolean indexing: row counts unknown until computed
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        DaskData(unknown)
    source = DaskData(unknown.compute_chunk_sizes())
    assert source.n_samples == int((X[:, 0] > 100).sum())


def test_bad_inputs(data):
    X, w = data
    Xd = da.from_array(X, chunks=(1000, D))
    with pytest.raises(ValueError, match="shape \\(5000,\\)"):
        DaskData(Xd, w[:10])
    with pytest.raises(ValueError, match="2-D"):
        DaskData(da.from_array(w, chunks=100))
    frame = dd.from_pandas(pd.DataFrame({"a": X[:, 0], "s": ["x"] * len(X)}), npartitions=2)
    with pytest.raises(ValueError, match="non-numeric columns"):
        DaskData(frame)
    with pytest.raises(TypeError, match="Dask array"):
        DaskData(X)
