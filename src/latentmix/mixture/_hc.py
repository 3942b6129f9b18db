"""Model-based hierarchical agglomeration under the unconstrained (VVV) Gaussian model.

Agglomeration merges, at each stage, the two clusters whose merge least increases the
classification criterion ``Σ_k n_k log det(W_k / n_k)`` of unconstrained Gaussian
clusters (``W_k`` is the scatter matrix of cluster k), the model-based hierarchical
clustering of Banfield and Raftery (1993) and Fraley (1998). That criterion is −∞ for
clusters of fewer than ``n_features + 1`` points, so, following Fraley (1998), it is
regularised::

    C_k = n_k · log det((W_k + β·ω·I) / (n_k + α)),   ω = tr(W) / (n · n_features)

with ``W`` the scatter of all rows and α = β = 1. A merge of clusters i and j changes the
criterion by ``C_{i∪j} − C_i − C_j`` with ``W_{i∪j} = W_i + W_j + n_i n_j / (n_i + n_j) ·
(m_i − m_j)(m_i − m_j)ᵀ``, so all merge costs live in one m × m matrix (m clusters of the
initial partition); after a merge only the new cluster's row is recomputed, with a
rank-one update of one Cholesky factor for the partners that are still points and a
batched log-determinant for the others. Time O(m² · n_features³) at worst, memory
O(m² + m · n_features²): about a second for m ≈ 600 rows in 30 dimensions.

Duplicated rows start in one cluster (they cannot be told apart). The rows are usually
first mapped by :func:`svd_transform` (mclust's default ``hcUse = "SVD"``; Scrucca and
Raftery 2015).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import solve_triangular

__all__ = ["cut_merges", "svd_transform", "vvv_agglomeration"]


def svd_transform(X: NDArray[Any], *, rotate: bool = True) -> NDArray[np.float64]:
    """The scaled-SVD transform: standardise, rotate onto the singular vectors, scale by s^-1/2.

    Columns are centred and scaled to unit standard deviation (constant columns are only
    centred), then ``Z = Xs V S^{-1/2}`` for the thin SVD ``Xs = U S Vᵀ``, dropping
    directions with a negligible singular value. NaN entries are replaced by column means.
    With ``rotate=False`` only the standardised columns are returned.
    """
    Xf = np.asarray(X, dtype=np.float64)
    if np.isnan(Xf).any():
        Xf = np.where(np.isnan(Xf), np.nanmean(Xf, axis=0), Xf)
    Xc = Xf - Xf.mean(axis=0)
    sd = Xc.std(axis=0, ddof=1) if Xf.shape[0] > 1 else np.ones(Xf.shape[1])
    Xs = Xc / np.where(sd > 0, sd, 1.0)
    if not rotate:
        return np.asarray(Xs)
    _, s, vt = np.linalg.svd(Xs, full_matrices=False)
    if not s.size or s[0] <= 0:
        return Xs
    keep = s > s[0] * 1e-10
    return np.asarray((Xs @ vt[keep].T) / np.sqrt(s[keep]))


def _log_det_spd(A: NDArray[np.float64]) -> NDArray[np.float64]:
    """log det of a stack of symmetric positive-definite matrices."""
    sign, logdet = np.linalg.slogdet(A)
    return np.where(sign > 0, logdet, np.inf)


def vvv_agglomeration(
    Z: NDArray[Any], *, alpha: float = 1.0, beta: float = 1.0
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Grow the VVV agglomeration tree of the rows of Z.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Complete rows (usually :func:`svd_transform` of the data).
    alpha, beta : float, default=1.0
        The regularisation of the criterion (see the module docstring).

    Returns
    -------
    initial : ndarray of shape (n_samples,)
        The initial partition, ``0..m-1`` (duplicated rows share a cluster).
    merges : ndarray of shape (m - 1, 2)
        ``(i, j)`` per stage: cluster j joins cluster i (indices of ``initial``'s clusters;
        the merged cluster keeps index i).
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    _, first, initial = np.unique(Z, axis=0, return_index=True, return_inverse=True)
    initial = np.asarray(initial, dtype=np.intp).reshape(-1)
    m = first.size
    counts = np.bincount(initial, minlength=m).astype(np.float64)
    means = Z[first].copy()
    scatter_total = float(((Z - Z.mean(axis=0)) ** 2).sum())
    omega = scatter_total / (n * d) if scatter_total > 0 else 1.0
    ridge = beta * omega
    log_ridge = np.log(ridge)
    W = np.zeros((m, d, d))
    is_point = np.ones(m, dtype=bool)  # W_k == 0: every row of the cluster is the same point
    crit = counts * (d * log_ridge - d * np.log(counts + alpha))

    # Initial merge costs: every W is zero, so W_ij + ridge·I is a rank-one update of ridge·I.
    sq = (means * means).sum(axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * means @ means.T, 0.0)
    n_sum = counts[:, None] + counts[None, :]
    r = counts[:, None] * counts[None, :] / n_sum
    logdet = d * log_ridge + np.log1p(r * dist2 / ridge)
    cost = n_sum * (logdet - d * np.log(n_sum + alpha)) - crit[:, None] - crit[None, :]
    np.fill_diagonal(cost, np.inf)
    row_arg = np.argmin(cost, axis=1)
    row_min = cost[np.arange(m), row_arg]
    active = np.ones(m, dtype=bool)
    merges = np.empty((max(m - 1, 0), 2), dtype=np.intp)
    eye = np.eye(d)

    for stage in range(m - 1):
        i = int(np.argmin(row_min))
        j = int(row_arg[i])
        if j < i:
            i, j = j, i
        merges[stage] = (i, j)
        # Merge j into i.
        ni, nj = counts[i], counts[j]
        diff = means[j] - means[i]
        W[i] = W[i] + W[j] + (ni * nj / (ni + nj)) * np.outer(diff, diff)
        means[i] = (ni * means[i] + nj * means[j]) / (ni + nj)
        counts[i] = ni + nj
        is_point[i] = False
        active[j] = False
        cost[j, :] = np.inf
        cost[:, j] = np.inf
        row_min[j] = np.inf
        A = W[i] + ridge * eye
        L = np.linalg.cholesky(A)
        logdet_a = 2.0 * float(np.log(np.diag(L)).sum())
        crit[i] = counts[i] * (logdet_a - d * np.log(counts[i] + alpha))

        others = np.flatnonzero(active)
        others = others[others != i]
        if others.size:
            dl = means[others] - means[i]
            nl = counts[others]
            nsum = nl + counts[i]
            rl = nl * counts[i] / nsum
            ld = np.empty(others.size)
            pts = is_point[others]
            if pts.any():
                y = solve_triangular(L, dl[pts].T, lower=True, check_finite=False)
                ld[pts] = logdet_a + np.log1p(rl[pts] * (y * y).sum(axis=0))
            if (~pts).any():
                idx = others[~pts]
                dn = dl[~pts]
                M = W[idx] + A + rl[~pts, None, None] * dn[:, :, None] * dn[:, None, :]
                ld[~pts] = _log_det_spd(M)
            new = nsum * (ld - d * np.log(nsum + alpha)) - crit[i] - crit[others]
            cost[i, others] = new
            cost[others, i] = new
        # Row minima: row i afresh; rows that pointed at i or j afresh; others may improve.
        for row in (i,):
            row_arg[row] = int(np.argmin(cost[row]))
            row_min[row] = cost[row, row_arg[row]]
        if others.size:
            stale = others[(row_arg[others] == i) | (row_arg[others] == j)]
            for row in stale:
                row_arg[row] = int(np.argmin(cost[row]))
                row_min[row] = cost[row, row_arg[row]]
            fresh = others[~np.isin(others, stale)]
            better = cost[fresh, i] < row_min[fresh]
            row_arg[fresh[better]] = i
            row_min[fresh[better]] = cost[fresh[better], i]
    return initial, merges


def cut_merges(
    initial: NDArray[np.intp], merges: NDArray[np.intp], n_clusters: Iterable[int]
) -> dict[int, NDArray[np.intp]]:
    """Labels ``0..K-1`` (numbered by first appearance) of the tree cut at each K."""
    m = int(initial.max()) + 1 if initial.size else 0
    wanted = {int(k) for k in n_clusters if 1 <= int(k) <= m}
    owner = np.arange(m)
    out: dict[int, NDArray[np.intp]] = {}

    def snapshot() -> NDArray[np.intp]:
        labels = owner[initial]
        _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))
        return np.asarray(order[inverse.reshape(-1)], dtype=np.intp)

    if m in wanted:
        out[m] = snapshot()
    for stage, (i, j) in enumerate(merges):
        owner[owner == j] = i
        k = m - stage - 1
        if k in wanted:
            out[k] = snapshot()
    return out
