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

Six more of mclust's models take the prior: EII, EEI, VEI, EVI, EEV and VEV, with the
M-steps of mclust's ``me`` (checked numerically against mclust 6.0.0; mclust defines no
prior for VEE, EVE, VVE and EVV). For each, the means are shrunk as above (m = 1 if
κ_P > 0, else 0) and the covariances are the constrained fit of
:func:`~latentmix.gaussian._parsimonious.constrained_covariances` on prior-augmented
counts and scatter matrices, ñ_k = n_k + c and W̃_k = W_k + m κ_P d_k d_kᵀ + P, with
d_k = μ_k − μ_P, W_k the scatter about μ_k, and ς² = tr(Λ_P) / D (mclust's default:
the average variance over K^(2/D))::

    model  c (per component)       P
    EII    m + (ν_P + 2) / (D K)   ς² I / (D K)
    EEI    (ν_P + 2) / K           ς² I / K
    VEI    (ν_P + 2 + m) / D       ς² I
    EVI    (ν_P + 2) / K           ς² I
    EEV    (ν_P + D + 1 + m) / K   Λ_P
    VEV    0                       Λ_P

That is the posterior mode (means and covariances jointly) for the log-prior

    Σ_k [ −½ c log|Σ_k| − ½ tr(Σ_k⁻¹ (P + m κ_P d_k d_kᵀ)) + m (D/2) log(κ_P / 2π) ],

plus, for EII and EEI, the normalising constants that make it an inverse-gamma prior
IG(ν_P/2, ς²/2) on the one variance (EII) or on each of the D variances (EEI) times the
normal prior on the means (EEI: without its |Σ|^(-1/2), as mclust counts it); for the
others it is mclust's M-step's objective, up to a constant. So EM's objective, the
log-likelihood plus this log-prior, never decreases. Where we depart from mclust: its EII
M-step leaves out ς² (its fits do not change with ``scale``), ours keeps it as the
inverse-gamma prior says (with a negligible ``scale`` the two agree); and its EEI keeps
the unshrunk class means while its variances take the means' prior term, which is the
mode of no posterior, where ours shrinks them (log-likelihoods within about 1e-5).

These models store their covariances as ``full`` (K, D, D), and ``scale`` is the (D, D)
matrix Λ_P = var(data) / K^(2/D) for all six.
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

__all__ = [
    "MCLUST_PRIOR_MODELS",
    "ConjugatePrior",
    "log_prior",
    "make_prior",
    "prior_covariance_type",
    "prior_terms",
]

Array = NDArray[np.float64]
PRIOR_KEYS = ("shrinkage", "mean", "dof", "scale")

#: The models for which mclust defines its conjugate prior (``priorControl``).
MCLUST_PRIOR_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
#: The constrained ones (stored as ``full``), with their own M-step and log-prior here.
_CONSTRAINED = ("EII", "EEI", "VEI", "EVI", "EEV", "VEV")
_ALIASES = {"VVV": "full", "EEE": "tied", "VVI": "diag", "VII": "spherical"}


def prior_covariance_type(covariance_type: str) -> str:
    """The ``covariance_type`` a :class:`ConjugatePrior` is made for, for a model name.

    scikit-learn's four names and their mclust aliases give ``full``, ``tied``, ``diag``
    and ``spherical``; EII, EEI, VEI, EVI, EEV and VEV themselves. Raises a ValueError for
    the models without a prior (VEE, EVE, VVE, EVV, and the one-dimensional E and V).
    """
    ct = _ALIASES.get(covariance_type, covariance_type)
    if ct in ("full", "tied", "diag", "spherical") or ct in _CONSTRAINED:
        return ct
    if ct in ("E", "V"):
        raise ValueError(
            f"prior= is not supported with the one-dimensional model {ct!r} yet; use prior=None."
        )
    raise ValueError(
        f"prior= is not supported with covariance_type={covariance_type!r}: mclust does not "
        "define its conjugate prior for this model either (priorControl covers "
        f"{', '.join(MCLUST_PRIOR_MODELS)}; not VEE, EVE, VVE, EVV). Use one of those "
        "models, or prior=None."
    )


