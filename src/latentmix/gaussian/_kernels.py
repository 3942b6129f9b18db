"""The hot kernels: log π_k + log N(x | k) for a chunk of rows and every component.

One stacked matrix product over all components (no Python loop over K in the E-step), in
the dtype of the data (float32 stays float32), about the shift s so that data far from
the origin lose no precision. Statistics are then reduced to float64.

Two ways to the same numbers, chosen per call:

* matrix products (BLAS) for the log-densities and the statistics, with the elementwise
  work after each product fused into one Numba pass when Numba is installed;
* for few features (full covariance, ``D <= DIRECT_MAX_FEATURES``) and Numba, one loop
  over blocks of rows that computes the log-densities (triangular factors: half the
  arithmetic of the dense product), their exponentials, the responsibilities and all the
  statistics, without any (n, K) or (n, K·D) temporary: there the products are too small
  for BLAS to pay off and memory traffic is the limit.

On the Numba path the E-step keeps its (n, K) arrays transposed, component-major (K, n),
so that the passes over them run along rows and vectorise (twice the lanes in float32);
prediction keeps the row-major (n, K) layout it returns.

Without Numba everything runs in NumPy, slower, with the same results up to rounding.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from latentmix._validation import weighted_total
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

#: Up to this many features (full covariance), the per-row Numba loops beat BLAS.
DIRECT_MAX_FEATURES = 16

#: Numba is imported (and, once per machine, compiled) only for chunks of at least this
#: many rows: smaller problems are fast in NumPy and must not wait for a JIT. No more
#: than the 1024-row chunks of wide full-covariance problems (see ``chunk_width``), which
#: gain most from the fused loops (D=64, K=32: 1.2× per E-step).
NUMBA_MIN_ROWS = 1024


def _numba_installed() -> bool:
    try:  # without importing it
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # blocked (sys.modules["numba"] = None) or broken
        return False


HAVE_NUMBA = _numba_installed()

#: Switch for tests and benchmarks: False forces the NumPy formulas everywhere.
USE_NUMBA = HAVE_NUMBA

_compiled: ModuleType | None = None


def _nb() -> ModuleType:
    """The Numba kernels, imported on first use (importing Numba takes a while)."""
    global _compiled
    if _compiled is None:
        from latentmix.gaussian import _numba_kernels

        _compiled = _numba_kernels
    return _compiled


def _numba(n_rows: int) -> bool:
    return bool(USE_NUMBA and HAVE_NUMBA and n_rows >= NUMBA_MIN_ROWS)


def _direct(covariance_type: str, n_features: int, n_rows: int) -> bool:
    return covariance_type == "full" and n_features <= DIRECT_MAX_FEATURES and _numba(n_rows)


def chunk_width(n_components: int, n_features: int, covariance_type: str) -> int:
    """Numbers per row of the widest temporary of the kernels (sizes the row chunks)."""
    if covariance_type == "full":
        if _direct(covariance_type, n_features, NUMBA_MIN_ROWS):
            width = 2 * n_components + n_features
            # With so few features a row is little work, and the fixed cost of a chunk
            # (about 0.1 ms of Python) showed: 4x longer chunks made D=2, K=8 about 18%
            # faster on two threads. Wider rows keep their chunks (fewer would unbalance
            # the two threads on 200k rows).
            return max(width // 4, 1) if n_features <= 4 else width
        # Capped so that chunks keep >= 1024 rows: the M-step's per-component products
        # run over the chunk's rows and are slow when that inner dimension is short.
        return min(n_components * n_features + 2 * n_components, 256)
    # A third of the temporaries' width: three times longer chunks, which run faster now
    # that a chunk's Python and thread hand-over cost more than cache misses (1M rows,
    # D=16, K=16, two threads, float64: diag 110 -> 90 ms, spherical 115-145 -> 100-120,
    # tied 197 -> 157; float32 about as much).
    return max((3 * n_components + 2 * n_features) // 3, 1)


# -- log-densities ---------------------------------------------------------------------------


#: Rows per block of the stacked product Z @ [P_1 … P_K] (see ``_log_prob``).
_STACKED_BLOCK = 256


def _triangular_pieces(P: NDArray[Any]) -> tuple[tuple[slice, slice], ...] | None:
    """(features, columns) of the two halves of Z P_k when every P_k is triangular.

    Upper triangular: columns :h read only features :h. Lower: columns h: read only
    features h:. None when neither holds (or D < 2), for one full stacked product.
    """
    d = P.shape[1]
    h = d // 2
    if h == 0:
        return None
    every, first, rest = slice(None), slice(0, h), slice(h, d)
    if not np.any(P[:, rest, first]):
        return ((first, first), (every, rest))
    if not np.any(P[:, first, rest]):
        return ((every, first), (rest, rest))
    return None


def _const(
    prec_chol: NDArray[np.float64],
    covariance_type: str,
    d: int,
    k: int,
    log_weights: NDArray[np.float64] | None,
) -> NDArray[np.float64]:
    """log π_k + log det P_k − D/2 log 2π, the part of the log-density without x."""
    ct = covariance_type
    if ct == "full":
        log_det = np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    elif ct == "tied":
        log_det = np.full(k, np.log(np.diag(prec_chol)).sum())
    elif ct == "diag":
        log_det = np.log(prec_chol).sum(axis=1)
    elif ct == "spherical":
        log_det = d * np.log(prec_chol)
    else:  # pragma: no cover - validated upstream
        raise ValueError(f"Unknown covariance_type {covariance_type!r}.")
    const = log_det - 0.5 * d * LOG_2PI
    if log_weights is not None:
        const = const + log_weights
    return np.asarray(const)


def _direct_log_prob(
    X: NDArray[Any],
    shift: NDArray[np.float64],
    centers: NDArray[np.float64],
    prec_chol: NDArray[np.float64],
    const: NDArray[np.float64],
    out: NDArray[Any],
    top: NDArray[Any] | None,
) -> None:
    """The Numba loop for full covariances and few features (see the module docstring).

    ``out`` is indexed (K, n): a component-major array, or ``A.T`` of a row-major one.
    """
    dt = X.dtype
    _nb().full_logprob_direct(
        X,
        shift.astype(dt),
        np.ascontiguousarray(centers, dtype=dt),
        np.ascontiguousarray(prec_chol, dtype=dt),
        const.astype(dt),
        out,
        np.empty(0, dtype=dt) if top is None else top,
    )


def _log_prob(
    Z: NDArray[Any],
    centers: NDArray[np.float64],
    prec_chol: NDArray[np.float64],
    covariance_type: str,
    log_weights: NDArray[np.float64] | None,
    component_major: bool = False,
) -> tuple[NDArray[Any], NDArray[Any] | None]:
    """log N(z | c_k, Σ_k) (+ log π_k if given), shape (n, K), in Z's dtype.

    ``component_major`` gives the transpose, shape (K, n), C-contiguous, which is the
    layout the E-step's Numba passes want: their loops then run over rows, contiguous,
    and vectorise (twice the lanes in float32). The full (Numba) and tied paths make it
    directly; the others transpose. Also returns, for diag and spherical, the (n, 2D)
    array [z², z] that the statistics reuse (None otherwise).
    """
    dt = Z.dtype
    n, d = Z.shape
    k = centers.shape[0]
    ct = covariance_type
    const = _const(prec_chol, ct, d, k, log_weights)
    Q = None
    if ct == "full":
        out = np.empty((k, n) if component_major else (n, k), dtype=dt)
        view = out if component_major else out.T  # indexed (K, n) either way
        if _direct(ct, d, n):
            _direct_log_prob(Z, np.zeros(d), centers, prec_chol, const, view, None)
            return out, None
        P = prec_chol.astype(dt, copy=False)
        # Block k of the stacked product is Z @ P_k: one BLAS call for all components.
        b = np.einsum("kd,kde->ke", centers, prec_chol).astype(dt)
        if _numba(n):
            # By blocks of rows, so that the stacked products are read back from cache,
            # not from memory (a 1024-row chunk's n × KD product at D=64, K=32 is 16 MB).
            # P_k triangular (as Cholesky factors are): each half of the columns of Z P_k
            # reads only the features where its half of P_k is not zero, so two stacked
            # products, one over half the features, do 3/4 of the multiplications (D=64,
            # K=32, 100k rows, one thread, log-densities: 596 -> 538 ms float64, 298 ->
            # 270 float32). Otherwise the first product holds every column, the second none.
            every = slice(None)
            pieces = _triangular_pieces(P) or ((every, every), (every, slice(d, d)))
            c = const.astype(dt)
            block_rows = min(n, _STACKED_BLOCK)
            parts = []
            for feats, cols in pieces:
                Pc = P[:, feats, cols]
                Wc = np.ascontiguousarray(
                    Pc.transpose(1, 0, 2).reshape(Pc.shape[1], k * Pc.shape[2])
                )
                bc = np.ascontiguousarray(b[:, cols]).reshape(-1)
                parts.append((feats, Wc, bc, np.empty((block_rows, Wc.shape[1]), dtype=dt)))
            (f1, W1, b1, Y1), (f2, W2, b2, Y2) = parts
            for s in range(0, n, _STACKED_BLOCK):
                e = min(n, s + _STACKED_BLOCK)
                np.matmul(Z[s:e, f1], W1, out=Y1[: e - s])
                np.matmul(Z[s:e, f2], W2, out=Y2[: e - s])
                _nb().stacked_sq(Y1[: e - s], Y2[: e - s], b1, b2, c, k, view[:, s:e])
        else:
            W = np.ascontiguousarray(P.transpose(1, 0, 2).reshape(d, k * d))
            Y = Z @ W
            Y -= b.reshape(k * d)
            np.square(Y, out=Y)
            sq = Y.reshape(n, k, d).sum(axis=2)
            rows = view.T  # ``out`` indexed (n, K), whichever layout it has
            np.multiply(sq, -0.5, out=rows)
            rows += const.astype(dt)
        return out, None
    if ct == "tied":
        P = prec_chol.astype(dt, copy=False)
        Y = Z @ P
        M = centers @ prec_chol
        # −½|y − m_k|² = y·m_k − ½|m_k|² − ½|y|²: one product for all components.
        c = (const - 0.5 * (M * M).sum(axis=1)).astype(dt)
        if component_major:
            out = M.astype(dt) @ Y.T
            out += c[:, None]
            np.square(Y, out=Y)
            out -= 0.5 * Y.sum(axis=1)
        else:
            out = Y @ M.T.astype(dt)
            out += c
            np.square(Y, out=Y)
            out -= 0.5 * Y.sum(axis=1)[:, None]
        return out, None
    # diag and spherical: −½ Σ_d p_kd (z_d − c_kd)² = [z², z] @ [−½ p_k; p_k c_k] + const.
    prec = prec_chol**2
    if ct == "spherical":
        prec = np.repeat(prec[:, None], d, axis=1)
    Q = np.empty((n, 2 * d), dtype=dt)
    np.square(Z, out=Q[:, :d])
    Q[:, d:] = Z
    Wd = np.concatenate([-0.5 * prec.T, (centers * prec).T]).astype(dt)
    out = Q @ Wd
    out += (const - 0.5 * (centers**2 * prec).sum(axis=1)).astype(dt)
    return (np.ascontiguousarray(out.T) if component_major else out), Q


def log_gaussian_prob(
    Z: NDArray[Any],
    centers: NDArray[np.float64],
    prec_chol: NDArray[np.float64],
    covariance_type: str,
) -> NDArray[Any]:
    """log N(z | c_k, Σ_k) for every row of ``Z`` and every component, shape (n, K).

    ``Z`` and ``centers`` are both taken about the same shift; the result has Z's dtype.
    """
    return _log_prob(Z, centers, prec_chol, covariance_type, None)[0]


def _log_weights(params: GaussianParams) -> NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        return np.log(params.weights)


def log_weighted_prob(
    Z: NDArray[Any], params: GaussianParams, shift: NDArray[np.float64]
) -> NDArray[Any]:
    """log π_k + log N(x | k), with ``Z = X − shift``."""
    centers = params.means - shift
    return _log_prob(
        Z, centers, params.precisions_cholesky, params.covariance_type, _log_weights(params)
    )[0]


# -- normalisation -----------------------------------------------------------------------------


def _exp_cut(dt: np.dtype[Any], cut: bool = True) -> Any:
    """The Numba kernels' ``lo`` in ``dt``: the fused exp's cutoff, or −inf for none.

    Below it the subtracted log-densities become −inf, so NumPy's exp gives 0 where it
    would give a subnormal number, which slows exp and BLAS on some CPUs (see
    ``_numba_kernels.exp_constants``). The NumPy path keeps them: it differs by less than
    1e-30 of a row's largest term.
    """
    return dt.type(_exp_cst(dt)[3] if cut else -np.inf)


def _subtract_rowmax(wlp: NDArray[Any], cut: bool = False) -> NDArray[Any]:
    """In place: wlp −= its row maxima (0 where not finite); return the maxima.

    ``cut``: for an exp that follows, differences below the exp cutoff become −inf
    (Numba only, see ``_exp_cut``); without it ``wlp`` keeps every log-ratio.
    """
    if _numba(wlp.shape[0]):
        top = np.empty(wlp.shape[0], dtype=wlp.dtype)
        _nb().rowmax_subtract(wlp, top, _exp_cut(wlp.dtype, cut))
        return top
    top = wlp.max(axis=1)
    top = np.where(np.isfinite(top), top, 0.0).astype(wlp.dtype)
    wlp -= top[:, None]
    return top


def log_resp_and_norm(weighted_log_prob: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """In place: turn log π_k p_k(x) into log responsibilities; return them and log p(x)."""
    wlp = weighted_log_prob
    top = _subtract_rowmax(wlp)
    with np.errstate(divide="ignore"):
        norm = np.log(np.exp(wlp).sum(axis=1))
    wlp -= norm[:, None]
    norm += top
    return wlp, norm


def _log_norm(weighted_log_prob: NDArray[Any]) -> NDArray[Any]:
    """log p(x) = log Σ_k exp(wlp); destroys its argument."""
    wlp = weighted_log_prob
    top = _subtract_rowmax(wlp, cut=True)
    np.exp(wlp, out=wlp)
    with np.errstate(divide="ignore"):
        norm = np.log(wlp.sum(axis=1))
    norm += top
    return norm


def _finish_log_norm(sums: NDArray[Any], top: NDArray[Any]) -> NDArray[Any]:
    """In place: Σ_k exp(wlp − top) → log p(x) = top + log Σ (−inf where the sum is 0)."""
    with np.errstate(divide="ignore"):
        np.log(sums, out=sums)
    sums += top
    return sums


def _responsibilities(
    weighted_log_prob: NDArray[Any], w: NDArray[np.float64] | None
) -> tuple[NDArray[Any], NDArray[Any]]:
    """In place: log π_k p_k(x) → w·p(k | x); also return log p(x)."""
    wlp = weighted_log_prob
    if _numba(wlp.shape[0]):
        top = _subtract_rowmax(wlp, cut=True)
        np.exp(wlp, out=wlp)
        norm = np.empty(wlp.shape[0], dtype=wlp.dtype)
        ww = np.empty(0, dtype=wlp.dtype) if w is None else w.astype(wlp.dtype)
        _nb().normalize_rows(wlp, top, ww, norm)
        return wlp, _finish_log_norm(norm, top)
    log_resp, norm = log_resp_and_norm(wlp)
    rw = np.exp(log_resp, out=log_resp)
    if w is not None:
        rw *= w.astype(rw.dtype)[:, None]
    return rw, norm


def _responsibilities_km(
    weighted_log_prob: NDArray[Any], w: NDArray[np.float64] | None, top: NDArray[Any] | None = None
) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.float64]]:
    """As ``_responsibilities`` for a component-major (K, n) array (Numba only).

    ``top``: the row maxima, when the caller has already subtracted them. Also returns
    nk = Σ_i w·p(k | x_i) in float64, summed on the way.
    """
    wlp = weighted_log_prob
    k, n = wlp.shape
    if top is None:
        top = np.empty(n, dtype=wlp.dtype)
        _nb().colmax_subtract(wlp, top, _exp_cut(wlp.dtype))
    np.exp(wlp, out=wlp)
    norm = np.empty(n, dtype=wlp.dtype)
    nk = np.zeros(k)
    ww = np.empty(0, dtype=wlp.dtype) if w is None else w.astype(wlp.dtype)
    _nb().normalize_cols(wlp, ww, norm, nk)
    return wlp, _finish_log_norm(norm, top), nk


# -- statistics --------------------------------------------------------------------------------


def _accumulate(
    Z: NDArray[Any],
    rt: NDArray[Any],
    centers: NDArray[np.float64],
    covariance_type: str,
    w: NDArray[np.float64] | None,
    Q: NDArray[Any] | None,
    nk: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """nk, s1, s2 from component-major responsibilities ``rt`` (K, n), or ``rw.T``.

    ``nk`` may be given when the caller already summed it (in float64).
    """
    f8 = np.float64
    n, d = Z.shape
    k = rt.shape[0]
    ct = covariance_type
    if _direct(ct, d, n):
        nk0, s1, s2 = np.zeros(k), np.zeros((k, d)), np.zeros((k, d, d))
        e = np.empty(0, dtype=Z.dtype)
        C = np.ascontiguousarray(centers, dtype=Z.dtype)
        R = rt.astype(Z.dtype, copy=False)
        _nb().full_stats_direct(Z, np.zeros(d, Z.dtype), R, e, C, nk0, s1, s2)
        return nk0, s1, s2
    if nk is None:
        nk = rt.sum(axis=1, dtype=f8)
    if ct in ("diag", "spherical"):
        if Q is None:
            Q = np.empty((n, 2 * d), dtype=Z.dtype)
            np.square(Z, out=Q[:, :d])
            Q[:, d:] = Z
        # [Σ r z² | Σ r z] in one product, reusing the E-step's [z², z].
        both = (rt @ Q).astype(f8, copy=False)
        return nk, both[:, d:], both[:, :d]
    s1 = (rt @ Z).astype(f8, copy=False)
    if ct == "full":
        c = centers.astype(Z.dtype)
        root = np.sqrt(rt)
        s2 = np.empty((k, d, d))
        A = np.empty_like(Z)
        fused = _numba(n) and Z.flags.c_contiguous
        for j in range(k):
            # Σ r (z − c)(z − c)ᵀ = Aᵀ A with A = √r (z − c): one n×D temporary, reused
            # (NumPy's ``A.T @ A`` is a syrk: half the products).
            if fused:
                _nb().scaled_deviations(Z, c[j], root[j], A)
            else:
                np.subtract(Z, c[j], out=A)
                A *= root[j, :, None]
            s2[j] = A.T @ A
        return nk, s1, s2
    # tied
    if w is None:
        s2 = (Z.T @ Z).astype(f8, copy=False)
    else:
        A = Z * np.sqrt(w).astype(Z.dtype)[:, None]
        s2 = (A.T @ A).astype(f8, copy=False)
    return nk, s1, s2


def accumulate(
    Z: NDArray[Any],
    rw: NDArray[Any],
    centers: NDArray[np.float64],
    covariance_type: str,
    w: NDArray[np.float64] | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """nk, s1, s2 of one chunk from weighted responsibilities ``rw`` (see GaussianStats)."""
    return _accumulate(Z, np.ascontiguousarray(rw).T, centers, covariance_type, w, None)


def worst_indices(
    scores: NDArray[Any], w: NDArray[np.float64] | None, keep: int
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """The rows with the ``keep`` lowest scores, worst first, and their scores (float64).

    Exactly a stable argsort cut at ``keep`` (ties go to the earlier row), without sorting
    every row: one Numba pass, or a partition. Rows of weight ``w <= 0`` are not part of
    the data the model must explain and count as +inf; rows whose score is not finite
    are left out after the selection.
    """
    n = scores.shape[0]
    if _numba(n) and keep > 0:
        # One pass instead of a partition (5× faster: that was 10 ms per million rows).
        idx = np.empty(min(keep, n), dtype=np.intp)
        ww = np.empty(0) if w is None else w
        idx = idx[: _nb().smallest(scores, ww, idx)]
        s = scores[idx].astype(np.float64)
        if w is not None:
            s = np.where(w[idx] > 0, s, np.inf)
    else:
        s = scores.astype(np.float64)
        if w is not None:
            s = np.where(w > 0, s, np.inf)
        s = np.where(np.isnan(s), np.inf, s)  # NaN sorts last, as in the Numba pass
        if n > keep > 0:
            # Every row at or below the keep-th lowest score, ties included; then in order.
            idx = np.flatnonzero(s <= np.partition(s, keep - 1)[keep - 1])
        else:
            idx = np.arange(n)
        s = s[idx]
    order = np.lexsort((idx, s))[: max(keep, 0)]
    idx, s = idx[order], s[order]
    finite = np.isfinite(s)
    return idx[finite], s[finite]


def _worst(
    X: NDArray[Any], scores: NDArray[Any], w: NDArray[np.float64] | None, keep: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    idx, s = worst_indices(scores, w, keep)
    return X[idx].astype(np.float64), s


def design_weights(
    means: NDArray[np.float64],
    shift: NDArray[np.float64],
    prec_chol: NDArray[np.float64],
    covariance_type: str,
    log_weights: NDArray[np.float64] | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """W (m + D + 1, K) with ``design(X) @ W`` = log N(x | k) + log_weights, diag/spherical.

    −½ Σ_d p_kd (z_d − c_kd)² = −½ p_k · z² + (p_k ⊙ c_k) · z − ½ p_k · c_k², and the last
    row of W carries every constant. A constant that is not finite (−inf: a component of
    weight zero) must be added, not multiplied: the last row then holds 0 and the
    constants come back as the second value, to add to the product (else None).
    """
    k, d = means.shape
    spherical = covariance_type == "spherical"
    m = 1 if spherical else d
    centers = means - shift
    prec = prec_chol**2  # (K,) spherical, (K, D) diag
    pk = np.repeat(prec[:, None], d, axis=1) if spherical else prec
    const = _const(prec_chol, covariance_type, d, k, log_weights)
    const = const - 0.5 * (centers**2 * pk).sum(axis=1)
    W = np.empty((m + d + 1, k))
    W[:m] = -0.5 * (prec[None, :] if spherical else prec.T)
    W[m : m + d] = (centers * pk).T
    finite = bool(np.all(np.isfinite(const)))
    W[m + d] = const if finite else 0.0
    return W, (None if finite else const)


def design(X: NDArray[Any], shift: NDArray[np.float64], spherical: bool) -> NDArray[Any]:
    """The design rows ``[z² | z | 1]`` (spherical ``[‖z‖² | z | 1]``), z = x − shift, X's dtype.

    One matrix serves both products of a diag/spherical E-step: ``Q @ W`` (see
    :func:`design_weights`) for the log-densities and ``rᵀ Q`` (see :func:`design_stats`)
    for the statistics; spherical rows are about half as wide as diag's.
    """
    dt = X.dtype
    n, d = X.shape
    m = 1 if spherical else d
    Q = np.empty((n, m + d + 1), dtype=dt)
    if _numba(n):
        _nb().diag_design(X, shift.astype(dt), Q, spherical)
        return Q
    Z = X - shift.astype(dt)
    Q[:, m : m + d] = Z
    if spherical:
        np.einsum("ij,ij->i", Z, Z, out=Q[:, 0])
    else:
        np.square(Z, out=Q[:, :d])
    Q[:, m + d] = 1.0
    return Q


def design_stats(
    Q: NDArray[Any], rw: NDArray[Any], spherical: bool, nk: NDArray[np.float64] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """nk, s1, s2 from ``rwᵀ Q``: Σ r z², Σ r z and nk of a chunk in one product.

    ``nk`` may be given when the caller already summed it (in float64). For spherical only
    Σ_d Σ r z_d² is formed, which is all the spherical M-steps read (they average over
    features); it goes in the first column of s2 and ``GaussianStats`` spreads it evenly.
    """
    m = 1 if spherical else Q.shape[1] // 2
    d = Q.shape[1] - m - 1
    both = (rw.T @ Q).astype(np.float64, copy=False)
    if nk is None:  # float32 sums of many rows lose digits: the weights in float64 then
        nk = both[:, m + d].copy() if Q.dtype == np.float64 else rw.sum(axis=0, dtype=np.float64)
    s1 = both[:, m : m + d].copy()
    if spherical:  # (np.pad would cost more than the product on small chunks)
        s2 = np.zeros((both.shape[0], d))
        s2[:, 0] = both[:, 0]
    else:
        s2 = both[:, :d].copy()
    return nk, s1, s2


def _diag_estep(
    X: NDArray[Any], w: NDArray[np.float64] | None, shift: NDArray[np.float64], params: Any
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[Any]]:
    """nk, s1, s2 and log p(x) of a chunk for diag or spherical covariances."""
    spherical = params.covariance_type == "spherical"
    W, rest = params.design_weights  # about params.shift(), which is ``shift`` here
    Q = design(X, shift, spherical)
    Wt = W.T.astype(X.dtype)
    if _numba(X.shape[0]):
        # Component-major (K, n): the passes after the product run along rows (see
        # ``_log_prob``), and nk comes out of them in float64. (Per-thread scratch arrays
        # instead of new ones made this slower: 134 vs 122 ms per iteration, float64.)
        top = None
        if X.dtype == np.float32:
            # sgemm makes the row-major product Q W at twice the speed of Wᵀ Qᵀ (dgemm
            # both at about the same), so float32 transposes afterwards, with the maxima.
            L = Q @ Wt.T
            if rest is not None:
                L += rest.astype(X.dtype)
            wlp = np.empty((L.shape[1], L.shape[0]), dtype=X.dtype)
            top = np.empty(L.shape[0], dtype=X.dtype)
            _nb().colmax_subtract_rows(L, wlp, top, _exp_cut(wlp.dtype))
        else:
            wlp = Wt @ Q.T
            if rest is not None:
                wlp += rest.astype(X.dtype)[:, None]
        rt, norm, nk = _responsibilities_km(wlp, w, top)
        return (*design_stats(Q, rt.T, spherical, nk), norm)
    wlp = Q @ Wt.T
    if rest is not None:
        wlp += rest.astype(X.dtype)
    rw, norm = _responsibilities(wlp, w)
    nk, s1, s2 = design_stats(Q, rw, spherical)
    return nk, s1, s2, norm


_exp_constants: dict[Any, NDArray[Any]] = {}
_local = threading.local()


def _scratch(name: str, shape: int | tuple[int, ...], dt: np.dtype[Any]) -> NDArray[Any]:
    """A per-thread C-contiguous array, reused from chunk to chunk (never returned).

    Fresh chunk-sized arrays can cost page faults: for float32 chunks of 131072 rows on
    one thread the fused E-step ran at 21.6 ms per million rows with new row-sized
    arrays, 13.8 with reused ones. (For diag's design and products, reuse was slower.)
    """
    size = int(np.prod(shape))
    bufs: dict[tuple[str, Any], NDArray[Any]] | None = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    a = bufs.get((name, dt))
    if a is None or a.shape[0] < size:
        a = bufs[(name, dt)] = np.empty(size, dtype=dt)
    return a[:size].reshape(shape)


def _exp_cst(dt: np.dtype[Any]) -> NDArray[Any]:
    """The constants of the fused E-step's exp for ``dt``, made once."""
    cst = _exp_constants.get(dt)
    if cst is None:
        cst = _exp_constants[dt] = _nb().exp_constants(dt)
    return cst


def estep_stats(
    X: NDArray[Any], w: NDArray[np.float64] | None, params: GaussianParams
) -> GaussianStats:
    """One E-step pass over a chunk: additive statistics under ``params``."""
    shift = params.shift()
    ct = params.covariance_type
    n, d = X.shape
    k = params.n_components
    if ct == "full":
        # Rounded to the data's dtype, so the kernels' z − c_k is taken about exactly the
        # reference the statistics record.
        centers = (params.means - shift).astype(X.dtype).astype(np.float64)
    else:
        centers = np.zeros_like(params.means)
    if _direct(ct, d, n):
        # One fused pass, by blocks of rows in cache: log-densities, exponentials,
        # responsibilities and all the statistics (see ``full_estep_direct``).
        dt = X.dtype
        const = _const(params.precisions_cholesky, ct, d, k, _log_weights(params))
        nk, s1, s2 = np.zeros(k), np.zeros((k, d)), np.zeros((k, d, d))
        # Scratch: log p(x) below only feeds the sums and the worst rows (copied out).
        norm = _scratch("norm", n, dt)
        top = _scratch("top", n, dt)
        ww = np.empty(0, dtype=dt) if w is None else w.astype(dt)
        _nb().full_estep_direct(
            X,
            shift.astype(dt),
            centers.astype(dt),
            np.ascontiguousarray(params.precisions_cholesky, dtype=dt),
            const.astype(dt),
            ww,
            _exp_cst(dt),
            nk,
            s1,
            s2,
            norm,
            top,
        )
        norm = _finish_log_norm(norm, top)
    elif ct in ("diag", "spherical"):
        nk, s1, s2, norm = _diag_estep(X, w, shift, params)
    else:
        Z = X - shift.astype(X.dtype)
        means, pc, lw = params.means - shift, params.precisions_cholesky, _log_weights(params)
        if _numba(n):
            wlp, _ = _log_prob(Z, means, pc, ct, lw, component_major=True)
            rt, norm, nk = _responsibilities_km(wlp, w)
            nk, s1, s2 = _accumulate(Z, rt, centers, ct, w, None, nk)
        else:
            wlp, Q = _log_prob(Z, means, pc, ct, lw)
            rw, norm = _responsibilities(wlp, w)
            nk, s1, s2 = _accumulate(Z, rw.T, centers, ct, w, Q)
    log_likelihood, weight = weighted_total(norm, w)
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


# -- prediction --------------------------------------------------------------------------------


class MixtureParams(Protocol):
    """What the row-scoring loop needs of a parameter set (EM's or the variational one)."""

    @property
    def covariance_type(self) -> str: ...

    @property
    def n_components(self) -> int: ...

    def shift(self) -> NDArray[np.float64]: ...


P = TypeVar("P", bound=MixtureParams)


def score_rows(
    X: NDArray[Any],
    params: P,
    *,
    want_resp: bool,
    log_prob: Callable[[NDArray[Any], P, NDArray[np.float64]], NDArray[Any]] | None = None,
) -> tuple[NDArray[Any] | None, NDArray[Any]]:
    """log responsibilities (n, K) if asked, and log p(x) (n,), chunk by chunk, in X's dtype.

    ``log_prob(Z, params, shift)`` gives the per-component log terms of rows ``Z = X −
    shift`` (default :func:`log_weighted_prob`, log π_k + log N(x | k); the variational
    mixture passes its expected log terms).
    """
    # Without log_prob, params are GaussianParams (the default's type).
    weighted = cast(
        Callable[[NDArray[Any], P, NDArray[np.float64]], NDArray[Any]],
        log_weighted_prob if log_prob is None else log_prob,
    )
    from latentmix.em._data import for_each_chunk

    shift = params.shift()
    n = X.shape[0]
    resp = np.empty((n, params.n_components), dtype=X.dtype) if want_resp else None
    norm = np.empty(n, dtype=X.dtype)

    def one(start: int, stop: int) -> None:
        Z = X[start:stop] - shift.astype(X.dtype)
        wlp = weighted(Z, params, shift)
        if resp is None:
            norm[start:stop] = _log_norm(wlp)
        else:
            log_resp, lp = log_resp_and_norm(wlp)
            norm[start:stop] = lp
            resp[start:stop] = log_resp

    width = chunk_width(params.n_components, X.shape[1], params.covariance_type)
    for_each_chunk(one, n, width, X.dtype.itemsize)
    return resp, norm


def predict_rows(X: NDArray[Any], params: GaussianParams) -> NDArray[np.intp]:
    """The most responsible component of each row, chunk by chunk."""
    from latentmix.em._data import for_each_chunk

    shift = params.shift()
    n = X.shape[0]
    labels = np.empty(n, dtype=np.intp)

    def one(start: int, stop: int) -> None:
        Z = X[start:stop] - shift.astype(X.dtype)
        labels[start:stop] = log_weighted_prob(Z, params, shift).argmax(axis=1)

    width = chunk_width(params.n_components, X.shape[1], params.covariance_type)
    for_each_chunk(one, n, width, X.dtype.itemsize)
    return labels
