"""Missing values by EM: missing entries are latent, missing at random.

For a row with observed features O and missing features M, and each component k
(Ghahramani and Jordan, 1994):

* the E-step weighs the row by its marginal over the observed features,
  r_k ∝ π_k N(x_O | μ_k,O, Σ_k,OO);
* the missing entries have the conditional mean
  x̂_k,M = μ_k,M + Σ_k,MO Σ_k,OO⁻¹ (x_O − μ_k,O) and the conditional covariance
  C_k = Σ_k,MM − Σ_k,MO Σ_k,OO⁻¹ Σ_k,OM;
* the statistics use the completed row x̂_k (x_O with x̂_k,M filled in) and add C_k to the
  second moments: E[(x − c)(x − c)ᵀ | x_O, k] = (x̂_k − c)(x̂_k − c)ᵀ + C_k.

The result is an ordinary :class:`GaussianStats` (same shift, same centres), so chunks
with and without missing entries add up, and the same loop and M-step serve. Rows are
grouped by missingness pattern, so the factorisations cost one batched Cholesky per
pattern for all components; rows without missing entries go through the complete-data
kernels unchanged. A row with no observed entry has no likelihood: it contributes
nothing (no weight, no statistics) and its responsibilities are the mixing weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from latentmix._validation import weighted_total
from latentmix.gaussian._kernels import (
    estep_stats,
    log_resp_and_norm,
    score_rows,
    worst_indices,
)
from latentmix.gaussian._params import GaussianParams
from latentmix.gaussian._stats import GaussianStats, merge_worst

__all__ = [
    "check_missing",
    "conditional_means",
    "estep_stats_missing",
    "has_missing",
    "impute_rows",
    "sample_conditional_rows",
    "score_rows_missing",
]

Array = NDArray[np.float64]
LOG_2PI = float(np.log(2.0 * np.pi))


def has_missing(X: NDArray[Any]) -> bool:
    """Whether X holds any NaN (one pass; integer arrays have none)."""
    return X.dtype.kind == "f" and bool(np.isnan(np.sum(X)))


def check_missing(X: NDArray[Any], *, name: str = "X") -> None:
    """Reject what missing-value EM cannot fit: columns with no observed value at all."""
    if not has_missing(X):
        return
    mask = np.isnan(X)
    if mask.all(axis=1).all():
        raise ValueError(f"Every row of {name} is entirely missing: there is nothing to fit.")
    empty_cols = np.flatnonzero(mask.all(axis=0))
    if empty_cols.size:
        raise ValueError(
            f"Input {name} has {empty_cols.size} column(s) with no observed value (columns "
            f"{empty_cols.tolist()[:10]}): nothing can be learnt about them. Drop those "
            "columns before fitting."
        )


def full_covariances(params: GaussianParams) -> Array:
    """The covariances as a (K, D, D) stack, whatever the covariance type."""
    k, d, ct = params.n_components, params.n_features, params.covariance_type
    cov = np.asarray(params.covariances, dtype=np.float64)
    if ct == "full":
        return cov
    if ct == "tied":
        return np.broadcast_to(cov, (k, d, d))
    var = cov if ct == "diag" else np.repeat(cov[:, None], d, axis=1)
    out = np.zeros((k, d, d))
    out[:, np.arange(d), np.arange(d)] = var
    return out


@dataclass
class _Pattern:
    rows: NDArray[np.intp]  # rows of the chunk with this pattern
    obs: NDArray[np.intp]  # observed features
    mis: NDArray[np.intp]  # missing features
    log_prob: Array  # (n, K): log N(x_O | k), no weights
    cond_mean: Array  # (K, n, |M|)
    cond_cov: Array  # (K, |M|, |M|)


def _patterns(X: NDArray[Any], params: GaussianParams, cov: Array) -> Iterator[_Pattern]:
    """Per missingness pattern (with at least one observed entry): marginals and conditionals."""
    mask = np.isnan(X)
    patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(patterns.shape[0] + 1))
    means = params.means
    k = params.n_components
    for p, pattern in enumerate(patterns):
        obs = np.flatnonzero(~pattern)
        if obs.size == 0:
            continue
        mis = np.flatnonzero(pattern)
        rows = order[bounds[p] : bounds[p + 1]]
        x_obs = np.asarray(X[np.ix_(rows, obs)], dtype=np.float64)
        s_oo = cov[:, obs][:, :, obs]
        chol = np.linalg.cholesky(s_oo)  # (K, o, o)
        diff = x_obs[None, :, :] - means[:, None, obs]  # (K, n, o)
        y = np.linalg.solve(chol, diff.transpose(0, 2, 1))  # (K, o, n)
        maha = np.einsum("kon,kon->kn", y, y)
        log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        log_prob = (-0.5 * (obs.size * LOG_2PI + log_det[:, None] + maha)).T
        if mis.size:
            b = np.linalg.solve(chol, cov[:, obs][:, :, mis])  # (K, o, m) = L⁻¹ Σ_OM
            cond_mean = means[:, None, mis] + np.matmul(b.transpose(0, 2, 1), y).transpose(0, 2, 1)
            cond_cov = cov[:, mis][:, :, mis] - np.matmul(b.transpose(0, 2, 1), b)
        else:
            cond_mean = np.empty((k, rows.size, 0))
            cond_cov = np.empty((k, 0, 0))
        yield _Pattern(rows, obs, mis, np.asarray(log_prob), cond_mean, cond_cov)


def _log_resp(log_prob: Array, log_weights: Array) -> tuple[Array, Array]:
    # The complete-row kernels' normalisation: about the row maximum, so that responsibilities
    # still sum to one when log-densities are huge (subtracting a log p(x) of -1e14 rounds).
    return log_resp_and_norm(log_prob + log_weights)


def _log_weights(params: GaussianParams) -> Array:
    with np.errstate(divide="ignore"):
        return np.log(params.weights)


def _completed(X_rows: Array, pat: _Pattern, k: int) -> Array:
    """(K, n, D): the rows with component k's conditional means filled in."""
    out = np.broadcast_to(X_rows, (k, *X_rows.shape)).copy()
    if pat.mis.size:
        out[:, :, pat.mis] = pat.cond_mean
    return out


