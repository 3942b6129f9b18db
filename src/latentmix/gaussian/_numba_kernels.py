"""Fused Numba loops for the E-step, where memory traffic, not arithmetic, is the limit.

Each function does in one pass over a cache-sized chunk what NumPy would do in several
(subtract, square, reduce; max, subtract; sum, log, divide), or, for few features, the
whole log-density and the whole statistics accumulation without any N×K×D temporary.
They release the GIL, so the two-thread chunk pool of ``ArrayData.reduce`` runs them on
both cores. Exponentials stay with NumPy, whose SIMD ``exp`` beats Numba's scalar libm.

Everything here is optional: without Numba, ``HAVE_NUMBA`` is False and the callers use
their NumPy formulas, which compute the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "HAVE_NUMBA",
    "colmax_subtract",
    "colmax_subtract_rows",
    "diag_design",
    "full_logprob_direct",
    "full_stats_direct",
    "normalize_cols",
    "normalize_rows",
    "rowmax_subtract",
    "smallest",
    "stacked_sq",
]

try:  # pragma: no cover - exercised by whichever environment runs the tests
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False


#: Rows per block inside the loops: a block's working set stays in the L1 cache.
_BLOCK = 128


def _jit(fn: Callable[..., Any]) -> Callable[..., Any]:
    if not HAVE_NUMBA:
        return fn
    # cache=True: compiled once per machine, so small fits never pay the compile time.
    return numba.njit(cache=True, nogil=True, boundscheck=False)(fn)  # type: ignore[no-any-return]


def _jit_sum(fn: Callable[..., Any]) -> Callable[..., Any]:
    """As ``_jit``, letting long sums be reassociated so that they vectorise.

    Only reassociation and fused multiply-add: NaN and infinity keep their meaning.
    """
    if not HAVE_NUMBA:
        return fn
    flags = {"reassoc", "contract"}
    return numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=flags)(fn)  # type: ignore[no-any-return]


@_jit_sum
def stacked_sq(Y: Any, b: Any, const: Any, n_components: int, out: Any) -> None:  # pragma: no cover
    """out[k, i] = const[k] − ½ Σ_d (Y[i, kD + d] − b[kD + d])², with Y the stacked product.

    ``out`` is component-major (K, n); pass ``A.T`` to fill a row-major (n, K) array ``A``.
    The sums run in Y's dtype, as do ``b`` and ``const`` (a float64 literal would turn a
    float32 loop into a float64 one, at half the vector width).
    """
    n = Y.shape[0]
    d = Y.shape[1] // n_components
    zero = np.zeros(1, dtype=Y.dtype)[0]
    half = np.full(1, 0.5, dtype=Y.dtype)[0]
    for i in range(n):
        for k in range(n_components):
            s = zero
            base = k * d
            for j in range(d):
                t = Y[i, base + j] - b[base + j]
                s += t * t
            out[k, i] = const[k] - half * s


@_jit_sum
def diag_design(X: Any, shift: Any, Q: Any, spherical: bool) -> None:  # pragma: no cover
    """Q = [z² | z | 1] (diag) or [‖z‖² | z | 1] (spherical), z = x − shift, in one pass."""
    n, d = X.shape
    one = np.ones(1, dtype=Q.dtype)[0]
    if spherical:
        for i in range(n):
            sq = np.zeros(1, dtype=Q.dtype)[0]
            for f in range(d):
                z = X[i, f] - shift[f]
                Q[i, 1 + f] = z
                sq += z * z
            Q[i, 0] = sq
            Q[i, 1 + d] = one
    else:
        for i in range(n):
            for f in range(d):
                z = X[i, f] - shift[f]
                Q[i, d + f] = z
                Q[i, f] = z * z
            Q[i, 2 * d] = one


@_jit
def smallest(s: Any, w: Any, idx: Any) -> int:  # pragma: no cover
    """Indices of the ``len(idx)`` smallest entries of ``s`` into ``idx``; returns how many.

    Entries with weight ``w <= 0`` (when ``w`` is not empty) and NaN count as +inf. Ties
    go to the earlier entry, as in a stable sort. One pass, the kept values in a small
    array.
    """
    n = s.shape[0]
    keep = idx.shape[0]
    weighted = w.shape[0] > 0
    vals = np.empty(keep, dtype=np.float64)
    m = 0
    slot = 0  # where the largest kept value sits, once the array is full
    for i in range(n):
        v = float(s[i])
        if (weighted and not (w[i] > 0.0)) or v != v:
            v = np.inf
        if m < keep:
            idx[m] = i
            vals[m] = v
            m += 1
            if m < keep:
                continue
        elif v < vals[slot]:
            idx[slot] = i
            vals[slot] = v
        else:
            continue
        slot = 0  # the largest kept value; of equal ones the latest row, to go first
        for j in range(1, keep):
            if vals[j] > vals[slot] or (vals[j] == vals[slot] and idx[j] > idx[slot]):
                slot = j
    return m


@_jit
def rowmax_subtract(A: Any, top: Any) -> None:  # pragma: no cover
    """In place: subtract each row's maximum (0 where it is not finite); store it in ``top``."""
    n, k = A.shape
    for i in range(n):
        m = A[i, 0]
        for j in range(1, k):
            if A[i, j] > m:
                m = A[i, j]
        if not (m > -1e308 and m < 1e308):
            m = 0.0
        top[i] = m
        for j in range(k):
            A[i, j] -= m