@dataclass(frozen=True, eq=False)
class ConjugatePrior:
    """Hyperparameters of the conjugate prior, for one covariance type."""

    covariance_type: str
    shrinkage: float
    mean: Array  # (D,)
    dof: float
    scale: Array  # (D, D) for full/tied and the constrained models, (D,) diag, () spherical


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

    ``covariance_type`` is one of the four or a model name (see
    :func:`prior_covariance_type`). Raises a ValueError naming the hyperparameter that is
    invalid and what it must be.
    """
    covariance_type = prior_covariance_type(covariance_type)
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
    dof_min = d - 1 if covariance_type in ("full", "tied", "EEV", "VEV") else 0
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
    }.get(covariance_type, fac * data_cov)  # the constrained models: the matrix
    scale = np.asarray(given.get("scale", default_scale), dtype=np.float64)
    shape = default_scale.shape
    if scale.shape != shape or not np.all(np.isfinite(scale)):
        raise ValueError(
            f"prior['scale'] for covariance_type={covariance_type!r} must be a finite array of "
            f"shape {shape}, got shape {scale.shape}."
        )
    if default_scale.ndim == 2:
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


@dataclass(frozen=True)
class PriorTerms:
    """What a constrained model's prior adds to its M-step (see the module docstring).

    ``shrink``: the means are shrunk towards ``prior.mean`` (κ_P > 0), and κ_P d_k d_kᵀ
    joins the scatter; ``count``: c, added to every n_k (and the log-prior's factor of
    −½ log|Σ_k|); ``scatter``: P (D, D), added to every W_k.
    """

    shrink: bool
    count: float
    scatter: Array


def _scale_matrix(prior: ConjugatePrior, d: int) -> Array:
    """Λ_P as a (D, D) matrix (a given per-feature or single variance on the diagonal)."""
    scale = np.asarray(prior.scale, dtype=np.float64)
    if scale.ndim == 2:
        return scale
    return np.asarray(np.diag(np.broadcast_to(scale, (d,))), dtype=np.float64)


def prior_terms(prior: ConjugatePrior, n_components: int, n_features: int) -> PriorTerms:
    """The M-step's augmentation and the log-prior's terms of a constrained model."""
    model = prior.covariance_type
    if model not in _CONSTRAINED:
        raise ValueError(f"prior_terms is for the models {_CONSTRAINED}, got {model!r}.")
    k, d, nu = n_components, n_features, prior.dof
    matrix = _scale_matrix(prior, d)
    var = float(np.trace(matrix)) / d  # ς²: the one-variance models' scale
    m = 1.0 if prior.shrinkage > 0 else 0.0
    # (a, the normal prior's count, P): c = a + m · that count.
    a, c_mean, scatter = {
        "EII": ((nu + 2) / (d * k), 1.0, var / (d * k) * np.eye(d)),
        "EEI": ((nu + 2) / k, 0.0, var / k * np.eye(d)),
        "VEI": ((nu + 2) / d, 1.0 / d, var * np.eye(d)),
        "EVI": ((nu + 2) / k, 0.0, var * np.eye(d)),
        "EEV": ((nu + d + 1) / k, 1.0 / k, matrix),
        "VEV": (0.0, 0.0, matrix),
    }[model]
    return PriorTerms(m > 0, float(a + m * c_mean), np.asarray(scatter))


def _log_prior_constrained(prior: ConjugatePrior, params: GaussianParams) -> float:
    k, d = params.n_components, params.n_features
    terms = prior_terms(prior, k, d)
    cov = np.asarray(params.covariances, dtype=np.float64)
    sign, logdet = np.linalg.slogdet(cov)
    if np.any(sign <= 0):
        return -np.inf
    target = np.broadcast_to(terms.scatter, cov.shape).copy()
    if terms.shrink:
        dm = params.means - prior.mean
        target += prior.shrinkage * np.einsum("ki,kj->kij", dm, dm)
    trace = np.einsum("kij,kji->k", np.linalg.inv(cov), target)
    total = float(-0.5 * (terms.count * logdet + trace).sum())
    if terms.shrink:
        total += k * 0.5 * d * float(np.log(prior.shrinkage / (2 * np.pi)))
    nu = prior.dof
    if prior.covariance_type in ("EII", "EEI"):  # inverse-gamma normalising constants
        var = float(np.trace(_scale_matrix(prior, d))) / d
        n_var = 1 if prior.covariance_type == "EII" else d
        total += n_var * (0.5 * nu * np.log(var / 2.0) - float(gammaln(0.5 * nu)))
    return total


def log_prior(prior: ConjugatePrior, params: GaussianParams) -> float:
    """log p(means, covariances) under the prior (the weights' prior is flat)."""
    if prior.covariance_type in _CONSTRAINED:
        return _log_prior_constrained(prior, params)
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
