"""k-means|| and the mixture starts over non-array sources."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from latentmix import GaussianMixture
from latentmix.em._dask import DaskData
from latentmix.em._data import ArrayData
from latentmix.em._fit_source import fit_gaussian_mixture_on
from latentmix.em._init_scalable import column_moments, kmeans_parallel, weighted_sample
from latentmix.em._stream import ChunkedData

CENTERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 20.0]]) + 30.0


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.RandomState(0)
    return CENTERS[rng.randint(5, size=6000)] + 0.5 * rng.randn(6000, 2)


def test_weighted_sample_skips_zero_weights_and_is_reproducible(X):
    w = np.zeros(len(X))
    w[::7] = 1.0
    a = weighted_sample(ArrayData(X, w, chunk_size=500), 40, seed=3)
    b = weighted_sample(ArrayData(X, w, chunk_size=500), 40, seed=3)
    np.testing.assert_array_equal(a, b)
    chosen = {tuple(r) for r in a}
    assert len(chosen) == 40 and chosen <= {tuple(r) for r in X[::7]}


def test_column_moments(X):
    w = np.random.RandomState(1).uniform(0.1, 2.0, len(X))
    mean, var = column_moments(ArrayData(X, w, chunk_size=777))
    ref = np.average(X, axis=0, weights=w)
    np.testing.assert_allclose(mean, ref, rtol=1e-12)
    np.testing.assert_allclose(var, np.average((X - ref) ** 2, axis=0, weights=w), rtol=1e-9)


def test_kmeans_parallel_finds_every_cluster_and_is_the_same_on_dask(X):
    serial = kmeans_parallel(ArrayData(X, chunk_size=1000), 5, np.random.RandomState(0))
    nearest = np.linalg.norm(serial[:, None] - CENTERS[None], axis=2).min(axis=0)
    assert np.all(nearest < 0.5)  # one seed per cluster, within its spread (0.5)
    parallel = kmeans_parallel(
        DaskData(da.from_array(X, chunks=(1000, 2))), 5, np.random.RandomState(0)
    )
    # Draws are seeded by chunk content, so the same chunks give the same seeds.
    np.testing.assert_allclose(parallel, serial, rtol=1e-12)


def test_kmeans_parallel_needs_enough_distinct_rows():
    X = np.repeat([[0.0, 0.0], [1.0, 1.0]], 50, axis=0)
    with pytest.raises(ValueError, match=r"only 2 distinct candidate rows.*n_clusters=3"):
        kmeans_parallel(ArrayData(X), 3, np.random.RandomState(0))


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data", "random"])
def test_every_start_works_out_of_core(X, init_params):
    source = ChunkedData.from_chunks(lambda: (X[i : i + 1000] for i in range(0, len(X), 1000)))
    gm = GaussianMixture(5, init_params=init_params, random_state=0, n_init=2, max_iter=300)
    fit_gaussian_mixture_on(gm, source)
    reference = GaussianMixture(5, init_params=init_params, random_state=0, n_init=2).fit(X)
    assert gm.converged_
    # The draws differ from the in-memory start's, but they lead to the same optimum
    # (for "random", the same poor one: all components start near the global mean).
    assert gm.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-3)