@_jit_sum
def normalize_rows(E: Any, top: Any, w: Any, norm: Any) -> None:  # pragma: no cover
    """In place: E (exponentials) → weighted responsibilities; norm = Σ_k E (0 if not > 0).

    The caller finishes log p(x) = top + log(norm) with NumPy, whose vector ``log`` is ten
    times faster than a scalar one per row here.

    ``w`` holds the sample weights, or has length 0 for unit weights.
    """
    n, k = E.shape
    weighted = w.shape[0] > 0
    for i in range(n):
        s = 0.0
        for j in range(k):
            s += E[i, j]
        if s > 0.0:
            norm[i] = s
            scale = 1.0 / s
        else:
            norm[i] = 0.0
            scale = 0.0
        if weighted:
            scale *= w[i]
        for j in range(k):
            E[i, j] *= scale


@_jit
def colmax_subtract(A: Any, top: Any) -> None:  # pragma: no cover
    """In place: subtract each column's maximum (0 where it is not finite); store it in ``top``.

    As ``rowmax_subtract`` for a component-major (K, n) ``A``: every loop runs over rows,
    contiguous, and vectorises, so float32 gets twice the lanes of float64 (the row-major
    version compares K scattered numbers per row, at the same cost in both).
    """
    k, n = A.shape
    zero = np.zeros(1, dtype=top.dtype)[0]
    inf = np.full(1, np.inf, dtype=top.dtype)[0]
    for i in range(n):
        top[i] = A[0, i]
    for j in range(1, k):
        for i in range(n):
            v = A[j, i]
            top[i] = v if v > top[i] else top[i]
    for i in range(n):
        t = top[i]
        top[i] = t if (t > -inf and t < inf) else zero
    for j in range(k):
        for i in range(n):
            A[j, i] -= top[i]


@_jit
def colmax_subtract_rows(L: Any, A: Any, top: Any) -> None:  # pragma: no cover
    """As ``colmax_subtract``, from a row-major (n, K) ``L`` into a component-major ``A``.

    The transpose goes by blocks of rows through a small buffer that stays in the L1
    cache; written straight into ``A``, its scattered stores ran three times slower.
    """
    n, k = L.shape
    dt = L.dtype
    zero = np.zeros(1, dtype=dt)[0]
    inf = np.full(1, np.inf, dtype=dt)[0]
    buf = np.empty((k, _BLOCK), dtype=dt)
    tp = np.empty(_BLOCK, dtype=dt)
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        Lb = L[start : start + m]
        for i in range(m):
            for j in range(k):
                buf[j, i] = Lb[i, j]
        for i in range(m):
            tp[i] = buf[0, i]
        for j in range(1, k):
            for i in range(m):
                v = buf[j, i]
                tp[i] = v if v > tp[i] else tp[i]
        tb = top[start : start + m]
        for i in range(m):
            t = tp[i]
            t = t if (t > -inf and t < inf) else zero
            tp[i] = t
            tb[i] = t
        for j in range(k):
            Ab = A[j, start : start + m]
            for i in range(m):
                Ab[i] = buf[j, i] - tp[i]


