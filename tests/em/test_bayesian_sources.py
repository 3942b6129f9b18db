"""BayesianGaussianMixture on Dask and out-of-core sources: the same variational loop."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from latentmix import BayesianGaussianMixture, ConvergenceWarning

da = pytest.importorskip("dask.array")


def blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    return np.vstack([c + rng.randn(400, 2) for c in centres])


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_dask_and_memmap_continue_exactly_like_memory(ct: str, tmp_path: Path) -> None:
    """From the same factors, iterations on Dask or a memmap equal those in memory."""
    X = blobs()
    base = BayesianGaussianMixture(n_components=3, covariance_type=ct, random_state=0).fit(X)
    path = tmp_path / "rows.npy"
    np.save(path, X)
    fits = {}
    for name, source in [("memory", X), ("dask", da.from_array(X, chunks=250)), ("npy", str(path))]:
        est = BayesianGaussianMixture(
            n_components=3, covariance_type=ct, warm_start=True, max_iter=4, tol=0.0
        )
        est.__dict__.update({k: v for k, v in vars(base).items() if k.endswith("_")})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits[name] = est.fit(source)
    for name in ("dask", "npy"):
        np.testing.assert_allclose(fits[name].means_, fits["memory"].means_, rtol=1e-10)
        np.testing.assert_allclose(fits[name].weights_, fits["memory"].weights_, rtol=1e-10)
        np.testing.assert_allclose(
            fits[name].lower_bounds_, fits["memory"].lower_bounds_, rtol=1e-10
        )


def test_cold_fit_on_dask_switches_off_unneeded_components() -> None:
    X = blobs(1)
    bgm = BayesianGaussianMixture(n_components=8, random_state=0, max_iter=300)
    bgm.fit(da.from_array(X, chunks=300))
    assert bgm.n_features_in_ == 2
    assert int(np.sum(bgm.weights_ > 1e-2)) == 3
    lazy = bgm.predict(da.from_array(X, chunks=300))
    assert hasattr(lazy, "compute")
    np.testing.assert_array_equal(lazy.compute(), bgm.predict(X))


def test_nan_on_a_source_is_a_clear_error() -> None:
    X = blobs()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BayesianGaussianMixture(n_components=3).fit(da.from_array(X, chunks=300))
