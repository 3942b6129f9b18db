"""Chunk kernels for Lloyd's algorithm: nearest center, per-cluster sums, farthest rows.

Two implementations of one contract. With Numba, a serial kernel (the EM engine spreads
chunks over the cores) runs over blocks of 64 rows: the block's products ``-2 x·c`` come
from one BLAS ``gemm`` on the rows as they are (Numba's ``np.dot``; the shift is folded
into the per-center constant, see below); the argmin, the exact squared distance to the
winning center and the accumulation follow while the block is still in cache. float32
rows are converted to float64 per chunk, so both dtypes decide the nearest center alike.
Without Numba the same quantities come from NumPy and a sparse one-hot product per chunk.
All work on rows shifted by ``shift`` (the mean of the training data) so that
``‖x‖² − 2x·c + ‖c‖²`` does not lose digits far from the origin.

The fold: with centers ``c`` in shifted coordinates, ``‖c‖² − 2(x − s)·c = −2x·c +
(‖c‖² + 2s·c)``. Both sides round ``x`` at the same scale (``x − s`` rounds at ``ε|s|``,
``x·c`` at ``ε|x||c|``), so deciding the nearest center from the right-hand side costs no
accuracy, and the distance and sums are still computed from ``x − s``.

Many clusters (``K ≥ WIDE_MIN_K``, few features) take a second Numba kernel,
``_lloyd_wide``: the block is transposed once, so that the products come out
cluster-major, (K, 64), from one BLAS call, and the nearest-center search runs along
rows, contiguous, in vector lanes. The row-major kernel compares K scattered numbers per
row, one at a time, which dominates its time when K is large. The wide kernel takes each
row's distance from the fold, ``‖x − s‖² + min_k (‖c_k‖² − 2(x − s)·c_k)`` clipped at 0,
and recomputes it exactly where it is kept: for every row when labels are asked for, and
for a row about to enter the farthest rows. So only the chunk's inertia (the lower bound
of an iteration, not the fitted ``inertia_``) carries the fold's rounding, about
``ε ‖x − s‖²`` per row.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["HAVE_NUMBA", "ChunkResult", "assign_chunk"]

try:  # Numba is optional: the NumPy path below gives the same numbers, slower.
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False


class ChunkResult(NamedTuple):
    sums: NDArray[np.float64]  # (K, D) Σ w (x − shift) per cluster
    weights: NDArray[np.float64]  # (K,) Σ w per cluster
    inertia: float  # Σ w ‖x − c_label‖²
    top_dist: NDArray[np.float64]  # (m,) the m largest ‖x − c_label‖² (unweighted)
    top_rows: NDArray[np.intp]  # (m,) their row indices in the chunk
    top_labels: NDArray[np.intp]  # (m,) their labels
    labels: NDArray[np.intp] | None  # (n,) when asked for
    min_dist: NDArray[np.float64] | None  # (n,) when asked for


_BLOCK = 64  # rows per block: the block and its distances stay in L1 cache

#: The cluster-major kernel for at least this many clusters and at most WIDE_MAX_D
#: features. One thread, N·K fixed: K=16, D=16 is a tie (1M rows, 31-39 ms either way);
#: K=64 takes 41-46 against 50-53 ms (500k rows), K=128 27-33 against 39-44 ms (200k
#: rows). At D=256 its transposed block outgrows the L1 cache: 29 against 16 ms (K=16).
WIDE_MIN_K = 32
WIDE_MAX_D = 128

if HAVE_NUMBA:

    @njit(cache=True, nogil=True, fastmath=True)
    def _lloyd_blas(
        X, w, has_w, shift, centers, neg2_ct, cc_shift, n_top, want_labels, labels, min_dist
    ):  # type: ignore[no-untyped-def]
        # ``cc_shift`` is ‖c‖² + 2 s·c (the fold in the module docstring).
        n, d = X.shape
        k = centers.shape[0]
        sums = np.zeros((k, d))
        weights = np.zeros(k)
        inertia = 0.0
        top_d = np.full(max(n_top, 1), -1.0)
        top_i = np.full(max(n_top, 1), -1, dtype=np.intp)
        top_l = np.full(max(n_top, 1), -1, dtype=np.intp)
        g = np.empty((_BLOCK, k))
        lowest = 0
        for s in range(0, n, _BLOCK):
            m = min(n, s + _BLOCK) - s
            if m < _BLOCK:
                g = np.empty((m, k))
            np.dot(X[s : s + m], neg2_ct, g)
            for i in range(m):
                best = 0
                bv = g[i, 0] + cc_shift[0]
                for j in range(1, k):
                    v = g[i, j] + cc_shift[j]
                    better = v < bv  # branch-free select: the winner is unpredictable
                    bv = v if better else bv
                    best = j if better else best
                wi = w[s + i] if has_w else 1.0
                dist = 0.0  # exact squared distance to the winner
                for f in range(d):
                    x = X[s + i, f] - shift[f]
                    diff = x - centers[best, f]
                    dist += diff * diff
                    sums[best, f] += wi * x
                weights[best] += wi
                inertia += wi * dist
                if want_labels:
                    labels[s + i] = best
                    min_dist[s + i] = dist
                if n_top > 0 and dist > top_d[lowest]:
                    top_d[lowest] = dist
                    top_i[lowest] = s + i
                    top_l[lowest] = best
                    for j in range(n_top):
                        if top_d[j] < top_d[lowest]:
                            lowest = j
        return sums, weights, inertia, top_d, top_i, top_l


if HAVE_NUMBA:
    # No fastmath: its loops vectorise without it (they run along rows, no reductions),
    # and with it the exact distance below came out 8e-28 instead of 0 for a row on its
    # center, depending on where the row lay in the chunk.
    @njit(cache=True, nogil=True)
    def _lloyd_wide(
        X, w, has_w, shift, centers, neg2_c, cc_shift, n_top, want_labels, labels, min_dist
    ):  # type: ignore[no-untyped-def]
        # Same contract as _lloyd_blas; ``neg2_c`` is −2·centers, (K, D).
        n, d = X.shape
        k = centers.shape[0]
        sums = np.zeros((k, d))
        weights = np.zeros(k)
        inertia = 0.0
        top_d = np.full(max(n_top, 1), -1.0)
        top_i = np.full(max(n_top, 1), -1, dtype=np.intp)
        top_l = np.full(max(n_top, 1), -1, dtype=np.intp)
        xt = np.empty((d, _BLOCK))  # the block, feature-major
        gt = np.empty((k, _BLOCK))  # −2 x·c, cluster-major
        sq = np.empty(_BLOCK)
        bv = np.empty(_BLOCK)
        best = np.empty(_BLOCK, dtype=np.intp)
        lowest = 0
        for s in range(0, n, _BLOCK):
            m = min(n, s + _BLOCK) - s
            if m < _BLOCK:
                xt = np.empty((d, m))
                gt = np.empty((k, m))
            Xb = X[s : s + m]
            for i in range(m):
                for f in range(d):
                    xt[f, i] = Xb[i, f]
            np.dot(neg2_c, xt, gt)
            for i in range(m):
                sq[i] = 0.0
            for f in range(d):
                sf = shift[f]
                xf = xt[f]
                for i in range(m):
                    t = xf[i] - sf
                    sq[i] += t * t
            c0 = cc_shift[0]
            g0 = gt[0]
            for i in range(m):
                bv[i] = g0[i] + c0
                best[i] = 0
            for j in range(1, k):  # along rows: vector lanes; the first minimum wins ties
                cj = cc_shift[j]
                gj = gt[j]
                for i in range(m):
                    v = gj[i] + cj
                    better = v < bv[i]
                    bv[i] = v if better else bv[i]
                    best[i] = j if better else best[i]
            for i in range(m):
                bv[i] = max(sq[i] + bv[i], 0.0)  # the fold's squared distance
            for i in range(m):
                b = best[i]
                wi = w[s + i] if has_w else 1.0
                xr = Xb[i]
                sr = sums[b]
                for f in range(d):
                    sr[f] += wi * (xr[f] - shift[f])
                weights[b] += wi
                dist = bv[i]
                if want_labels or (n_top > 0 and dist > top_d[lowest]):
                    cr = centers[b]
                    dist = 0.0  # exact, where the distance is kept
                    for f in range(d):
                        diff = (xr[f] - shift[f]) - cr[f]
                        dist += diff * diff
                inertia += wi * dist
                if want_labels:
                    labels[s + i] = b
                    min_dist[s + i] = dist
                if n_top > 0 and dist > top_d[lowest]:
                    top_d[lowest] = dist
                    top_i[lowest] = s + i
                    top_l[lowest] = b
                    for j in range(n_top):
                        if top_d[j] < top_d[lowest]:
                            lowest = j
        return sums, weights, inertia, top_d, top_i, top_l


def _lloyd_numpy(
    X: NDArray[Any],
    w: NDArray[np.float64] | None,
    shift: NDArray[np.float64],
    centers: NDArray[np.float64],
    n_top: int,
) -> tuple[Any, ...]:
    n = X.shape[0]
    k = centers.shape[0]
    xs = X - shift
    g = xs @ (-2.0 * centers.T)
    g += np.einsum("ij,ij->i", centers, centers)
    labels = np.argmin(g, axis=1)
    diff = xs - centers[labels]
    dist = np.einsum("ij,ij->i", diff, diff)
    wv = np.ones(n) if w is None else w
    onehot = sp.csr_matrix((wv, (labels, np.arange(n))), shape=(k, n))
    sums = np.asarray(onehot @ xs, dtype=np.float64)
    weights = np.bincount(labels, weights=wv, minlength=k).astype(np.float64)
    inertia = float(dist @ wv)
    m = min(n_top, n)
    top = np.argpartition(dist, n - m)[n - m :] if m else np.empty(0, dtype=np.intp)
    return sums, weights, inertia, dist[top], top, labels[top], labels, dist


def assign_chunk(
    X: NDArray[Any],
    w: NDArray[np.float64] | None,
    shift: NDArray[np.float64],
    centers: NDArray[np.float64],
    *,
    n_top: int,
    want_labels: bool = False,
    use_numba: bool = HAVE_NUMBA,
) -> ChunkResult:
    """Nearest centers of one chunk and what Lloyd's M-step needs from it.

    ``centers`` are in the shifted coordinates (``center − shift``). Rows keep only the
    ``n_top`` largest squared distances to their centers (candidates to re-seed empty
    clusters), so nothing of size rows × clusters outlives the call.
    """
    n = X.shape[0]
    if use_numba and HAVE_NUMBA:
        # float32 rows are computed in float64 (a chunk-sized copy), as float64 ones are.
        Xc = np.ascontiguousarray(X, dtype=np.float64)
        labels = np.empty(n if want_labels else 0, dtype=np.intp)
        min_dist = np.empty(n if want_labels else 0)
        wv = np.empty(0) if w is None else np.ascontiguousarray(w, dtype=np.float64)
        centers = np.ascontiguousarray(centers, dtype=np.float64)
        cc = np.einsum("ij,ij->i", centers, centers) + 2.0 * (centers @ shift)
        k, d = centers.shape
        wide = k >= WIDE_MIN_K and d <= WIDE_MAX_D
        kernel = _lloyd_wide if wide else _lloyd_blas
        sums, weights, inertia, top_d, top_i, top_l = kernel(
            Xc,
            wv,
            w is not None,
            shift,
            centers,
            np.ascontiguousarray(-2.0 * (centers if wide else centers.T)),
            cc,
            n_top,
            want_labels,
            labels,
            min_dist,
        )
        keep = top_i >= 0
        return ChunkResult(
            sums,
            weights,
            float(inertia),
            top_d[keep],
            top_i[keep],
            top_l[keep],
            labels if want_labels else None,
            min_dist if want_labels else None,
        )
    sums, weights, inertia, top_d, top_i, top_l, labels, dist = _lloyd_numpy(
        X, w, shift, centers, n_top
    )
    return ChunkResult(
        sums,
        weights,
        inertia,
        top_d,
        top_i,
        top_l,
        labels if want_labels else None,
        dist if want_labels else None,
    )
