"""The hot kernels: log π_k + log N(x | k) for a chunk of rows and every component.

One stacked matrix product over all components (no Python loop over K in the E-step), in
the dtype of the data (float32 stays float32), about the shift s so that data far from
the origin lose no precision. Statistics are then reduced to float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from latentmix.gaussian._params import GaussianParams
from latentmix.gaussian._stats import GaussianStats

__all__ = [
    "accumulate",
    "chunk_width",
    "estep_stats",
    "log_gaussian_prob",
    "log_resp_and_norm",
    "log_weighted_prob",
    "predict_rows",
    "score_rows",
]

LOG_2PI = float(np.log(2.0 * np.pi))


def chunk_width(n_components: int, n_features: int, covariance_type: str) -> int:
    """Numbers per row of the widest temporary of the kernels (sizes the row chunks)."""
    if covariance_type == "full":
        return 2 * n_components * n_features
    return 3 * n_components + 2 * n_features


def log_gaussian_prob(
    Z: NDArray[Any],
    centers: NDArray[np.float64],
    prec_chol: NDArray[np.float64],
    covariance_type: str,
) -> NDArray[Any]:
    """log N(z | c_k, Σ_k) for every row of ``Z`` and every component, shape (n, K).

    ``Z`` and ``centers`` are both taken about the same shift; the result has Z's dtype.
    """
    dt = Z.dtype
    n, d = Z.shape
    k = centers.shape[0]
    if covariance_type == "full":
        P = prec_chol.astype(dt, copy=False)
        # Block k of the stacked product is Z @ P_k: one BLAS call for all components.
        W = np.ascontiguousarray(P.transpose(1, 0, 2).reshape(d, k * d))
        b = np.einsum("kd,kde->ke", centers, prec_chol).astype(dt).reshape(k * d)
        Y = Z @ W
        Y -= b
        np.square(Y, out=Y)
        sq = Y.reshape(n, k, d).sum(axis=2)
        log_det = np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    elif covariance_type == "tied":
        P = prec_chol.astype(dt, copy=False)
        Y = Z @ P
        M = (centers @ prec_chol).astype(dt)
        sq = (Y * Y).sum(axis=1)[:, None] - 2.0 * (Y @ M.T) + (M * M).sum(axis=1)
        log_det = np.full(k, np.log(np.diag(prec_chol)).sum())
    elif covariance_type == "diag":
        prec = prec_chol**2
        cp = (centers * prec).astype(dt)
        sq = (
            (Z * Z) @ prec.T.astype(dt)
            - 2.0 * (Z @ cp.T)
            + (centers**2 * prec).sum(axis=1).astype(dt)
        )
        log_det = np.log(prec_chol).sum(axis=1)
    elif covariance_type == "spherical":
        prec = prec_chol**2
        zz = (Z * Z).sum(axis=1)[:, None]
        cc = (centers**2).sum(axis=1).astype(dt)
        sq = (zz - 2.0 * (Z @ centers.T.astype(dt)) + cc) * prec.astype(dt)
        log_det = d * np.log(prec_chol)
    else:  # pragma: no cover - validated upstream
        raise ValueError(f"Unknown covariance_type {covariance_type!r}.")
    # Expanded forms can round a tiny distance to a tiny negative number.
    np.maximum(sq, 0.0, out=sq)
    out = (-0.5 * (d * LOG_2PI + sq) + log_det.astype(dt)).astype(dt, copy=False)
    return np.asarray(out)


def log_weighted_prob(
    Z: NDArray[Any], params: GaussianParams, shift: NDArray[np.float64]
) -> NDArray[Any]:
    """log π_k + log N(x | k), with ``Z = X − shift``."""
    centers = params.means - shift
    out = log_gaussian_prob(Z, centers, params.precisions_cholesky, params.covariance_type)
    with np.errstate(divide="ignore"):
        out += np.log(params.weights).astype(out.dtype)
    return out


def log_resp_and_norm(weighted_log_prob: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """In place: turn log π_k p_k(x) into log responsibilities; return them and log p(x)."""
    wlp = weighted_log_prob
    top = wlp.max(axis=1)
    top = np.where(np.isfinite(top), top, 0.0).astype(wlp.dtype)
    wlp -= top[:, None]
    with np.errstate(divide="ignore"):
        norm = np.log(np.exp(wlp).sum(axis=1))
    wlp -= norm[:, None]
    norm += top
    return wlp, norm


def accumulate(
    Z: NDArray[Any],
    rw: NDArray[Any],
    centers: NDArray[np.float64],
    covariance_type: str,
    w: NDArray[np.float64] | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """nk, s1, s2 of one chunk from weighted responsibilities ``rw`` (see GaussianStats)."""
    f8 = np.float64
    nk = rw.sum(axis=0, dtype=f8)
    s1 = (rw.T @ Z).astype(f8, copy=False)
    if covariance_type == "full":
        c = centers.astype(Z.dtype)
        Zc = Z[None, :, :] - c[:, None, :]  # (K, n, D)
        s2 = np.matmul(Zc.transpose(0, 2, 1) * rw.T[:, None, :], Zc).astype(f8, copy=False)
    elif covariance_type == "tied":
        Zw = Z if w is None else Z * w.astype(Z.dtype)[:, None]
        s2 = (Zw.T @ Z).astype(f8, copy=False)
    else:
        s2 = (rw.T @ (Z * Z)).astype(f8, copy=False)
    return nk, s1, s2


def _worst(
    X: NDArray[Any], scores: NDArray[Any], w: NDArray[np.float64] | None, keep: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    s = scores.astype(np.float64)
    if w is not None:
        # Rows of weight zero are not part of the data the model must explain.
        s = np.where(w > 0, s, np.inf)
    n = s.shape[0]
    if n > keep:
        idx = np.argpartition(s, keep - 1)[:keep]
    else:
        idx = np.arange(n)
    idx = idx[np.isfinite(s[idx])]
    return X[idx].astype(np.float64), s[idx]


def estep_stats(
    X: NDArray[Any], w: NDArray[np.float64] | None, params: GaussianParams
) -> GaussianStats:
    """One E-step pass over a chunk: additive statistics under ``params``."""
    shift = params.shift()
    ct = params.covariance_type
    Z = X - shift.astype(X.dtype)
    log_resp, norm = log_resp_and_norm(log_weighted_prob(Z, params, shift))
    rw = np.exp(log_resp, out=log_resp)
    if w is not None:
        rw *= w.astype(rw.dtype)[:, None]
    centers = (params.means - shift) if ct == "full" else np.zeros_like(params.means)
    nk, s1, s2 = accumulate(Z, rw, centers, ct, w)
    if w is None:
        log_likelihood = float(norm.sum(dtype=np.float64))
        weight = float(X.shape[0])
    else:
        # A row of weight zero adds nothing, even where its density underflows to zero.
        log_likelihood = float(np.dot(w, np.where(w > 0, norm.astype(np.float64), 0.0)))
        weight = float(w.sum())
    worst_rows, worst_scores = _worst(X, norm, w, params.n_components)
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


def score_rows(
    X: NDArray[Any], params: GaussianParams, *, want_resp: bool
) -> tuple[NDArray[Any] | None, NDArray[Any]]:
    """log responsibilities (n, K) if asked, and log p(x) (n,), chunk by chunk, in X's dtype."""
    from latentmix.em._data import chunk_rows

    shift = params.shift()
    n = X.shape[0]
    resp = np.empty((n, params.n_components), dtype=X.dtype) if want_resp else None
    norm = np.empty(n, dtype=X.dtype)
    step = chunk_rows(chunk_width(params.n_components, X.shape[1], params.covariance_type), n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        Z = X[start:stop] - shift.astype(X.dtype)
        log_resp, lp = log_resp_and_norm(log_weighted_prob(Z, params, shift))
        norm[start:stop] = lp
        if resp is not None:
            resp[start:stop] = log_resp
    return resp, norm


def predict_rows(X: NDArray[Any], params: GaussianParams) -> NDArray[np.intp]:
    """The most responsible component of each row, chunk by chunk."""
    from latentmix.em._data import chunk_rows

    shift = params.shift()
    n = X.shape[0]
    labels = np.empty(n, dtype=np.intp)
    step = chunk_rows(chunk_width(params.n_components, X.shape[1], params.covariance_type), n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        Z = X[start:stop] - shift.astype(X.dtype)
        labels[start:stop] = log_weighted_prob(Z, params, shift).argmax(axis=1)
    return labels
