"""The M-step: parameters from statistics alone (no data needed)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from latentmix.gaussian._kernels import accumulate
from latentmix.gaussian._params import GaussianParams, precisions_cholesky_from_covariances
from latentmix.gaussian._parsimonious import ParsimoniousState, constrained_covariances
from latentmix.gaussian._prior import ConjugatePrior, prior_terms
from latentmix.gaussian._stats import GaussianStats

__all__ = ["mstep", "parsimonious_mstep", "stats_from_labels", "stats_from_resp"]

EPS = float(np.finfo(np.float64).eps)


def mstep(
    stats: GaussianStats,
    reg_covar: float,
    *,
    prior: ConjugatePrior | None = None,
    fixed_weights: NDArray[np.float64] | None = None,
    fixed_means: NDArray[np.float64] | None = None,
    fixed_covariances: NDArray[np.float64] | None = None,
) -> tuple[GaussianParams, list[int]]:
    """Weights, means and covariances from statistics; and the components that failed.

    Without a prior: maximum likelihood (``reg_covar`` added to the diagonal). With a
    ``prior``: the posterior mode (Fraley and Raftery, 2007), without ``reg_covar`` (the
    prior's scale regularises), and an empty component keeps the prior's mode instead of
    failing. ``fixed_*`` parameters are kept as given and the others maximise the same
    objective given them (the covariances are then taken about the fixed means), so EM
    still never decreases its objective.

    A failed component (weight zero or covariance not positive definite after adding
    ``reg_covar``) keeps NaN entries; the caller re-seeds it or raises.
    """
    ct = stats.covariance_type
    if prior is None and fixed_means is None:
        params, bad = _ml_mstep(stats, reg_covar)
    else:
        params, bad = _general_mstep(stats, reg_covar, prior, fixed_means)
    if fixed_weights is None and fixed_covariances is None:
        return params, bad
    weights = params.weights if fixed_weights is None else np.asarray(fixed_weights, float)
    cov, prec_chol = params.covariances, params.precisions_cholesky
    if fixed_covariances is not None:
        cov = np.asarray(fixed_covariances, dtype=np.float64)
        prec_chol, _ = precisions_cholesky_from_covariances(cov, ct)
    # Recompute what failed: a fixed positive weight never empties, a fixed covariance is PD.
    _, bad = precisions_cholesky_from_covariances(cov, ct)
    if ct == "tied" and bad:
        bad = list(range(stats.nk.shape[0]))
    if fixed_weights is None and prior is None:
        empty = np.flatnonzero(stats.nk <= 1e-12 * max(stats.weight, EPS))
        bad = sorted(set(bad) | {int(j) for j in empty})
    return GaussianParams(ct, weights, params.means, cov, prec_chol), bad


def _ml_mstep(stats: GaussianStats, reg_covar: float) -> tuple[GaussianParams, list[int]]:
    """Maximum-likelihood weights, means and covariances (scikit-learn's M-step)."""
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


def _general_mstep(
    stats: GaussianStats,
    reg_covar: float,
    prior: ConjugatePrior | None,
    fixed_means: NDArray[np.float64] | None,
) -> tuple[GaussianParams, list[int]]:
    """The M-step with a prior and/or fixed means: scatter about the chosen means."""
    ct = stats.covariance_type
    nk_raw = stats.nk
    nk = nk_raw + 10 * EPS
    k, d = stats.s1.shape
    if fixed_means is not None:
        rel_means = np.asarray(fixed_means, dtype=np.float64) - stats.shift
    elif prior is not None and prior.shrinkage > 0:
        kappa = prior.shrinkage
        rel_means = (stats.s1 + kappa * (prior.mean - stats.shift)) / (nk_raw + kappa)[:, None]
    else:
        rel_means = stats.s1 / nk[:, None]
    means = stats.shift + rel_means
    if fixed_means is not None:
        means = np.array(fixed_means, dtype=np.float64)  # exactly, not up to rounding
    # Scatter about the chosen means, Σ w r (x − μ_k)(x − μ_k)ᵀ, from the shifted sums.
    delta = rel_means - stats.centers
    csum = stats.s1 - nk_raw[:, None] * stats.centers
    if ct == "full":
        scatter = (
            stats.s2
            - np.einsum("ki,kj->kij", csum, delta)
            - np.einsum("ki,kj->kij", delta, csum)
            + nk_raw[:, None, None] * np.einsum("ki,kj->kij", delta, delta)
        )
    elif ct == "tied":
        cross = np.einsum("ki,kj->ij", stats.s1, rel_means)
        scatter = (
            stats.s2 - cross - cross.T + np.einsum("k,ki,kj->ij", nk_raw, rel_means, rel_means)
        )
    else:
        scatter = stats.s2 - 2.0 * csum * delta + nk_raw[:, None] * delta**2
    if prior is None:
        if ct == "full":
            cov = scatter / nk[:, None, None]
            cov[:, np.arange(d), np.arange(d)] += reg_covar
        elif ct == "tied":
            cov = scatter / nk.sum()
            cov[np.diag_indices(d)] += reg_covar
        else:
            var = scatter / nk[:, None] + reg_covar
            cov = var.mean(axis=1) if ct == "spherical" else var
    else:
        kappa, nu = prior.shrinkage, prior.dof
        has_mean_prior = 1.0 if kappa > 0 else 0.0
        dm = means - prior.mean  # μ_k − μ_P
        if ct == "full":
            cov = (prior.scale + kappa * np.einsum("ki,kj->kij", dm, dm) + scatter) / (
                nk_raw + nu + d + 1 + has_mean_prior
            )[:, None, None]
        elif ct == "tied":
            cov = (prior.scale + kappa * dm.T @ dm + scatter) / (
                nk_raw.sum() + nu + d + 1 + has_mean_prior * k
            )
        elif ct == "diag":
            cov = (prior.scale + kappa * dm**2 + scatter) / (nk_raw + nu + 2 + has_mean_prior)[
                :, None
            ]
        else:
            cov = (prior.scale + kappa * (dm**2).sum(axis=1) + scatter.sum(axis=1)) / (
                nk_raw * d + nu + 2 + has_mean_prior * d
            )
    if ct in ("full", "tied"):
        cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    weights = nk / nk.sum()
    prec_chol, bad = precisions_cholesky_from_covariances(cov, ct)
    if ct == "tied" and bad:
        bad = list(range(k))
    if prior is None:
        empty = np.flatnonzero(nk_raw <= 1e-12 * max(stats.weight, EPS))
        bad = sorted(set(bad) | {int(j) for j in empty})
    return GaussianParams(ct, weights, means, np.asarray(cov), prec_chol), bad


def parsimonious_mstep(
    stats: GaussianStats,
    model: str,
    reg_covar: float,
    *,
    previous: ParsimoniousState | NDArray[Any] | None = None,
    prior: ConjugatePrior | None = None,
    fixed_weights: NDArray[np.float64] | None = None,
    fixed_means: NDArray[np.float64] | None = None,
    fixed_covariances: NDArray[np.float64] | None = None,
) -> tuple[GaussianParams, list[int], ParsimoniousState | NDArray[Any] | None]:
    """The M-step of one of mclust's constrained models, from ``full`` statistics.

    The weights and means are the usual ones (or the fixed ones); the covariances (K, D, D)
    maximise the expected complete-data log-likelihood under ``model``'s constraint given
    the scatter about those means (:func:`~latentmix.gaussian._parsimonious.
    constrained_covariances`, which adds ``reg_covar`` itself), warm-started from
    ``previous``. Returns the parameters, the failed components and the state to pass as
    ``previous`` to the next M-step.

    With a ``prior`` (made for ``model``: EII, EEI, VEI, EVI, EEV or VEV) the posterior
    mode instead, as mclust defines it (:mod:`~latentmix.gaussian._prior`): the means are
    shrunk towards the prior's mean, and the constrained fit runs on the prior-augmented
    counts and scatter matrices, without ``reg_covar``; a component with no points then
    keeps a finite fit, except under VEV, whose prior adds no count.
    """
    if stats.covariance_type != "full":
        raise ValueError(f"The {model} model needs full statistics, got {stats.covariance_type}.")
    terms = None
    if prior is not None:
        if prior.covariance_type != model:
            raise ValueError(
                f"The prior was made for covariance_type={prior.covariance_type!r}, not "
                f"{model!r}: make it with make_prior(..., covariance_type={model!r})."
            )
        terms = prior_terms(prior, stats.nk.shape[0], stats.s1.shape[1])
        reg_covar = 0.0  # the prior's scale regularises
    nk_raw = stats.nk
    nk = nk_raw + 10 * EPS
    if fixed_means is not None:
        rel_means = np.asarray(fixed_means, dtype=np.float64) - stats.shift
        means = np.array(fixed_means, dtype=np.float64)  # exactly, not up to rounding
    elif prior is not None and terms is not None and terms.shrink:
        kappa = prior.shrinkage
        rel_means = (stats.s1 + kappa * (prior.mean - stats.shift)) / (nk_raw + kappa)[:, None]
        means = stats.shift + rel_means
    else:
        rel_means = stats.s1 / nk[:, None]
        means = stats.shift + rel_means
    if fixed_covariances is not None:
        params, bad = mstep(
            stats,
            reg_covar,
            fixed_weights=fixed_weights,
            fixed_means=means if prior is not None else fixed_means,
            fixed_covariances=fixed_covariances,
        )
        if prior is not None and fixed_means is None:  # not up to the rounding of a shift
            params = GaussianParams(
                "full", params.weights, means, params.covariances, params.precisions_cholesky
            )
        return params, bad, previous
    # Scatter about the chosen means, W_k = Σ w r (x − μ_k)(x − μ_k)ᵀ, as in the full M-step.
    delta = rel_means - stats.centers
    csum = stats.s1 - nk_raw[:, None] * stats.centers
    scatter = (
        stats.s2
        - np.einsum("ki,kj->kij", csum, delta)
        - np.einsum("ki,kj->kij", delta, csum)
        + nk_raw[:, None, None] * np.einsum("ki,kj->kij", delta, delta)
    )
    scatter = 0.5 * (scatter + scatter.transpose(0, 2, 1))
    counts = nk_raw
    if prior is not None and terms is not None:
        counts = nk_raw + terms.count
        scatter = scatter + terms.scatter
        if terms.shrink:
            dm = means - prior.mean
            scatter = scatter + prior.shrinkage * np.einsum("ki,kj->kij", dm, dm)
    empty = np.flatnonzero(counts <= 1e-12 * max(float(counts.sum()), EPS))
    try:
        cov, state = constrained_covariances(
            model, counts, scatter, reg_covar=reg_covar, previous=previous
        )
    except ValueError:
        if len(empty) < nk_raw.shape[0] and np.all(np.isfinite(scatter)):
            raise
        # Every component empty, or a non-finite scatter: every component failed.
        d = scatter.shape[1]
        cov = np.full((nk_raw.shape[0], d, d), np.nan)
        state = None
    weights = nk / nk.sum() if fixed_weights is None else np.asarray(fixed_weights, float)
    prec_chol, bad = precisions_cholesky_from_covariances(cov, "full")
    if fixed_weights is None and prior is None:
        empty = np.flatnonzero(nk_raw <= 1e-12 * max(stats.weight, EPS))
    if fixed_weights is None:
        bad = sorted(set(bad) | {int(j) for j in empty})
    return GaussianParams("full", weights, means, cov, prec_chol), bad, state


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