def _stats_from_patterns(
    X: NDArray[Any],
    w: NDArray[np.float64] | None,
    params: GaussianParams,
    resp_of: Any,
) -> GaussianStats:
    """Statistics of rows with missing entries; ``resp_of(pattern)`` gives their resp (n, K)."""
    ct = params.covariance_type
    k, d = params.n_components, params.n_features
    shift = params.shift()
    # The reference must equal the complete-row kernels' to the bit (their statistics are
    # added to these): they round the centres through the data's dtype.
    centers = (
        (params.means - shift).astype(X.dtype).astype(np.float64)
        if ct == "full"
        else np.zeros_like(params.means)
    )
    cov = full_covariances(params)
    nk = np.zeros(k)
    s1 = np.zeros((k, d))
    s2 = (
        np.zeros((k, d, d))
        if ct == "full"
        else (np.zeros((d, d)) if ct == "tied" else np.zeros((k, d)))
    )
    log_likelihood = 0.0
    weight = 0.0
    worst_rows = np.empty((0, d))
    worst_scores = np.empty(0)
    for pat in _patterns(X, params, cov):
        wp = None if w is None else w[pat.rows]
        resp, norm = resp_of(pat)
        rw = resp if wp is None else resp * wp[:, None]
        xhat = _completed(np.asarray(X[pat.rows], dtype=np.float64), pat, k)  # (K, n, D)
        z = xhat - shift  # about the shift
        nk_p = rw.sum(axis=0)
        nk += nk_p
        s1 += np.einsum("nk,knd->kd", rw, z)
        if ct == "full":
            zc = z - centers[:, None, :]
            s2 += np.einsum("nk,kni,knj->kij", rw, zc, zc)
            s2[np.ix_(np.arange(k), pat.mis, pat.mis)] += nk_p[:, None, None] * pat.cond_cov
        elif ct == "tied":
            s2 += np.einsum("nk,kni,knj->ij", rw, z, z)
            s2[np.ix_(pat.mis, pat.mis)] += np.tensordot(nk_p, pat.cond_cov, axes=1)
        else:
            s2 += np.einsum("nk,knd->kd", rw, z * z)
            s2[:, pat.mis] += nk_p[:, None] * np.diagonal(pat.cond_cov, axis1=1, axis2=2)
        part_ll, part_weight = weighted_total(norm, wp)
        log_likelihood += part_ll
        weight += part_weight
        # Rows the model explains worst, completed, so a re-seeded mean has no NaN.
        take, scores = worst_indices(norm, wp, k)
        imputed = np.einsum("nk,knd->nd", resp[take], xhat[:, take])
        worst_rows, worst_scores = merge_worst(worst_rows, worst_scores, imputed, scores, k)
    return GaussianStats(
        covariance_type=ct,
        shift=shift,
        centers=centers,
        nk=nk,
        s1=s1,
        s2=s2,
        log_likelihood=log_likelihood,
        weight=weight,
        n_rows=int(X.shape[0]),
        worst_rows=worst_rows,
        worst_scores=worst_scores,
    )


