"""Fused Numba loops for the E-step, where memory traffic, not arithmetic, is the limit.

Each function does in one pass over a cache-sized chunk what NumPy would do in several
(subtract, square, reduce; max, subtract; sum, log, divide), or, for few features, the
whole log-density and the whole statistics accumulation without any N×K×D temporary.
They release the GIL, so the two-thread chunk pool of ``ArrayData.reduce`` runs them on
both cores. Exponentials mostly stay with NumPy, whose SIMD ``exp`` beats Numba's scalar
libm; the fused few-feature E-step (``full_estep_direct``) has its own exp that
vectorises (``_exp_block``), so that it needs no pass over the chunk between its loops.

The E-step's arrays are component-major, (K, n): every inner loop then runs over rows,
contiguous, and vectorises, with twice the lanes in float32. Constants are made in the
data's dtype (a float64 literal turns a float32 loop into a float64 one), and blocks of
rows are sliced rather than indexed as ``[start + i]`` (see ``full_logprob_direct``).

Everything here is optional: without Numba, ``HAVE_NUMBA`` is False and the callers use
their NumPy formulas, which compute the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "HAVE_NUMBA",
    "colmax_subtract",
    "colmax_subtract_rows",
    "diag_design",
    "exp_constants",
    "full_estep_direct",
    "full_logprob_direct",
    "full_stats_direct",
    "normalize_cols",
    "normalize_rows",
    "rowmax_subtract",
    "scaled_deviations",
    "smallest",
    "stacked_sq",
]

try:  # pragma: no cover - exercised by whichever environment runs the tests
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False


#: Rows per block inside the loops: a block's working set stays in the L1 cache. The
#: few-feature kernels take blocks of the same bytes, 256 rows in float32, whose loops are
#: then as long in vectors (D=16, K=16, one thread: 400-460 -> 290-300 ms per 1M rows).
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
def stacked_sq(
    Y1: Any, Y2: Any, b1: Any, b2: Any, const: Any, n_components: int, out: Any
) -> None:  # pragma: no cover
    """out[k, i] = const[k] − ½ |(z_i − c_k) P_k|² from stacked products Y1, Y2.

    Component k's columns of (z − c_k) P_k are Y1[i, kH + j] − b1[kH + j] and Y2[i, kG +
    j] − b2[kG + j], H and G the widths per component of Y1 and Y2 (see ``_log_prob``; G
    is 0 when one product holds them all). ``out`` is component-major (K, n); pass ``A.T``
    to fill a row-major (n, K) array ``A``. The sums run in Y's dtype, as do ``b`` and
    ``const`` (a float64 literal would turn a float32 loop into a float64 one, at half the
    vector width).
    """
    n = Y1.shape[0]
    h1 = Y1.shape[1] // n_components
    h2 = Y2.shape[1] // n_components
    zero = np.zeros(1, dtype=Y1.dtype)[0]
    half = np.full(1, 0.5, dtype=Y1.dtype)[0]
    for i in range(n):
        for k in range(n_components):
            s = zero
            base = k * h1
            for j in range(h1):
                t = Y1[i, base + j] - b1[base + j]
                s += t * t
            base = k * h2
            for j in range(h2):
                t = Y2[i, base + j] - b2[base + j]
                s += t * t
            out[k, i] = const[k] - half * s


@_jit_sum
def diag_design(X: Any, shift: Any, Q: Any, spherical: bool) -> None:  # pragma: no cover
    """Q = [z² | z | 1] (diag) or [‖z‖² | z | 1] (spherical), z = x − shift, in one pass.

    ``Q`` is C-contiguous. Both arrays are walked flat, with row offsets written in terms
    of D: indexed as Q[i, f], or with the row width read from Q's shape, the loop ran at
    a third of the speed (LLVM could not tell the two stores of a row apart).
    """
    n, d = X.shape
    one = np.ones(1, dtype=Q.dtype)[0]
    xf = X.ravel()  # a view of a C-contiguous X (a copy otherwise, only read)
    qf = Q.ravel()  # a view: Q is C-contiguous
    zero = np.zeros(1, dtype=Q.dtype)[0]
    if spherical:
        for i in range(n):
            xo = i * d
            qo = i * (d + 2)
            sq = zero
            for f in range(d):  # the sum alone: with the stores it did not vectorise
                z = xf[xo + f] - shift[f]
                sq += z * z
            for f in range(d):
                qf[qo + 1 + f] = xf[xo + f] - shift[f]
            qf[qo] = sq
            qf[qo + 1 + d] = one
    else:
        for i in range(n):
            xo = i * d
            qo = i * (2 * d + 1)
            for f in range(d):
                z = xf[xo + f] - shift[f]
                qf[qo + d + f] = z
                qf[qo + f] = z * z
            qf[qo + 2 * d] = one


@_jit
def scaled_deviations(Z: Any, c: Any, r: Any, A: Any) -> None:  # pragma: no cover
    """A[i] = r[i] · (Z[i] − c), in one pass: the M-step's √r (z − c_k) of one component.

    NumPy's subtract then multiply (two passes over the n × D chunk, per component) cost
    about as much as the M-step's products on this session's Xeon: with this pass the
    statistics of D=64, K=32 (1024-row chunks, 100k rows, one thread) took 524 ms instead
    of 823. The same two roundings, so the same numbers as NumPy. Z and A are C-contiguous.
    """
    n, d = Z.shape
    zf = Z.ravel()
    af = A.ravel()
    for i in range(n):
        o = i * d
        ri = r[i]
        for a in range(d):
            af[o + a] = ri * (zf[o + a] - c[a])


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
def rowmax_subtract(A: Any, top: Any, lo: Any) -> None:  # pragma: no cover
    """In place: subtract each row's maximum (0 where it is not finite); store it in ``top``.

    Differences below ``lo`` (a scalar of A's dtype) become −inf, so that their exp is 0
    rather than subnormal (see ``exp_constants``); ``lo = −inf`` keeps them all. NaN stays.
    """
    n, k = A.shape
    ninf = np.full(1, -np.inf, dtype=A.dtype)[0]
    pinf = np.full(1, np.inf, dtype=A.dtype)[0]
    zero = np.zeros(1, dtype=A.dtype)[0]  # (a float64 0.0 made the float32 loop float64)
    for i in range(n):
        m = A[i, 0]
        for j in range(1, k):
            if A[i, j] > m:
                m = A[i, j]
        if not (m > ninf and m < pinf):
            m = zero
        top[i] = m
        for j in range(k):
            v = A[i, j] - m
            A[i, j] = ninf if v < lo else v


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
def colmax_subtract(A: Any, top: Any, lo: Any) -> None:  # pragma: no cover
    """In place: subtract each column's maximum (0 where it is not finite); store it in ``top``.

    As ``rowmax_subtract`` for a component-major (K, n) ``A`` (with its ``lo``): every loop
    runs over rows, contiguous, and vectorises, so float32 gets twice the lanes of float64
    (the row-major version compares K scattered numbers per row, at the same cost in both).
    """
    k, n = A.shape
    ninf = np.full(1, -np.inf, dtype=A.dtype)[0]
    _block_max(A, n, top)
    for j in range(k):
        for i in range(n):
            v = A[j, i] - top[i]
            A[j, i] = ninf if v < lo else v


@_jit
def colmax_subtract_rows(L: Any, A: Any, top: Any, lo: Any) -> None:  # pragma: no cover
    """As ``colmax_subtract``, from a row-major (n, K) ``L`` into a component-major ``A``.

    The transpose goes by blocks of rows through a small buffer that stays in the L1
    cache; written straight into ``A``, its scattered stores ran three times slower.
    """
    n, k = L.shape
    dt = L.dtype
    buf = np.empty((k, _BLOCK), dtype=dt)
    tp = np.empty(_BLOCK, dtype=dt)
    ninf = np.full(1, -np.inf, dtype=dt)[0]
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        Lb = L[start : start + m]
        for i in range(m):
            for j in range(k):
                buf[j, i] = Lb[i, j]
        _block_max(buf, m, tp)
        tb = top[start : start + m]
        for i in range(m):
            tb[i] = tp[i]
        for j in range(k):
            Ab = A[j, start : start + m]
            for i in range(m):
                v = buf[j, i] - tp[i]
                Ab[i] = ninf if v < lo else v


@_jit_sum
def normalize_cols(E: Any, w: Any, norm: Any, nk: Any) -> None:  # pragma: no cover
    """As ``normalize_rows`` for a component-major (K, n) ``E``; also adds Σ_i E[k, i] to nk.

    ``norm`` (n,) receives the column sums (0 where not > 0) and ``E`` becomes the weighted
    responsibilities, whose row sums are added into ``nk`` in float64. The sums are loops
    of their own: a loop that both stores and sums did not vectorise (4× slower).
    """
    k, n = E.shape
    scale = np.empty(n, dtype=E.dtype)
    _block_normalizers(E, n, w, 0, norm, scale)
    for j in range(k):
        for i in range(n):
            E[j, i] *= scale[i]
    for j in range(k):
        acc = 0.0
        for i in range(n):
            acc += np.float64(E[j, i])
        nk[j] += acc


def _jit_exact(fn: Callable[..., Any]) -> Callable[..., Any]:
    """As ``_jit``, allowing fused multiply-add but no reassociation, which would undo the
    two-constant range reduction of :func:`_exp_block`."""
    if not HAVE_NUMBA:
        return fn
    flags = {"contract"}
    return numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=flags)(fn)  # type: ignore[no-any-return]


def exp_constants(dtype: Any) -> Any:
    """The constants of :func:`_exp_block` for ``dtype`` (float32 or float64).

    log2(e), ln 2 split in two (hi + lo, Cody and Waite), the cutoff below which the
    result is 0, then the Taylor coefficients 1/j! from the highest degree down: 13 for
    float64 (remainder below 4e-18 on |r| <= ln2/2), 7 for float32 (below its rounding).

    The cutoff (also the E-step's ``lo`` for NumPy's exp, see ``rowmax_subtract``) keeps
    subnormal numbers out of the responsibilities and most products made from them: on
    CPUs that handle subnormals in microcode they cost 10-40x (Intel Xeon, one thread:
    sgemm of 16 x 20k responsibilities, half subnormal, 13.3 ms vs 0.37; np.exp giving
    subnormals 1.56 vs 0.14 ms). It is not where exp itself turns subnormal (e^-87 in
    float32, e^-708 in float64) but about 2^26 above it: e^-69 ≈ 2^-99.5 and e^-690 ≈
    2^-995.5, so that the exp divided by a row sum of up to K, times sample weights or the
    design values, still stays normal in all but extreme cases. What it drops is below
    1e-30 (float32) or 1e-299 (float64) of the row's largest term.
    """
    if np.dtype(dtype) == np.float32:
        base, degree = [1.4426950408889634, 0.693359375, -2.12194440e-4, -69.0], 7
    else:
        base, degree = [1.4426950408889634, 0.6931471803691238, 1.9082149292705877e-10, -690.0], 13
    taylor = [1.0 / math.factorial(j) for j in range(degree, -1, -1)]
    return np.array(base + taylor, dtype=dtype)


if HAVE_NUMBA:  # pragma: no cover - compiled code
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def _exp2_int(typingctx: Any, kf: Any) -> Any:
        """2^kf for an integral float kf in the normal exponent range, from its bits.

        A bit cast in registers, so the loop around it still vectorises (through an
        integer view of an array, the aliasing stores kept it scalar).
        """
        if kf not in (types.float32, types.float64):
            return None

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            if kf == types.float32:
                ity, bias, mant, fty = ir.IntType(32), 127, 23, ir.FloatType()
            else:
                ity, bias, mant, fty = ir.IntType(64), 1023, 52, ir.DoubleType()
            k = builder.fptosi(args[0], ity)
            e = builder.shl(builder.add(k, ir.Constant(ity, bias)), ir.Constant(ity, mant))
            return builder.bitcast(e, fty)

        return kf(kf), codegen

else:  # pragma: no cover

    def _exp2_int(kf: Any) -> Any:  # type: ignore[misc]
        return np.ldexp(np.ones_like(kf), int(kf))


def _inline(fn: Callable[..., Any]) -> Callable[..., Any]:
    """As ``_jit_exact``, inlined into its callers by Numba (so their loops vectorise)."""
    if not HAVE_NUMBA:
        return fn
    flags = {"contract"}
    return numba.njit(inline="always", cache=True, fastmath=flags)(fn)  # type: ignore[no-any-return]


@_inline
def _exp_reduce(x: Any, cst: Any, half: Any) -> Any:  # pragma: no cover
    """(r, k) with x = k ln2 + r, |r| <= ln2/2, x clamped below at the cutoff."""
    xc = x if x > cst[3] else cst[3]
    kf = np.floor(xc * cst[0] + half)
    return (xc - kf * cst[1]) - kf * cst[2], kf


@_inline
def _exp_finish(x: Any, p: Any, kf: Any, lo: Any, zero: Any) -> Any:  # pragma: no cover
    """p(r) · 2^k, 0 below the cutoff, NaN kept."""
    e = p * _exp2_int(kf)  # type: ignore[call-arg]
    e = e if x >= lo else zero
    return e if x == x else x


@_jit_exact
def _exp_block(blk: Any, tp: Any, m: int, cst: Any) -> None:  # pragma: no cover
    """blk[k, i] = exp(blk[k, i] − tp[i]) for i < m, where blk − tp <= 0 (NaN stays NaN).

    An exp that vectorises, so that the E-step needs no separate NumPy pass over the
    chunk: x = k ln2 + r with |r| <= ln2/2 and exp(x) = 2^k · p(r), p the Taylor polynomial
    (see :func:`exp_constants`, which gives ``cst``), 2^k made from its exponent bits.
    Below the cutoff, −690 (float64) or −69 (float32), the result is 0, where NumPy gives
    a tiny or subnormal number (see ``exp_constants``); elsewhere it is within a few ulp
    of ``np.exp``.
    """
    dt = blk.dtype
    lo = cst[3]
    half = np.full(1, 0.5, dtype=dt)[0]
    zero = np.zeros(1, dtype=dt)[0]
    for k in range(blk.shape[0]):
        row = blk[k]
        if cst.shape[0] == 12:  # float32: degree 7
            for i in range(m):
                x = row[i] - tp[i]
                r, kf = _exp_reduce(x, cst, half)
                p = cst[4] * r + cst[5]
                for c in (6, 7, 8, 9, 10, 11):  # unrolled: a tuple of constants
                    p = p * r + cst[c]
                row[i] = _exp_finish(x, p, kf, lo, zero)
        else:  # float64: degree 13
            for i in range(m):
                x = row[i] - tp[i]
                r, kf = _exp_reduce(x, cst, half)
                p = cst[4] * r + cst[5]
                for c in (6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17):
                    p = p * r + cst[c]
                row[i] = _exp_finish(x, p, kf, lo, zero)


@_jit
def _transpose_block(Xb: Any, shift: Any, m: int, zt: Any) -> None:  # pragma: no cover
    """zt[a, i] = Xb[i, a] − shift[a] for the m rows of a block (feature-major)."""
    d = Xb.shape[1]
    for i in range(m):
        for a in range(d):
            zt[a, i] = Xb[i, a] - shift[a]


@_jit
def _block_log_density(
    zt: Any, m: int, C: Any, P: Any, const: Any, blk: Any, dk: Any, y: Any, acc: Any
) -> None:  # pragma: no cover
    """blk[k, i] = const[k] − ½ |(z_i − c_k) P_k|² for the m rows of a block."""
    d = zt.shape[0]
    kk = C.shape[0]
    dt = zt.dtype
    zero = np.zeros(1, dtype=dt)[0]
    half = np.full(1, 0.5, dtype=dt)[0]
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


@_jit
def _block_max(blk: Any, m: int, tp: Any) -> None:  # pragma: no cover
    """tp[i] = max_k blk[k, i] for i < m, 0 where that is not finite."""
    kk = blk.shape[0]
    dt = blk.dtype
    zero = np.zeros(1, dtype=dt)[0]
    inf = np.full(1, np.inf, dtype=dt)[0]
    for i in range(m):
        tp[i] = blk[0, i]
    for k in range(1, kk):
        for i in range(m):
            v = blk[k, i]
            tp[i] = v if v > tp[i] else tp[i]
    for i in range(m):
        t = tp[i]
        tp[i] = t if (t > -inf and t < inf) else zero


@_jit
def _block_normalizers(
    E: Any, m: int, w: Any, start: int, tot: Any, scale: Any
) -> None:  # pragma: no cover
    """tot[i] = Σ_k E[k, i] (0 if not > 0), scale[i] = w[start + i] / tot[i] (0 if not
    > 0; 1 for w if ``w`` is empty)."""
    kk = E.shape[0]
    dt = E.dtype
    zero = np.zeros(1, dtype=dt)[0]
    one = np.ones(1, dtype=dt)[0]
    for i in range(m):
        tot[i] = zero
    for k in range(kk):
        for i in range(m):
            tot[i] += E[k, i]
    for i in range(m):
        t = tot[i]
        pos = t > zero
        tot[i] = t if pos else zero
        scale[i] = one / t if pos else zero
    if w.shape[0] > 0:
        wb = w[start : start + m]
        for i in range(m):
            scale[i] *= wb[i]


@_jit_sum
def _block_stats(
    zt: Any,
    R: Any,
    scale: Any,
    m: int,
    C: Any,
    nk: Any,
    s1: Any,
    s2: Any,
    r: Any,
    dv: Any,
    rdv: Any,
) -> None:  # pragma: no cover
    """Add Σ r, Σ r z and Σ r (z − c_k)(z − c_k)ᵀ of a block, r = R[k] · scale, into
    nk, s1, s2 (upper triangle). Sums run over the block in its dtype, added in float64.

    Loops that store and loops that sum are kept apart: together they did not vectorise.
    """
    d = zt.shape[0]
    kk = C.shape[0]
    zero = np.zeros(1, dtype=zt.dtype)[0]
    for k in range(kk):
        for i in range(m):
            r[i] = R[k, i] * scale[i]
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
            s1[k, a] += t + c * rsum  # Σ r z = Σ r (z − c) + c Σ r
        for a in range(d):
            for b in range(a, d):
                t = zero
                for i in range(m):
                    t += rdv[a, i] * dv[b, i]
                s2[k, a, b] += t


@_jit
def _mirror(s2: Any) -> None:  # pragma: no cover
    kk, d = s2.shape[0], s2.shape[1]
    for k in range(kk):
        for a in range(d):
            for b in range(a + 1, d):
                s2[k, b, a] = s2[k, a, b]


# Blocks are sliced, never indexed as X[start + i]: Numba cannot tell that such an index is
# not negative, and its wraparound test kept the loops from vectorising (4-6x slower).


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
    bs = _BLOCK * 8 // X.itemsize  # the same bytes per block: 256 float32 rows
    zt = np.empty((d, bs), dtype=dt)
    dk = np.empty((d, bs), dtype=dt)
    y = np.empty(bs, dtype=dt)
    acc = np.empty(bs, dtype=dt)
    blk = np.empty((kk, bs), dtype=dt)
    tp = np.zeros(bs, dtype=dt)
    want_top = top.shape[0] > 0
    for start in range(0, n, bs):
        m = min(bs, n - start)
        _transpose_block(X[start : start + m], shift, m, zt)
        _block_log_density(zt, m, C, P, const, blk, dk, y, acc)
        if want_top:
            _block_max(blk, m, tp)
            tb = top[start : start + m]
            for i in range(m):
                tb[i] = tp[i]
        for k in range(kk):
            ob = out[k, start : start + m]
            for i in range(m):
                ob[i] = blk[k, i] - tp[i]


@_jit
def full_stats_direct(
    X: Any, shift: Any, R: Any, w: Any, C: Any, nk: Any, s1: Any, s2: Any
) -> None:  # pragma: no cover
    """Add Σ r, Σ r z and Σ r (z − c_k)(z − c_k)ᵀ (z = x − s) of a chunk into nk, s1, s2.

    ``R`` holds the responsibilities, component-major (K, n) (pass ``A.T`` for a row-major
    ``A``), weighted by ``w`` unless it is empty. ``shift`` and ``C`` come in X's dtype.
    Sums run feature-major over blocks of rows in X's dtype (short sums:
    float32 loses nothing that matters there) and are added up in float64 across blocks.
    """
    n, d = X.shape
    dt = X.dtype
    bs = _BLOCK * 8 // X.itemsize  # the same bytes per block: 256 float32 rows
    zt = np.empty((d, bs), dtype=dt)
    dv = np.empty((d, bs), dtype=dt)
    rdv = np.empty((d, bs), dtype=dt)
    r = np.empty(bs, dtype=dt)
    scale = np.ones(bs, dtype=dt)
    weighted = w.shape[0] > 0
    for start in range(0, n, bs):
        m = min(bs, n - start)
        _transpose_block(X[start : start + m], shift, m, zt)
        if weighted:
            wb = w[start : start + m]
            for i in range(m):
                scale[i] = wb[i]
        _block_stats(zt, R[:, start : start + m], scale, m, C, nk, s1, s2, r, dv, rdv)
    _mirror(s2)


@_jit
def full_estep_direct(
    X: Any,
    shift: Any,
    C: Any,
    P: Any,
    const: Any,
    w: Any,
    cst: Any,
    nk: Any,
    s1: Any,
    s2: Any,
    norm: Any,
    top: Any,
) -> None:  # pragma: no cover
    """The whole E-step of a chunk for few features, one block of rows at a time in cache.

    Per block: the log-densities (as ``full_logprob_direct``), their row maxima into
    ``top``, the exponentials (:func:`_exp_block`), the row sums into ``norm`` (the
    caller finishes log p(x) = top + log(norm)), and the statistics of the responsibilities
    (times ``w`` unless it is empty) added into nk, s1, s2, as ``full_stats_direct``.
    Nothing of size n × K is formed, and the rows are read once. ``cst`` holds the
    :func:`exp_constants` of X's dtype.
    """
    n, d = X.shape
    kk = C.shape[0]
    dt = X.dtype
    bs = _BLOCK * 8 // X.itemsize  # the same bytes per block: 256 float32 rows
    zt = np.empty((d, bs), dtype=dt)
    dk = np.empty((d, bs), dtype=dt)
    rdv = np.empty((d, bs), dtype=dt)
    y = np.empty(bs, dtype=dt)
    acc = np.empty(bs, dtype=dt)
    blk = np.empty((kk, bs), dtype=dt)
    tp = np.empty(bs, dtype=dt)
    tot = np.empty(bs, dtype=dt)
    scale = np.empty(bs, dtype=dt)
    for start in range(0, n, bs):
        m = min(bs, n - start)
        _transpose_block(X[start : start + m], shift, m, zt)
        _block_log_density(zt, m, C, P, const, blk, dk, y, acc)
        _block_max(blk, m, tp)
        _exp_block(blk, tp, m, cst)
        _block_normalizers(blk, m, w, start, tot, scale)
        nb = norm[start : start + m]
        tb = top[start : start + m]
        for i in range(m):
            nb[i] = tot[i]
            tb[i] = tp[i]
        _block_stats(zt, blk, scale, m, C, nk, s1, s2, y, dk, rdv)
    _mirror(s2)
