"""Gaussian mixture parameters and the conversions between their parametrisations.

Shapes by covariance type (K components, D features):

============  ==============  ==================================
type          covariances     precisions_cholesky
============  ==============  ==================================
full          (K, D, D)       (K, D, D), P_k with P_k P_kᵀ = Σ_k⁻¹
tied          (D, D)          (D, D)
diag          (K, D)          (K, D), 1 / sqrt(variances)
spherical     (K,)            (K,), 1 / sqrt(variance)
============  ==============  ==================================
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import linalg
from scipy.linalg import lapack

__all__ = [
    "COVARIANCE_TYPES",
    "GaussianParams",
    "IllConditionedError",
    "n_parameters",
    "precisions_cholesky_from_covariances",
    "precisions_cholesky_from_precisions",
    "precisions_from_cholesky",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

Array = NDArray[np.float64]


class IllConditionedError(ValueError):
    """Some components' covariances are not positive definite; ``components`` lists them."""

    def __init__(self, components: list[int]) -> None:
        self.components = components
        super().__init__(
            "Fitting the mixture model failed because some components have ill-defined "
            f"empirical covariance (components {components}). Try to decrease the number of "
            "components, increase reg_covar, or scale the input data."
        )


@dataclass(frozen=True, eq=False)
class GaussianParams:
    """Immutable parameters of a Gaussian mixture (always float64)."""

    covariance_type: str
    weights: Array
    means: Array
    covariances: Array
    precisions_cholesky: Array

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    def shift(self) -> Array:
        """The point statistics are taken about: the mixture's mean, Σ π_k μ_k."""
        return np.asarray(self.weights @ self.means, dtype=np.float64)

    @cached_property
    def design_weights(self) -> tuple[Array, Array | None]:
        """diag/spherical: the kernels' ``design_weights`` about ``shift()``, once per set.

        Every chunk of an E-step needs the same small matrix; computing it per chunk cost
        about 30 µs a chunk, a tenth of a spherical E-step on one million rows.
        """
        from latentmix.gaussian._kernels import _log_weights, design_weights

        return design_weights(
            self.means,
            self.shift(),
            self.precisions_cholesky,
            self.covariance_type,
            _log_weights(self),
        )


def _inverse_cholesky(cov: Array) -> Array | None:
    """Upper-triangular P with P Pᵀ = cov⁻¹ (P = L⁻ᵀ for cov = L Lᵀ); None if not PD.

    LAPACK's potrf and trtri directly: scipy's wrappers cost milliseconds per call for
    small matrices when BLAS threads compete for the cores.
    """
    if not np.all(np.isfinite(cov)):
        return None
    chol, info = lapack.dpotrf(cov, lower=1, clean=1)
    if info != 0:
        return None
    inv, info = lapack.dtrtri(chol, lower=1)
    if info != 0:
        return None
    return np.asarray(inv.T)


def precisions_cholesky_from_covariances(
    covariances: NDArray[Any], covariance_type: str
) -> tuple[Array, list[int]]:
    """Cholesky factors of the precisions; also the components whose covariance is not PD.

    Components that fail get a NaN factor; the caller decides whether to re-seed or raise.
    """
    cov = np.asarray(covariances, dtype=np.float64)
    bad: list[int] = []
    if covariance_type == "full":
        n_components = cov.shape[0]
        prec_chol = np.empty_like(cov)
        for k in range(n_components):
            factor = _inverse_cholesky(cov[k])
            if factor is None:
                bad.append(k)
                prec_chol[k] = np.nan
            else:
                prec_chol[k] = factor
        return prec_chol, bad
    if covariance_type == "tied":
        factor = _inverse_cholesky(cov)
        if factor is None:
            return np.full_like(cov, np.nan), [-1]
        return factor, bad
    # diag and spherical
    ok = np.isfinite(cov) & (cov > 0)
    if cov.ndim == 2:
        bad = [int(k) for k in np.flatnonzero(~ok.all(axis=1))]
    else:
        bad = [int(k) for k in np.flatnonzero(~ok)]
    with np.errstate(divide="ignore", invalid="ignore"):
        prec_chol = np.where(ok, 1.0 / np.sqrt(np.where(ok, cov, 1.0)), np.nan)
    return prec_chol, bad


def precisions_cholesky_from_precisions(precisions: NDArray[Any], covariance_type: str) -> Array:
    """Cholesky factors from user-given precision matrices (``precisions_init``)."""
    prec = np.asarray(precisions, dtype=np.float64)
    if covariance_type == "full":
        return np.array([linalg.cholesky(p, lower=True) for p in prec])
    if covariance_type == "tied":
        return np.asarray(linalg.cholesky(prec, lower=True))
    return np.sqrt(prec)


def precisions_from_cholesky(prec_chol: Array, covariance_type: str) -> Array:
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


def covariances_from_precisions(precisions: Array, covariance_type: str) -> Array:
    if covariance_type == "full":
        return np.array([linalg.inv(p) for p in precisions])
    if covariance_type == "tied":
        return np.asarray(linalg.inv(precisions))
    return 1.0 / precisions


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Free parameters: K−1 weights, K·D means and the covariance parameters."""
    k, d = n_components, n_features
    cov = {
        "full": k * d * (d + 1) // 2,
        "tied": d * (d + 1) // 2,
        "diag": k * d,
        "spherical": k,
    }[covariance_type]
    return int(cov + k * d + k - 1)
