"""Drawing rows from a fitted Gaussian mixture (shared by every Gaussian mixture estimator)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["check_n_samples", "sample_gaussian_mixture"]


def check_n_samples(n_samples: Any) -> int:
    """A positive int, else scikit-learn's ValueError for ``sample``."""
    if not isinstance(n_samples, int | np.integer) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(
            f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires at least "
            "one sample."
        )
    return int(n_samples)


def sample_gaussian_mixture(
    weights: NDArray[np.float64],
    means: NDArray[np.float64],
    covariances: NDArray[np.float64],
    covariance_type: str,
    n_samples: int,
    rng: np.random.RandomState,
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """``n_samples`` rows and the component of each, grouped by component.

    ``covariance_type`` is the storage type of ``covariances`` (full, tied, diag or
    spherical). Draws: one multinomial for the counts, then per component standard normals
    mapped through the Cholesky factor (full, tied) or the standard deviations.
    """
    counts = rng.multinomial(n_samples, weights / weights.sum())
    d = means.shape[1]
    parts = []
    for k, c in enumerate(counts):
        eps = rng.standard_normal(size=(int(c), d))
        if covariance_type in ("full", "tied"):
            cov = covariances[k] if covariance_type == "full" else covariances
            parts.append(means[k] + eps @ np.linalg.cholesky(cov).T)
        else:
            parts.append(means[k] + eps * np.sqrt(covariances[k]))
    return np.vstack(parts), np.repeat(np.arange(means.shape[0]), counts)
