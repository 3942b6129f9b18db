"""Shared data and helpers for the reducer tests: a mixture with known starting parameters."""

from __future__ import annotations

from typing import Any

import numpy as np

from latentmix import GaussianMixture
from latentmix.em._data import DataSource
from latentmix.em._loop import EMResult, run_em
from latentmix.mixture._gaussian_mixture import _GaussianFamily

N, D, K = 5000, 3, 3
TRUE_MEANS = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 6.0, 5.0]])


def blobs(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping-enough Gaussian clusters far from the origin, and positive weights."""
    rng = np.random.RandomState(seed)
    labels = rng.choice(K, size=n, p=[0.5, 0.3, 0.2])
    X = TRUE_MEANS[labels] + rng.randn(n, D) * np.array([1.0, 1.5, 0.7]) + 100.0
    w = rng.uniform(0.2, 3.0, size=n)
    return X, w


def precisions(covariance_type: str) -> np.ndarray:
    return {
        "full": np.array([np.eye(D)] * K),
        "tied": np.eye(D),
        "diag": np.ones((K, D)),
        "spherical": np.ones(K),
    }[covariance_type]


def estimator(covariance_type: str = "full", **kwargs: Any) -> GaussianMixture:
    """A GaussianMixture whose start is fully given (so no array-only initialisation runs)."""
    params: dict[str, Any] = dict(
        covariance_type=covariance_type,
        means_init=TRUE_MEANS + 100.0 + 0.8,
        weights_init=np.full(K, 1.0 / K),
        precisions_init=precisions(covariance_type),
        tol=1e-8,
        max_iter=200,
    )
    params.update(kwargs)
    return GaussianMixture(K, **params)


def run(data: DataSource, covariance_type: str = "full", missing: bool = False) -> EMResult[Any]:
    family = _GaussianFamily(estimator(covariance_type), D, missing=missing)
    return run_em(
        family, data, n_init=1, max_iter=200, tol=1e-8, random_state=np.random.RandomState(0)
    )


def assert_same_fit(a: EMResult[Any], b: EMResult[Any], rtol: float) -> None:
    """Equal parameters and traces, to ``rtol`` relative (0 means bit for bit)."""
    assert a.n_iter == b.n_iter
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        x, y = getattr(a.params, name), getattr(b.params, name)
        if rtol == 0:
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=0, err_msg=name)
    if rtol == 0:
        assert a.lower_bounds == b.lower_bounds
    else:
        np.testing.assert_allclose(a.lower_bounds, b.lower_bounds, rtol=rtol, atol=0)
