"""Chunk kernels for Lloyd's algorithm: nearest center, per-cluster sums, farthest rows.

Two implementations of one contract. With Numba, a serial kernel (the EM engine spreads
chunks over the cores) runs over blocks of 64 rows: the block's products ``-2 x·c`` come
from one BLAS ``gemm`` on the rows as they are (Numba's ``np.dot``; the shift is folded
into the per-center constant, see below); the argmin, the exact squared distance to the
winning center and the accumulation follow while the block is still in cache, in steps of
eight lanes written out in LLVM IR (``_min8``, ``_axpy8``, ``_sqdist8``). float32
rows are converted to float64 per chunk, so both dtypes decide the nearest center alike.
Without Numba the same quantities come from NumPy and a sparse one-hot product per chunk.
All work on rows shifted by ``shift`` (the mean of the training data) so that
``‖x‖² − 2x·c + ‖c‖²`` does not lose digits far from the origin.

The fold: with centers ``c`` in shifted coordinates, ``‖c‖² − 2(x − s)·c = −2x·c +
(‖c‖² + 2s·c)``. Both sides round ``x`` at the same scale (``x − s`` rounds at ``ε|s|``,
``x·c`` at ``ε|x||c|``), so deciding the nearest center from the right-hand side costs no
accuracy, and the distance and sums are still computed from ``x − s``.
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


if HAVE_NUMBA:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic as _typed_intrinsic

    intrinsic: Any = _typed_intrinsic  # its typing context is not an argument at call sites

    # Eight float64 lanes, written out in LLVM IR. Numba's loops over one row's K
    # products or D features stayed scalar: with a runtime length of 16, LLVM's vector
    # body (8 lanes x 4) never ran and the scalar remainder did all the work. An AVX-512
    # machine runs each as one instruction; LLVM splits them into halves elsewhere.
    _LANES = 8
    _VEC = ir.VectorType(ir.DoubleType(), _LANES)
    _I32 = ir.IntType(32)

    def _is_f64_array(a: Any) -> bool:
        return isinstance(a, types.Array) and a.dtype == types.float64 and a.ndim == 1

    def _load8(context: Any, builder: Any, arrty: Any, arr: Any, idx: Any) -> tuple[Any, Any]:
        """The 8 doubles of a 1-D array from ``idx`` on, and their address."""
        data = context.make_array(arrty)(context, builder, arr).data
        ptr = builder.bitcast(builder.gep(data, [idx]), _VEC.as_pointer())
        return builder.load(ptr, align=8), ptr

    def _splat(builder: Any, x: Any) -> Any:
        v = builder.insert_element(ir.Constant(_VEC, ir.Undefined), x, ir.Constant(_I32, 0))
        mask = ir.Constant(ir.VectorType(_I32, _LANES), [0] * _LANES)
        return builder.shuffle_vector(v, ir.Constant(_VEC, ir.Undefined), mask)

    def _fold(builder: Any, v: Any, combine: Any) -> Any:
        """Lane 0 of a fixed pairwise tree over the 8 lanes (4+4, 2+2, 1+1)."""
        n = _LANES // 2
        while n >= 1:
            lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, n), list(range(n))))
            hi = builder.shuffle_vector(
                v, v, ir.Constant(ir.VectorType(_I32, n), list(range(n, 2 * n)))
            )
            v = combine(lo, hi)
            n //= 2
        return builder.extract_element(v, ir.Constant(_I32, 0))

    @intrinsic
    def _min8(typingctx: Any, g: Any, gi: Any, c: Any, ci: Any) -> Any:
        """(min, first lane where it is) of ``g[gi:gi+8] + c[ci:ci+8]``."""
        if not (_is_f64_array(g) and _is_f64_array(c)):
            return None
        rtype = types.Tuple((types.float64, types.intp))

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            s = builder.fadd(
                _load8(context, builder, sig.args[0], args[0], args[1])[0],
                _load8(context, builder, sig.args[2], args[2], args[3])[0],
            )
            # A select tree, not llvm.vector.reduce.fmin (whose NaN rules cost 3x here).
            mn = _fold(
                builder, s, lambda a, b: builder.select(builder.fcmp_ordered("<", b, a), b, a)
            )
            hits = builder.bitcast(
                builder.fcmp_ordered("==", s, _splat(builder, mn)), ir.IntType(8)
            )
            cttz = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(ir.IntType(8), [ir.IntType(8), ir.IntType(1)]),
                "llvm.cttz.i8",
            )
            # cttz(0) is 8, not poison: with a NaN lane nothing may match, and the caller's
            # ``v < bv`` (False for NaN) then ignores the lane.
            lane = builder.zext(
                builder.call(cttz, [hits, ir.Constant(ir.IntType(1), 0)]), ir.IntType(64)
            )
            return context.make_tuple(builder, rtype, [mn, lane])

        return rtype(g, gi, c, ci), codegen

    @intrinsic
    def _axpy8(typingctx: Any, dst: Any, di: Any, x: Any, xi: Any, sh: Any, w: Any) -> Any:
        """``dst[di:di+8] += w * (x[xi:xi+8] − sh[0:8])`` (``sh`` a view at the lanes)."""
        if not (_is_f64_array(dst) and _is_f64_array(x) and _is_f64_array(sh)):
            return None

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            zero = context.get_constant(types.intp, 0)
            acc, ptr = _load8(context, builder, sig.args[0], args[0], args[1])
            xv = _load8(context, builder, sig.args[2], args[2], args[3])[0]
            sv = _load8(context, builder, sig.args[4], args[4], zero)[0]
            step = builder.fmul(_splat(builder, args[5]), builder.fsub(xv, sv))
            builder.store(builder.fadd(acc, step), ptr, align=8)
            return context.get_dummy_value()

        return types.none(dst, di, x, xi, sh, w), codegen

    @intrinsic
    def _sqdist8(typingctx: Any, x: Any, xi: Any, sh: Any, c: Any, ci: Any) -> Any:
        """``Σ ((x[xi:xi+8] − sh[0:8]) − c[ci:ci+8])²``, summed in a fixed pairwise tree."""
        if not (_is_f64_array(x) and _is_f64_array(sh) and _is_f64_array(c)):
            return None

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            zero = context.get_constant(types.intp, 0)
            xv = _load8(context, builder, sig.args[0], args[0], args[1])[0]
            sv = _load8(context, builder, sig.args[2], args[2], zero)[0]
            cv = _load8(context, builder, sig.args[3], args[3], args[4])[0]
            e = builder.fsub(builder.fsub(xv, sv), cv)
            return _fold(builder, builder.fmul(e, e), builder.fadd)

        return types.float64(x, xi, sh, c, ci), codegen

    @njit(cache=True, nogil=True)
    def _lloyd_rows(
        X, w, has_w, shift, centers, neg2_ct, cc_shift, n_top, want_labels, labels, min_dist
    ):  # type: ignore[no-untyped-def]
        # ``cc_shift`` is ‖c‖² + 2 s·c (the fold in the module docstring). Arrays are
        # walked flat, in 8-lane steps (_min8, _axpy8, _sqdist8) and a scalar remainder.
        n, d = X.shape
        k = centers.shape[0]
        k8 = k - k % _LANES
        d8 = d - d % _LANES
        sums = np.zeros((k, d))
        weights = np.zeros(k)
        inertia = 0.0
        top_d = np.full(max(n_top, 1), -1.0)
        top_i = np.full(max(n_top, 1), -1, dtype=np.intp)
        top_l = np.full(max(n_top, 1), -1, dtype=np.intp)
        g = np.empty((_BLOCK, k))
        gf = g.reshape(-1)
        xf = X.reshape(-1)
        sf = sums.reshape(-1)
        cf = centers.reshape(-1)
        best = np.empty(_BLOCK, dtype=np.intp)
        dist = np.empty(_BLOCK)
        wb = np.ones(_BLOCK)
        lowest = 0
        for s in range(0, n, _BLOCK):
            m = min(n, s + _BLOCK) - s
            np.dot(X[s : s + m], neg2_ct, g[:m])
            for i in range(m):  # nearest center; the first minimum wins ties
                gi = i * k
                bv = np.inf
                b = 0
                for j0 in range(0, k8, _LANES):
                    v, lane = _min8(gf, gi + j0, cc_shift, j0)
                    better = v < bv
                    bv = v if better else bv
                    b = j0 + lane if better else b
                for j in range(k8, k):
                    v = gf[gi + j] + cc_shift[j]
                    better = v < bv
                    bv = v if better else bv
                    b = j if better else b
                best[i] = b
            if has_w:
                wb[:m] = w[s : s + m]
            for i in range(m):  # sums and the exact squared distance to the winner
                b = best[i]
                wi = wb[i]
                xo = (s + i) * d
                co = b * d
                q = 0.0
                for f0 in range(0, d8, _LANES):
                    q += _sqdist8(xf, xo + f0, shift[f0:], cf, co + f0)
                    _axpy8(sf, co + f0, xf, xo + f0, shift[f0:], wi)
                for f in range(d8, d):
                    x = xf[xo + f] - shift[f]
                    diff = x - cf[co + f]
                    q += diff * diff
                    sf[co + f] += wi * x
                dist[i] = q
                weights[b] += wi
            part = 0.0
            far = -1.0
            for i in range(m):  # block-wise, off the per-row dependency chain
                part += wb[i] * dist[i]
                far = max(far, dist[i])
            inertia += part
            if want_labels:
                labels[s : s + m] = best[:m]
                min_dist[s : s + m] = dist[:m]
            if n_top > 0 and far > top_d[lowest]:
                for i in range(m):
                    if dist[i] > top_d[lowest]:
                        top_d[lowest] = dist[i]
                        top_i[lowest] = s + i
                        top_l[lowest] = best[i]
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
        sums, weights, inertia, top_d, top_i, top_l = _lloyd_rows(
            Xc,
            wv,
            w is not None,
            shift,
            centers,
            np.ascontiguousarray(-2.0 * centers.T),
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