@_jit_sum
def normalize_cols(E: Any, w: Any, norm: Any, nk: Any) -> None:  # pragma: no cover
    """As ``normalize_rows`` for a component-major (K, n) ``E``; also adds Σ_i E[k, i] to nk.

    ``norm`` (n,) receives the column sums (0 where not > 0) and ``E`` becomes the weighted
    responsibilities, whose row sums are added into ``nk`` in float64. The sums are loops
    of their own: a loop that both stores and sums did not vectorise (4× slower).
    """
    k, n = E.shape
    dt = E.dtype
    zero = np.zeros(1, dtype=dt)[0]
    one = np.ones(1, dtype=dt)[0]
    weighted = w.shape[0] > 0
    for i in range(n):
        norm[i] = zero
    for j in range(k):
        for i in range(n):
            norm[i] += E[j, i]
    scale = np.empty(n, dtype=dt)
    for i in range(n):
        t = norm[i]
        pos = t > zero
        norm[i] = t if pos else zero
        sc = one / t if pos else zero
        scale[i] = sc * w[i] if weighted else sc
    for j in range(k):
        for i in range(n):
            E[j, i] *= scale[i]
    for j in range(k):
        acc = 0.0
        for i in range(n):
            acc += np.float64(E[j, i])
        nk[j] += acc


@_jit
def full_logprob_direct(
    X: Any, shift: Any, C: Any, P: Any, const: Any, out: Any, top: Any
) -> None:  # pragma: no cover
    """out[k, i] = const[k] − ½ |(x_i − s − c_k) P_k|² for few features (P_k dense).

    ``out`` is component-major (K, n), as the E-step keeps it; pass ``A.T`` to fill a
    row-major (n, K) array ``A``. Rows go in blocks, transposed to feature-major, so every
    inner loop runs over rows and vectorises; ``shift``, ``C``, ``P`` and ``const`` come
    in X's dtype, and so does every constant here (a float64 literal would make a float32
    loop run in float64). If ``top`` is not empty, each row's maximum (0 where not
    finite) is subtracted and stored there.
    """
    n, d = X.shape
    kk = C.shape[0]
    dt = X.dtype
    zero = np.zeros(1, dtype=dt)[0]
    half = np.full(1, 0.5, dtype=dt)[0]
    inf = np.full(1, np.inf, dtype=dt)[0]
    zt = np.empty((d, _BLOCK), dtype=dt)
    dk = np.empty((d, _BLOCK), dtype=dt)
    y = np.empty(_BLOCK, dtype=dt)
    acc = np.empty(_BLOCK, dtype=dt)
    blk = np.empty((kk, _BLOCK), dtype=dt)
    tp = np.empty(_BLOCK, dtype=dt)
    want_top = top.shape[0] > 0
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        Xb = X[start : start + m]
        for i in range(m):
            for a in range(d):
                zt[a, i] = Xb[i, a] - shift[a]
        for k in range(kk):
            for a in range(d):
                c = C[k, a]
                for i in range(m):
                    dk[a, i] = zt[a, i] - c
            for i in range(m):
                acc[i] = zero
            for j in range(d):
                for i in range(m):
                    y[i] = zero
                for a in range(d):
                    p = P[k, a, j]
                    if p != zero:  # P_k is triangular: half the work
                        for i in range(m):
                            y[i] += p * dk[a, i]
                for i in range(m):
                    acc[i] += y[i] * y[i]
            ck = const[k]
            for i in range(m):
                blk[k, i] = ck - half * acc[i]
        if want_top:
            for i in range(m):
                tp[i] = blk[0, i]
            for k in range(1, kk):
                for i in range(m):
                    v = blk[k, i]
                    tp[i] = v if v > tp[i] else tp[i]
            tb = top[start : start + m]
            for i in range(m):
                t = tp[i]
                t = t if (t > -inf and t < inf) else zero
                tp[i] = t
                tb[i] = t
            for k in range(kk):
                ob = out[k, start : start + m]
                for i in range(m):
                    ob[i] = blk[k, i] - tp[i]
        else:
            for k in range(kk):
                ob = out[k, start : start + m]
                for i in range(m):
                    ob[i] = blk[k, i]


