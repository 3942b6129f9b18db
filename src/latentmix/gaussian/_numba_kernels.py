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
    "diag_design",
    "full_logprob_direct",
    "full_stats_direct",
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
    """out[i, k] = const[k] − ½ Σ_d (Y[i, kD + d] − b[kD + d])², with Y the stacked product."""
    n = Y.shape[0]
    d = Y.shape[1] // n_components
    for i in range(n):
        for k in range(n_components):
            s = 0.0
            base = k * d
            for j in range(d):
                t = Y[i, base + j] - b[base + j]
                s += t * t
            out[i, k] = const[k] - 0.5 * s


@_jit_sum
def diag_design(X: Any, shift: Any, Q: Any, spherical: bool) -> None:  # pragma: no cover
    """Q = [z² | z | 1] (diag) or [‖z‖² | z | 1] (spherical), z = x − shift, in one pass."""
    n, d = X.shape
    m = 1 if spherical else d
    for i in range(n):
        sq = 0.0
        for f in range(d):
            z = X[i, f] - shift[f]
            Q[i, m + f] = z
            if spherical:
                sq += z * z
            else:
                Q[i, f] = z * z
        if spherical:
            Q[i, 0] = sq
        Q[i, m + d] = 1.0


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
def full_logprob_direct(
    X: Any, shift: Any, C: Any, P: Any, const: Any, out: Any, top: Any
) -> None:  # pragma: no cover
    """out[i, k] = const[k] − ½ |(x_i − s − c_k) P_k|² for few features (P_k dense).

    Rows go in blocks, transposed to feature-major, so every inner loop runs over rows and
    vectorises; ``shift``, ``C``, ``P`` and ``const`` come in X's dtype. If ``top`` is not
    empty, each row's maximum (0 where not finite) is subtracted and stored there.
    """
    n, d = X.shape
    kk = C.shape[0]
    zt = np.empty((d, _BLOCK), dtype=X.dtype)
    dk = np.empty((d, _BLOCK), dtype=X.dtype)
    y = np.empty(_BLOCK, dtype=X.dtype)
    acc = np.empty(_BLOCK, dtype=X.dtype)
    want_top = top.shape[0] > 0
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        for i in range(m):
            for a in range(d):
                zt[a, i] = X[start + i, a] - shift[a]
        for k in range(kk):
            for a in range(d):
                c = C[k, a]
                for i in range(m):
                    dk[a, i] = zt[a, i] - c
            acc[:m] = 0.0
            for j in range(d):
                y[:m] = 0.0
                for a in range(d):
                    p = P[k, a, j]
                    if p != 0.0:  # P_k is triangular: half the work
                        for i in range(m):
                            y[i] += p * dk[a, i]
                for i in range(m):
                    acc[i] += y[i] * y[i]
            ck = const[k]
            for i in range(m):
                out[start + i, k] = ck - 0.5 * acc[i]
        if want_top:
            for i in range(m):
                row = start + i
                t = out[row, 0]
                for k in range(1, kk):
                    if out[row, k] > t:
                        t = out[row, k]
                if not (t > -np.inf and t < np.inf):
                    t = 0.0
                top[row] = t
                for k in range(kk):
                    out[row, k] -= t


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

    If ``norm`` is not empty, ``R`` holds exp(log π_k p_k(x) − top) and is turned into
    responsibilities on the fly (times ``w`` unless it is empty), with log p(x) written
    to ``norm`` as the row sum, for the caller to finish as top + log(norm), as in
    ``normalize_rows``; otherwise ``R`` holds the (weighted) responsibilities. ``shift`` and
    ``C`` come in X's dtype. Sums run feature-major over blocks of ``_BLOCK`` rows in X's
    dtype (short sums: float32 loses nothing that matters there) and are added up in
    float64 across blocks.
    """
    n, d = X.shape
    kk = C.shape[0]
    dt = X.dtype
    zero = np.zeros(1, dtype=dt)[0]  # block sums in X's dtype, then added in float64
    zt = np.empty((d, _BLOCK), dtype=dt)
    dv = np.empty((d, _BLOCK), dtype=dt)
    rdv = np.empty((d, _BLOCK), dtype=dt)
    r = np.empty(_BLOCK, dtype=dt)
    scale = np.ones(_BLOCK, dtype=dt)
    normalize = norm.shape[0] > 0
    weighted = w.shape[0] > 0
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        for i in range(m):
            for a in range(d):
                zt[a, i] = X[start + i, a] - shift[a]
        if normalize:
            for i in range(m):
                t = zero
                for k in range(kk):
                    t += R[start + i, k]
                if t > 0.0:
                    norm[start + i] = t
                    sc = 1.0 / t
                else:
                    norm[start + i] = zero
                    sc = zero
                scale[i] = sc * w[start + i] if weighted else sc
        for k in range(kk):
            t = zero
            for i in range(m):
                r[i] = R[start + i, k] * scale[i]
                t += r[i]
            nk[k] += t
            for a in range(d):
                c = C[k, a]
                t = zero
                for i in range(m):
                    v = zt[a, i]
                    t += r[i] * v
                    dv[a, i] = v - c
                    rdv[a, i] = r[i] * (v - c)
                s1[k, a] += t
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