def estep_stats_missing(
    X: NDArray[Any], w: NDArray[np.float64] | None, params: GaussianParams
) -> GaussianStats:
    """One E-step over a chunk that may hold NaN: additive statistics under ``params``.

    Complete rows go through the complete-data kernel; the others are grouped by pattern.
    A chunk without NaN gives exactly the complete-data statistics.
    """
    if not has_missing(X):
        return estep_stats(X, w, params)
    incomplete = np.isnan(X).any(axis=1)
    log_weights = _log_weights(params)

    def resp_of(pat: _Pattern) -> tuple[Array, Array]:
        log_resp, norm = _log_resp(pat.log_prob, log_weights)
        return np.exp(log_resp), norm

    rows = np.flatnonzero(incomplete)
    part = _stats_from_patterns(X[rows], None if w is None else w[rows], params, resp_of)
    if incomplete.all():
        return part
    keep = ~incomplete
    return estep_stats(X[keep], None if w is None else w[keep], params) + part


def score_rows_missing(X: NDArray[Any], params: GaussianParams) -> tuple[Array, Array]:
    """log responsibilities (n, K) and log p(x_O) (n,) for rows that may hold NaN.

    A row with no observed entry gets log p = 0 (the marginal over nothing) and the
    mixing weights as its responsibilities.
    """
    n = X.shape[0]
    log_weights = _log_weights(params)
    log_resp = np.broadcast_to(log_weights, (n, params.n_components)).copy()
    norm = np.zeros(n)
    mask = np.isnan(X)
    incomplete = mask.any(axis=1)
    complete = np.flatnonzero(~incomplete)
    if complete.size:
        lr, lp = score_rows(X[complete], params, want_resp=True)
        assert lr is not None
        log_resp[complete] = lr
        norm[complete] = lp
    rows = np.flatnonzero(incomplete & ~mask.all(axis=1))
    if rows.size:
        for pat in _patterns(X[rows], params, full_covariances(params)):
            lr, lp = _log_resp(pat.log_prob, log_weights)
            log_resp[rows[pat.rows]] = lr
            norm[rows[pat.rows]] = lp
    return log_resp, norm


def conditional_means(
    X: NDArray[Any], params: GaussianParams
) -> Iterator[tuple[NDArray[np.intp], NDArray[np.intp], Array, Array, Array]]:
    """For each pattern of the rows with NaN: rows, missing features, resp (n, K),
    conditional means (K, n, |M|) and covariances (K, |M|, |M|).

    Entirely missing rows come as one pattern with the mixing weights as resp and the
    component means and covariances as the conditionals.
    """
    mask = np.isnan(X)
    log_weights = _log_weights(params)
    rows = np.flatnonzero(mask.any(axis=1) & ~mask.all(axis=1))
    if rows.size:
        for pat in _patterns(X[rows], params, full_covariances(params)):
            lr, _ = _log_resp(pat.log_prob, log_weights)
            yield rows[pat.rows], pat.mis, np.exp(lr), pat.cond_mean, pat.cond_cov
    empty = np.flatnonzero(mask.all(axis=1))
    if empty.size:
        k, d = params.n_components, params.n_features
        resp = np.broadcast_to(params.weights, (empty.size, k))
        cmean = np.broadcast_to(params.means[:, None, :], (k, empty.size, d))
        yield empty, np.arange(d), np.asarray(resp), np.asarray(cmean), full_covariances(params)


def impute_rows(X: NDArray[Any], params: GaussianParams) -> NDArray[Any]:
    """X with every NaN replaced by its conditional mean under the mixture."""
    out = np.array(X, copy=True)
    if not has_missing(out):
        return out
    for rows, mis, resp, cmean, _ in conditional_means(out, params):
        out[np.ix_(rows, mis)] = np.einsum("nk,knm->nm", resp, cmean)
    return out


def sample_conditional_rows(
    X: NDArray[Any], params: GaussianParams, n_samples: int, rng: np.random.RandomState
) -> NDArray[Any]:
    """``n_samples`` draws of the missing entries given the observed ones, (n_samples, n, D).

    Each draw picks a component from the row's responsibilities, then the missing entries
    from that component's conditional Gaussian.
    """
    out = np.repeat(np.asarray(X)[None], n_samples, axis=0)
    if not has_missing(X):
        return out
    for rows, mis, resp, cmean, ccov in conditional_means(X, params):
        n, m = rows.size, mis.size
        cum = np.cumsum(resp, axis=1)
        u = rng.uniform(size=(n_samples, n, 1))
        comp = np.minimum((u > cum[None]).sum(axis=2), params.n_components - 1)  # (s, n)
        # A tiny jitter keeps the factorisation defined where a conditional is degenerate.
        jitter = 1e-12 * np.maximum(np.trace(ccov, axis1=1, axis2=2), 1e-300) / max(m, 1)
        chol = np.linalg.cholesky(ccov + jitter[:, None, None] * np.eye(m))  # (K, m, m)
        eps = rng.standard_normal(size=(n_samples, n, m))
        mean = cmean[comp, np.arange(n)[None, :]]  # (s, n, m)
        draws = mean + np.einsum("snij,snj->sni", chol[comp], eps)
        out[:, rows[:, None], mis[None, :]] = draws.astype(out.dtype)
    return out