@_jit_sum
def full_stats_direct(
    X: Any,
    shift: Any,
    R: Any,
    top: Any,
    w: Any,
    C: Any,
    nk: Any,
    s1: Any,
    s2: Any,
    norm: Any,
) -> None:  # pragma: no cover
    """Add Σ r, Σ r z and Σ r (z − c_k)(z − c_k)ᵀ (z = x − s) of a chunk into nk, s1, s2.

    ``R`` is component-major (K, n) (pass ``A.T`` for a row-major ``A``). If ``norm`` is
    not empty, ``R`` holds exp(log π_k p_k(x) − top) and is turned into responsibilities
    on the fly (times ``w`` unless it is empty), with log p(x) written to ``norm`` as the
    row sum, for the caller to finish as top + log(norm), as in ``normalize_rows``;
    otherwise ``R`` holds the (weighted) responsibilities. ``shift`` and ``C`` come in X's
    dtype. Sums run feature-major over blocks of ``_BLOCK`` rows in X's dtype (short sums:
    float32 loses nothing that matters there) and are added up in float64 across blocks.
    """
    n, d = X.shape
    kk = C.shape[0]
    dt = X.dtype
    zero = np.zeros(1, dtype=dt)[0]  # block sums in X's dtype, then added in float64
    one = np.ones(1, dtype=dt)[0]
    zt = np.empty((d, _BLOCK), dtype=dt)
    dv = np.empty((d, _BLOCK), dtype=dt)
    rdv = np.empty((d, _BLOCK), dtype=dt)
    r = np.empty(_BLOCK, dtype=dt)
    tot = np.empty(_BLOCK, dtype=dt)
    scale = np.ones(_BLOCK, dtype=dt)
    normalize = norm.shape[0] > 0
    weighted = w.shape[0] > 0
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        # Blocks are sliced, never indexed as [start + i]: Numba cannot tell that such an
        # index is not negative, and its wraparound test kept the loops from vectorising.
        Xb = X[start : start + m]
        for i in range(m):
            for a in range(d):
                zt[a, i] = Xb[i, a] - shift[a]
        if normalize:
            for i in range(m):
                tot[i] = zero
            for k in range(kk):
                Rk = R[k, start : start + m]
                for i in range(m):
                    tot[i] += Rk[i]
            nb = norm[start : start + m]
            for i in range(m):
                t = tot[i]
                pos = t > zero
                nb[i] = t if pos else zero
                scale[i] = one / t if pos else zero
            if weighted:
                wb = w[start : start + m]
                for i in range(m):
                    scale[i] *= wb[i]
        for k in range(kk):
            # Loops that store and loops that sum are kept apart: together they did not
            # vectorise. Σ r z = Σ r (z − c) + c Σ r.
            Rk = R[k, start : start + m]
            for i in range(m):
                r[i] = Rk[i] * scale[i]
            t = zero
            for i in range(m):
                t += r[i]
            nk[k] += t
            rsum = t
            for a in range(d):
                c = C[k, a]
                for i in range(m):
                    v = zt[a, i] - c
                    dv[a, i] = v
                    rdv[a, i] = r[i] * v
                t = zero
                for i in range(m):
                    t += rdv[a, i]
                s1[k, a] += t + c * rsum
            for a in range(d):
                for b in range(a, d):
                    t = zero
                    for i in range(m):
                        t += rdv[a, i] * dv[b, i]
                    s2[k, a, b] += t
    for k in range(kk):
        for a in range(d):
            for b in range(a + 1, d):
                s2[k, b, a] = s2[k, a, b]
