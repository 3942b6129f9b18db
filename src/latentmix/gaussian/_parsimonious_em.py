"""A small dense EM for the parsimonious models, to validate them against mclust.

Not the estimator: it holds all responsibilities, loops over components in the E-step
and has no chunking, sample-weight checks or collapse recovery. It checks the
constrained M-steps of :mod:`latentmix.gaussian._parsimonious` apart from
:class:`~latentmix.GaussianMixture` (a log-likelihood trace that never decreases, sample
weights as repeated rows) and gives ``benchmarks/compare_mclust_models.py`` an
independent density at mclust's fitted parameters. The comparison of log-likelihoods
with mclust's runs on the estimator (``select_mixture``), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from latentmix.gaussian._parsimonious import (
    ParsimoniousState,
    constrained_covariances,
)

__all__ = ["EMResult", "fit_em", "initial_resps", "log_likelihood", "scatter_about_means"]

Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class EMResult:
    """The fit; ``log_likelihood`` is NaN when a covariance became singular."""

    weights: Array
    means: Array
    covariances: Array
    log_likelihood: float
    trace: Array
    n_iter: int
    converged: bool
    state: ParsimoniousState | None


def _log_prob(X: Array, means: Array, covariances: Array) -> Array | None:
    """log N(x | μ_k, Σ_k), shape (n, K); None if some Σ_k is not positive definite."""
    n, d = X.shape
    out = np.empty((n, means.shape[0]))
    for k in range(means.shape[0]):
        if not np.all(np.isfinite(covariances[k])):
            return None
        try:
            chol = np.linalg.cholesky(covariances[k])
        except np.linalg.LinAlgError:
            return None
        diag = np.diag(chol)
        # About mclust's test, a reciprocal condition number below machine epsilon.
        if not np.min(diag) > np.sqrt(np.finfo(np.float64).eps) * np.max(diag):
            return None
        z = np.linalg.solve(chol, (X - means[k]).T)
        out[:, k] = -0.5 * (d * np.log(2 * np.pi) + (z**2).sum(axis=0)) - np.log(diag).sum()
    return out


def log_likelihood(
    X: NDArray[Any],
    weights: NDArray[Any],
    means: NDArray[Any],
    covariances: NDArray[Any],
    sample_weight: NDArray[Any] | None = None,
) -> float:
    """Σ_i w_i log Σ_k π_k N(x_i | μ_k, Σ_k); NaN if a covariance is singular."""
    X = np.asarray(X, dtype=np.float64)
    lp = _log_prob(X, np.asarray(means, float), np.asarray(covariances, float))
    if lp is None:
        return float("nan")
    ll = logsumexp(lp + np.log(np.asarray(weights, float)), axis=1)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
    return float(w @ ll)


def scatter_about_means(
    X: Array, resp: Array, sample_weight: Array | None = None
) -> tuple[Array, Array, Array]:
    """nk, means and W_k = Σ_i w_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ."""
    rw = resp if sample_weight is None else resp * sample_weight[:, None]
    nk = rw.sum(axis=0)
    means = (rw.T @ X) / np.where(nk > 0, nk, 1.0)[:, None]
    scatter = np.empty((resp.shape[1], X.shape[1], X.shape[1]))
    for k in range(resp.shape[1]):
        z = X - means[k]
        scatter[k] = (z * rw[:, k : k + 1]).T @ z
    return nk, means, scatter


def fit_em(
    X: NDArray[Any],
    model: str,
    *,
    resp: NDArray[Any] | None = None,
    params: tuple[NDArray[Any], NDArray[Any], NDArray[Any]] | None = None,
    sample_weight: NDArray[Any] | None = None,
    reg_covar: float = 0.0,
    max_iter: int = 1000,
    tol: float = 1e-10,
    mstep_tol: float = 1e-10,
    mstep_max_iter: int = 200,
) -> EMResult:
    """EM for ``model`` from initial responsibilities ``resp`` or ``params`` (π, μ, Σ).

    Stops when the log-likelihood gains less than ``tol · |loglik|``. ``trace`` holds
    the log-likelihood at every iterate, the last one included.
    """
    X = np.asarray(X, dtype=np.float64)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    state: ParsimoniousState | None = None
    previous: Any = None
    if params is not None:
        weights, means, cov = (np.asarray(p, dtype=np.float64) for p in params)
        previous = cov
    else:
        if resp is None:
            raise ValueError("Give initial responsibilities (resp) or parameters (params).")
        weights, means, cov, state = _mstep(
            X, np.asarray(resp, float), sw, model, reg_covar, None, mstep_tol, mstep_max_iter
        )
        previous = state
    trace: list[float] = []
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007
        lp = _log_prob(X, means, cov)
        if lp is None:
            trace.append(float("nan"))
            break
        wlp = lp + np.log(weights)
        norm = logsumexp(wlp, axis=1)
        ll = float(norm @ (np.ones(X.shape[0]) if sw is None else sw))
        trace.append(ll)
        if len(trace) > 1 and abs(trace[-1] - trace[-2]) <= tol * abs(ll):
            converged = True
            break
        r = np.exp(wlp - norm[:, None])
        weights, means, cov, state = _mstep(
            X, r, sw, model, reg_covar, previous, mstep_tol, mstep_max_iter
        )
        previous = state
    return EMResult(weights, means, cov, trace[-1], np.array(trace), n_iter, converged, state)


def _mstep(
    X: Array,
    resp: Array,
    sw: Array | None,
    model: str,
    reg_covar: float,
    previous: Any,
    tol: float,
    max_iter: int,
) -> tuple[Array, Array, Array, ParsimoniousState]:
    nk, means, scatter = scatter_about_means(X, resp, sw)
    cov, state = constrained_covariances(
        model, nk, scatter, reg_covar=reg_covar, previous=previous, tol=tol, max_iter=max_iter
    )
    return nk / nk.sum(), means, cov, state


def initial_resps(X: NDArray[Any], n_components: int, n_starts: int, seed: int = 0) -> list[Array]:
    """Hard starting partitions: Ward's hierarchy on raw and standardised data, then k-means.

    Ward's agglomeration stands in for mclust's model-based hierarchical start; the
    k-means starts (k-means++ seeding, one run each) make up ``n_starts`` in all.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.cluster import KMeans

    X = np.asarray(X, dtype=np.float64)
    k = n_components
    eye = np.eye(k)
    out: list[Array] = []
    if k == 1:
        return [np.ones((X.shape[0], 1))]
    scale = X.std(axis=0)
    for data in (X, (X - X.mean(axis=0)) / np.where(scale > 0, scale, 1.0)):
        labels = fcluster(linkage(data, "ward"), t=k, criterion="maxclust") - 1
        if len(np.unique(labels)) == k:
            out.append(eye[labels])
    s = seed
    while len(out) < n_starts:
        km = KMeans(n_clusters=k, n_init=1, random_state=s).fit(X)
        out.append(eye[km.labels_])
        s += 1
    return out[:n_starts] if n_starts > 0 else out
