"""A conjugate prior for MAP EM, in the spirit of mclust's ``priorControl``.

Fraley and Raftery (2007), "Bayesian regularization for normal mixture estimation and
model-based clustering", J. Classification 24: the means have a normal prior given the
covariances, μ_k | Σ_k ~ N(μ_P, Σ_k / κ_P), and the covariances an inverse-Wishart prior
(``full``, ``tied``: Σ ~ IW(ν_P, Λ_P)) or inverse-gamma priors (``diag``: each variance
σ²_kj ~ IG(ν_P/2, λ_j/2); ``spherical``: σ²_k ~ IG(ν_P/2, ς²/2)). The mixing weights have a
flat prior. The M-step then gives the posterior mode, which stays finite for components
with few or no points.

mclust's defaults (``defaultPrior``), used by ``prior="default"``:

* shrinkage κ_P = 0.01;
* mean μ_P = the mean of the data;
* degrees of freedom ν_P = D + 2;
* scale = var(data) / K^(2/D): the covariance matrix for ``full`` and ``tied``, the
  per-feature variances for ``diag``, their average for ``spherical``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps
from scipy.special import gammaln

from latentmix.gaussian._params import GaussianParams

__all__ = ["ConjugatePrior", "log_prior", "make_prior"]

Array = NDArray[np.float64]
PRIOR_KEYS = ("shrinkage", "mean", "dof", "scale")


@dataclass(frozen=True, eq=False)
class ConjugatePrior:
    """Hyperparameters of the conjugate prior, for one covariance type."""

    covariance_type: str
    shrinkage: float
    mean: Array  # (D,)
    dof: float
    scale: Array  # (D, D) for full/tied, (D,) for diag, () for spherical


def _weighted_moments(X: NDArray[Any], w: NDArray[np.float64] | None) -> tuple[Array, Array]:
    """Mean and covariance (R's var: frequency weights, n − 1 denominator), NaN-aware."""
    Xf = np.asarray(X, dtype=np.float64)
    ww = np.ones(Xf.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    obs = ~np.isnan(Xf)
    wo = ww[:, None] * obs
    mean = np.where(obs, Xf, 0.0).T @ ww / np.maximum(wo.sum(axis=0), 1e-300)
    Z = np.where(obs, Xf - mean, 0.0)
    # Pairwise-complete cross products: each entry uses the rows where both are observed.
    pair_w = wo.T @ obs.astype(np.float64)
    cov = (Z * ww[:, None]).T @ Z / np.maximum(pair_w - 1.0, 1e-300)
    cov = 0.5 * (cov + cov.T)
    if np.any(np.linalg.eigvalsh(cov) <= 0):
        cov = np.diag(np.diag(cov))
    return mean, cov


def make_prior(
    spec: str | Mapping[str, Any],
    X: NDArray[Any],
    w: NDArray[np.float64] | None,
    n_components: int,
    covariance_type: str,
) -> ConjugatePrior:
    """The prior for ``spec`` ("default" or a dict overriding some defaults) on data X.

    Raises a ValueError naming the hyperparameter that is invalid and what it must be.
    """
    d = X.shape[1]
    if isinstance(spec, str):
        if spec != "default":
            raise ValueError(
                f"prior must be None, 'default' or a dict with keys among {PRIOR_KEYS}; got "
                f"{spec!r}."
            )
        given: dict[str, Any] = {}
    elif isinstance(spec, Mapping):
        given = dict(spec)
        unknown = sorted(set(given) - set(PRIOR_KEYS))
        if unknown:
            raise ValueError(
                f"Unknown prior hyperparameter(s) {unknown}: the prior takes {PRIOR_KEYS} "
                "(any omitted one takes mclust's default)."
            )
    else:
        raise ValueError(
            f"prior must be None, 'default' or a dict with keys among {PRIOR_KEYS}; got "
            f"{type(spec).__name__}."
        )
    need_data = any(key not in given for key in ("mean", "scale"))
    data_mean, data_cov = _weighted_moments(X, w) if need_data else (np.zeros(d), np.eye(d))

    shrinkage = given.get("shrinkage", 0.01)
    if not isinstance(shrinkage, int | float | np.floating | np.integer) or not (
        np.isfinite(shrinkage) and shrinkage >= 0
    ):
        raise ValueError(
            f"prior['shrinkage'] must be a finite number >= 0 (mclust's default is 0.01), got "
            f"{shrinkage!r}."
        )
    mean = np.asarray(given.get("mean", data_mean), dtype=np.float64)
    if mean.shape != (d,) or not np.all(np.isfinite(mean)):
        raise ValueError(
            f"prior['mean'] must be a finite array of shape ({d},) (one value per feature), "
            f"got shape {mean.shape}."
        )
    dof_min = d - 1 if covariance_type in ("full", "tied") else 0
    dof = given.get("dof", d + 2.0)
    if not isinstance(dof, int | float | np.floating | np.integer) or not (
        np.isfinite(dof) and dof > dof_min
    ):
        raise ValueError(
            f"prior['dof'] must be a number > {dof_min} for covariance_type="
            f"{covariance_type!r} (mclust's default is n_features + 2 = {d + 2}), got {dof!r}."
        )
    fac = (1.0 / n_components) ** (2.0 / d)
    default_scale = {
        "full": fac * data_cov,
        "tied": fac * data_cov,
        "diag": fac * np.diag(data_cov),
        "spherical": np.asarray(fac * np.trace(data_cov) / d),
    }[covariance_type]
    scale = np.asarray(given.get("scale", default_scale), dtype=np.float64)
    shape = default_scale.shape
    if scale.shape != shape or not np.all(np.isfinite(scale)):
        raise ValueError(
            f"prior['scale'] for covariance_type={covariance_type!r} must be a finite array of "
            f"shape {shape}, got shape {scale.shape}."
        )
    if covariance_type in ("full", "tied"):
        if not np.allclose(scale, scale.T) or np.any(np.linalg.eigvalsh(scale) <= 0):
            raise ValueError(
                "prior['scale'] must be a symmetric positive-definite matrix (for instance the "
                "data's covariance divided by n_components^(2/n_features))."
            )
    elif np.any(scale <= 0):
        raise ValueError("prior['scale'] must be positive (a variance per feature, or one).")
    if not np.all(np.isfinite(data_cov)) or (need_data and np.any(np.diag(data_cov) <= 0)):
        raise ValueError(
            "The default prior needs every feature to vary: some column of X is constant. "
            "Drop constant columns or pass prior={'scale': ...} explicitly."
        )
    return ConjugatePrior(covariance_type, float(shrinkage), mean, float(dof), scale)


def _log_inv_gamma(x: Array, shape: float, rate: Array | float) -> Array:
    rate = np.asarray(rate, dtype=np.float64)
    return np.asarray(shape * np.log(rate) - gammaln(shape) - (shape + 1) * np.log(x) - rate / x)


def log_prior(prior: ConjugatePrior, params: GaussianParams) -> float:
    """log p(means, covariances) under the prior (the weights' prior is flat)."""
    ct = params.covariance_type
    k, d = params.n_components, params.n_features
    kappa, nu = prior.shrinkage, prior.dof
    cov = np.asarray(params.covariances, dtype=np.float64)
    total = 0.0
    if ct in ("full", "tied"):
        covs = cov if ct == "full" else cov[None]
        for c in covs:
            total += float(sps.invwishart.logpdf(c, df=nu, scale=prior.scale))
        if kappa > 0:
            for j in range(k):
                c = cov[j] if ct == "full" else cov
                total += float(
                    sps.multivariate_normal.logpdf(params.means[j], prior.mean, c / kappa)
                )
        return total
    var = cov if ct == "diag" else np.repeat(cov[:, None], d, axis=1)  # (K, D)
    if ct == "diag":
        total += float(_log_inv_gamma(var, nu / 2.0, prior.scale / 2.0).sum())
    else:
        total += float(_log_inv_gamma(cov, nu / 2.0, float(prior.scale) / 2.0).sum())
    if kappa > 0:
        diff2 = (params.means - prior.mean) ** 2
        total += float((-0.5 * (np.log(2 * np.pi * var / kappa) + kappa * diff2 / var)).sum())
    return total
