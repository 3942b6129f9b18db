"""The M-step: parameters from statistics alone (no data needed)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from latentmix.gaussian._kernels import accumulate
from latentmix.gaussian._params import GaussianParams, precisions_cholesky_from_covariances
from latentmix.gaussian._stats import GaussianStats

__all__ = ["mstep", "stats_from_labels", "stats_from_resp"]

EPS = float(np.finfo(np.float64).eps)


def mstep(stats: GaussianStats, reg_covar: float) -> tuple[GaussianParams, list[int]]:
    """Maximum-likelihood weights, means and covariances; and the components that failed.

    A failed component (weight zero or covariance not positive definite after adding
    ``reg_covar``) keeps NaN entries; the caller re-seeds it or raises.
    """
    ct = stats.covariance_type
    nk_raw = stats.nk
    # As scikit-learn: 10·eps keeps an empty component from dividing by zero.
    nk = nk_raw + 10 * EPS
    rel_means = stats.s1 / nk[:, None]  # new means about the shift
    means = stats.shift + rel_means
    delta = rel_means - stats.centers  # new means about each component's reference
    csum = stats.s1 - nk_raw[:, None] * stats.centers  # Σ w r (z − c_k)
    if ct == "full":
        cov = (
            stats.s2
            - np.einsum("ki,kj->kij", csum, delta)
            - np.einsum("ki,kj->kij", delta, csum)
            + nk_raw[:, None, None] * np.einsum("ki,kj->kij", delta, delta)
        ) / nk[:, None, None]
        # Symmetrise: the products above agree only to rounding.
        cov = 0.5 * (cov + cov.transpose(0, 2, 1))
        d = cov.shape[1]
        cov[:, np.arange(d), np.arange(d)] += reg_covar
    elif ct == "tied":
        between = np.einsum("ki,kj->ij", stats.s1, rel_means)
        cov = (stats.s2 - between) / nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov[np.diag_indices_from(cov)] += reg_covar
    else:
        var = (stats.s2 - 2.0 * csum * delta + nk_raw[:, None] * delta**2) / nk[:, None]
        var += reg_covar
        cov = var.mean(axis=1) if ct == "spherical" else var
    weights = nk / nk.sum()
    prec_chol, bad = precisions_cholesky_from_covariances(cov, ct)
    if ct == "tied" and bad:
        bad = list(range(len(nk)))
    # A component that explains (numerically) no weight has collapsed too.
    empty = np.flatnonzero(nk_raw <= 1e-12 * max(stats.weight, EPS))
    bad = sorted(set(bad) | {int(k) for k in empty})
    params = GaussianParams(ct, weights, means, np.asarray(cov), prec_chol)
    return params, bad


def stats_from_resp(
    X: NDArray[Any],
    resp: NDArray[Any],
    w: NDArray[np.float64] | None,
    shift: NDArray[np.float64],
    centers: NDArray[np.float64],
    covariance_type: str,
) -> GaussianStats:
    """Statistics of a chunk for given (not computed) responsibilities: initialisation."""
    Z = X - shift.astype(X.dtype)
    rw = resp.astype(X.dtype, copy=True)
    if w is not None:
        rw *= w.astype(rw.dtype)[:, None]
    c = centers if covariance_type == "full" else np.zeros_like(centers)
    nk, s1, s2 = accumulate(Z, rw, c, covariance_type, w)
    weight = float(X.shape[0]) if w is None else float(w.sum())
    empty = np.empty((0, X.shape[1]))
    return GaussianStats(
        covariance_type, shift, c, nk, s1, s2, 0.0, weight, int(X.shape[0]), empty, np.empty(0)
    )


def stats_from_labels(
    X: NDArray[Any],
    labels: NDArray[np.intp],
    n_components: int,
    w: NDArray[np.float64] | None,
    shift: NDArray[np.float64],
    centers: NDArray[np.float64],
    covariance_type: str,
) -> GaussianStats:
    resp = np.zeros((X.shape[0], n_components), dtype=X.dtype)
    resp[np.arange(X.shape[0]), labels] = 1
    return stats_from_resp(X, resp, w, shift, centers, covariance_type)
