"""The E-step kernels against naive references, and their paths against each other.

Every test runs over both implementations (the Numba loops and the NumPy formulas) when
Numba is installed: the fast paths must compute the same numbers as the plain ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import latentmix.em._data as data_mod
import latentmix.gaussian._kernels as kernels
from latentmix.em._data import ArrayData, for_each_chunk
from latentmix.gaussian._kernels import (
    HAVE_NUMBA,
    accumulate,
    chunk_width,
    estep_stats,
    log_gaussian_prob,
    log_resp_and_norm,
    log_weighted_prob,
    predict_rows,
    score_rows,
)
from latentmix.gaussian._params import (
    COVARIANCE_TYPES,
    GaussianParams,
    precisions_cholesky_from_covariances,
    precisions_cholesky_from_precisions,
)
from latentmix.gaussian._stats import GaussianStats

PATHS = [pytest.param(True, id="numba"), pytest.param(False, id="numpy")]
if not HAVE_NUMBA:  # pragma: no cover
    PATHS[0] = pytest.param(True, id="numba", marks=pytest.mark.skip(reason="numba absent"))

# Few features take the fused per-row loops, many the stacked matrix products.
N_FEATURES = [1, 3, kernels.DIRECT_MAX_FEATURES + 3]


@pytest.fixture(params=PATHS)
def numba_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    monkeypatch.setattr(kernels, "USE_NUMBA", bool(request.param))
    # The small test arrays would otherwise stay in NumPy.
    monkeypatch.setattr(kernels, "NUMBA_MIN_ROWS", 0)
    yield bool(request.param)


def make_params(
    rng: np.random.Generator, k: int, d: int, ct: str, *, lower: bool = False
) -> GaussianParams:
    """Random, well-conditioned parameters; ``lower`` uses lower-triangular factors."""
    means = rng.normal(scale=3.0, size=(k, d)) + 50.0  # far from the origin on purpose
    weights = rng.dirichlet(np.ones(k))
    if ct == "full":
        A = rng.normal(size=(k, d, d))
        cov = np.einsum("kij,klj->kil", A, A) / d + 0.5 * np.eye(d)
    elif ct == "tied":
        A = rng.normal(size=(d, d))
        cov = A @ A.T / d + 0.5 * np.eye(d)
    elif ct == "diag":
        cov = rng.uniform(0.5, 2.0, size=(k, d))
    else:
        cov = rng.uniform(0.5, 2.0, size=k)
    if lower and ct in ("full", "tied"):
        prec = np.linalg.inv(cov)
        prec_chol = precisions_cholesky_from_precisions(prec, ct)
    else:
        prec_chol, bad = precisions_cholesky_from_covariances(cov, ct)
        assert not bad
    return GaussianParams(ct, weights, means, np.asarray(cov), prec_chol)


def make_rows(rng: np.random.Generator, params: GaussianParams, n: int) -> np.ndarray:
    labels = rng.integers(0, params.n_components, size=n)
    return params.means[labels] + rng.normal(size=(n, params.n_features))


def full_covariances(params: GaussianParams) -> np.ndarray:
    k, d = params.n_components, params.n_features
    cov = params.covariances
    if params.covariance_type == "full":
        return cov
    if params.covariance_type == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if params.covariance_type == "diag":
        return np.array([np.diag(c) for c in cov])
    return np.array([c * np.eye(d) for c in cov])


def reference_log_prob(X: np.ndarray, params: GaussianParams) -> np.ndarray:
    """log π_k + log N(x | k) straight from scipy.stats."""
    covs = full_covariances(params)
    return np.column_stack(
        [
            np.log(params.weights[k])
            + stats.multivariate_normal(params.means[k], covs[k]).logpdf(X).reshape(-1)
            for k in range(params.n_components)
        ]
    )


def reference_stats(X: np.ndarray, params: GaussianParams, w: np.ndarray | None) -> dict[str, Any]:
    """The statistics written out as their definitions (see GaussianStats)."""
    wlp = reference_log_prob(X, params)
    norm = logsumexp(wlp, axis=1)
    resp = np.exp(wlp - norm[:, None])
    ww = np.ones(X.shape[0]) if w is None else w
    rw = resp * ww[:, None]
    shift = params.shift()
    Z = X - shift
    ct = params.covariance_type
    centers = params.means - shift if ct == "full" else np.zeros_like(params.means)
    if ct == "full":
        s2 = np.array(
            [
                (rw[:, k, None] * (Z - centers[k])).T @ (Z - centers[k])
                for k in range(params.n_components)
            ]
        )
    elif ct == "tied":
        s2 = (ww[:, None] * Z).T @ Z
    else:
        s2 = rw.T @ Z**2
    return {
        "nk": rw.sum(axis=0),
        "s1": rw.T @ Z,
        "s2": s2,
        "log_likelihood": float(ww @ norm),
        "norm": norm,
        "centers": centers,
    }


# -- log-densities ---------------------------------------------------------------------------


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", N_FEATURES)
@pytest.mark.parametrize("lower", [False, True])
def test_log_prob_matches_scipy(numba_path: bool, ct: str, d: int, lower: bool) -> None:
    rng = np.random.default_rng(d)
    params = make_params(rng, 4, d, ct, lower=lower)
    X = make_rows(rng, params, 300)
    shift = params.shift()
    got = log_weighted_prob(X - shift, params, shift)
    np.testing.assert_allclose(got, reference_log_prob(X, params), rtol=1e-9, atol=1e-9)
    # Without the weights: log N(z | c_k, Σ_k) about any shift.
    raw = log_gaussian_prob(X - shift, params.means - shift, params.precisions_cholesky, ct)
    np.testing.assert_allclose(raw, got - np.log(params.weights), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("d", [kernels.DIRECT_MAX_FEATURES + 3, 40])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_half_products_of_triangular_factors_equal_the_full_product(
    numba_path: bool, d: int, dtype: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upper and lower Cholesky factors of one precision take ``_log_prob``'s two half
    products; with them turned off (one product of the whole factor) the log-densities
    are the same, and both match scipy."""
    rng = np.random.default_rng(20 + d)
    upper = make_params(rng, 3, d, "full")
    X = make_rows(rng, upper, 400)
    lower = precisions_cholesky_from_precisions(np.linalg.inv(upper.covariances), "full")
    shift = upper.shift()
    Z = (X - shift).astype(dtype)
    want = reference_log_prob(Z.astype(np.float64) + shift, upper) - np.log(upper.weights)
    tol = 1e-9 if dtype == np.float64 else 2e-4
    got = {}
    for name, P in (("upper", upper.precisions_cholesky), ("lower", lower)):
        assert kernels._triangular_pieces(P) is not None
        got[name] = log_gaussian_prob(Z, upper.means - shift, P, "full")
    monkeypatch.setattr(kernels, "_triangular_pieces", lambda P: None)
    got["one product"] = log_gaussian_prob(Z, upper.means - shift, lower, "full")
    for name, g in got.items():
        assert g.dtype == dtype, name
        np.testing.assert_allclose(g, want, rtol=tol, atol=tol * d, err_msg=name)
    np.testing.assert_allclose(got["upper"], got["one product"], rtol=tol, atol=tol * d)


def test_triangular_pieces_cover_every_nonzero_of_the_factor() -> None:
    rng = np.random.default_rng(5)
    d = 7
    U = np.triu(rng.normal(size=(2, d, d)))
    L = np.transpose(U, (0, 2, 1)).copy()
    for P in (U, L):
        pieces = kernels._triangular_pieces(P)
        assert pieces is not None
        covered = np.zeros((d, d), dtype=bool)
        for feats, cols in pieces:
            covered[feats, cols] = True
        assert not np.any(P[:, ~covered])  # nothing outside the two pieces is used
        (_, c1), (_, c2) = pieces
        assert sorted([*range(d)[c1], *range(d)[c2]]) == list(range(d))  # each column once
    full = U + L
    assert kernels._triangular_pieces(full) is None
    assert kernels._triangular_pieces(U[:, :1, :1]) is None  # one feature: nothing to split


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", N_FEATURES)
def test_float32_keeps_its_dtype_and_precision(numba_path: bool, ct: str, d: int) -> None:
    rng = np.random.default_rng(10 + d)
    params = make_params(rng, 3, d, ct)
    X = make_rows(rng, params, 500)
    shift = params.shift()
    X32 = X.astype(np.float32)
    got = log_weighted_prob(X32 - shift.astype(np.float32), params, shift)
    assert got.dtype == np.float32
    want = reference_log_prob(X32.astype(np.float64), params)
    # Shifted to the mixture mean, the error is a few float32 ulps of the log-density.
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 * d)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", N_FEATURES)
def test_component_major_log_prob_is_the_transpose(numba_path: bool, ct: str, d: int) -> None:
    rng = np.random.default_rng(4)
    params = make_params(rng, 3, d, ct)
    X = make_rows(rng, params, 300)
    shift = params.shift()
    args = (X - shift, params.means - shift, params.precisions_cholesky, ct, np.log(params.weights))
    rows = kernels._log_prob(*args)[0]
    cols = kernels._log_prob(*args, component_major=True)[0]
    assert cols.shape == (3, 300) and cols.flags.c_contiguous
    np.testing.assert_allclose(cols, rows.T, rtol=1e-12, atol=1e-10)


def test_log_resp_and_norm_is_a_stable_logsumexp(numba_path: bool) -> None:
    rng = np.random.default_rng(3)
    wlp = rng.normal(scale=50.0, size=(200, 5)) - 1e4
    wlp[:, 2] = -np.inf  # a component of weight zero
    want_norm = logsumexp(wlp, axis=1)
    log_resp, norm = log_resp_and_norm(wlp.copy())
    np.testing.assert_allclose(norm, want_norm, rtol=1e-13)
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-13)
    assert np.all(log_resp[:, 2] == -np.inf)


def max_subtracted_three_ways(L: np.ndarray, lo: Any) -> tuple[np.ndarray, np.ndarray]:
    """``rowmax_subtract`` of (n, K) ``L``, checked equal to the two component-major
    kernels (in place on Lᵀ, and from L into a (K, n) array); returns it and the maxima."""
    nb = kernels._nb()
    n, k = L.shape
    rows, top = L.copy(), np.empty(n, L.dtype)
    nb.rowmax_subtract(rows, top, lo)
    cols, top_c = np.ascontiguousarray(L.T), np.empty(n, L.dtype)
    nb.colmax_subtract(cols, top_c, lo)
    moved, top_r = np.empty((k, n), L.dtype), np.empty(n, L.dtype)
    nb.colmax_subtract_rows(L, moved, top_r, lo)
    np.testing.assert_array_equal(top_c, top)
    np.testing.assert_array_equal(top_r, top)
    np.testing.assert_array_equal(cols, rows.T)
    np.testing.assert_array_equal(moved, rows.T)
    return rows, top


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_component_major_passes_equal_the_row_major_ones(dtype: Any, weighted: bool) -> None:
    """The E-step's (K, n) passes compute what the (n, K) ones do, transposed."""
    if not HAVE_NUMBA:  # pragma: no cover
        pytest.skip("numba absent")
    nb = kernels._nb()
    rng = np.random.default_rng(8)
    n, k = 1000, 7  # not a multiple of the 128-row blocks
    L = (rng.normal(scale=30.0, size=(n, k)) - 500.0).astype(dtype)
    L[:, 3] = -np.inf  # a component of weight zero
    L[10] = -np.inf  # a row no component explains: its maximum counts as 0
    L[11, 0] = np.nan  # NaN first: the maximum is not finite, so 0
    L[12, 5] = np.nan  # NaN later: ignored by the maximum
    w = rng.uniform(0.0, 2.0, size=n).astype(dtype) if weighted else np.empty(0, dtype)

    rows, top = max_subtracted_three_ways(L, np.dtype(dtype).type(-np.inf))
    assert top[10] == 0.0 and top[11] == 0.0 and top[12] == np.nanmax(L[12])

    E = np.exp(rows)
    norm, norm_c, nk = np.empty(n, dtype), np.empty(n, dtype), np.zeros(k)
    nb.normalize_rows(E, top, w, norm)
    Ec = np.ascontiguousarray(np.exp(rows.T))  # the component-major layout
    nb.normalize_cols(Ec, w, norm_c, nk)
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(norm_c, norm, rtol=rtol)
    np.testing.assert_allclose(Ec, E.T, rtol=rtol)
    assert norm[10] == 0.0 and np.all(Ec[:, 10] == 0.0)
    assert nk.dtype == np.float64
    np.testing.assert_allclose(nk, E.astype(np.float64).sum(axis=0), rtol=10 * rtol)  # NaN too


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_subtraction_cuts_below_the_exp_cutoff(dtype: Any) -> None:
    """With ``lo``, differences below it become −inf (exp 0, never subnormal); NaN stays;
    every other difference is the one without ``lo``, and the three layouts agree."""
    if not HAVE_NUMBA:  # pragma: no cover
        pytest.skip("numba absent")
    nb = kernels._nb()
    rng = np.random.default_rng(10)
    n, k = 2000, 9  # enough rows for the Numba path of ``_responsibilities``
    L = rng.normal(scale=400.0, size=(n, k)).astype(dtype)
    L[5, 2] = np.nan
    L[6] = -np.inf
    lo = kernels._exp_cut(np.dtype(dtype))
    assert lo == nb.exp_constants(dtype)[3] and lo.dtype == dtype
    plain, top0 = max_subtracted_three_ways(L, np.dtype(dtype).type(-np.inf))
    rows, top = max_subtracted_three_ways(L, lo)
    np.testing.assert_array_equal(top, top0)
    below = plain < lo
    assert below.sum() > n  # the scale makes many differences fall below the cutoff
    assert np.all(rows[below] == -np.inf)
    np.testing.assert_array_equal(rows[~below], plain[~below])  # NaN included
    assert np.isnan(rows[5, 2])
    E = np.exp(rows)
    tiny = np.finfo(dtype).tiny
    assert not np.any((E > 0) & (E < tiny))
    # What the E-step makes from them: responsibilities, none subnormal for K = 9.
    wlp = L.copy()
    r, _ = kernels._responsibilities(wlp, None)
    assert not np.any((r > 0) & (r < tiny))
    ok = np.ones(n, dtype=bool)
    ok[[5, 6]] = False  # the NaN row and the row of zeros
    np.testing.assert_allclose(r[ok].sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_exp_matches_numpy(dtype: Any) -> None:
    """The E-step's own vectorising exp is within a few ulp of np.exp, 0 below its cutoff."""
    if not HAVE_NUMBA:  # pragma: no cover
        pytest.skip("numba absent")
    nb = kernels._nb()
    rng = np.random.default_rng(9)
    x = np.concatenate([-rng.exponential(20.0, size=100), -rng.uniform(0, 1e-3, size=20)])
    x = np.concatenate([x, [0.0, -0.0, -1e-30, -np.inf, np.nan, -80.0, -700.0, -1e4]])
    x = x.astype(dtype)
    m = x.shape[0]
    row, shift = x.copy(), np.zeros(m, dtype)
    shift[:10] = -3.0  # row − shift is what is exponentiated
    row[:10] -= 3.0
    cst = nb.exp_constants(dtype)
    block = np.stack([row, row])  # every component's row is done
    nb._exp_block(block, shift, m, cst)
    np.testing.assert_array_equal(block[1], block[0])
    row = block[0]
    want = np.exp(x.astype(np.float64))
    cutoff = cst[3]
    normal = np.isfinite(x) & (x >= cutoff)
    ulp = np.finfo(dtype).eps
    np.testing.assert_allclose(row[normal], want[normal], rtol=4 * ulp)
    assert np.all(row[np.isfinite(x) & (x < cutoff)] == 0.0)
    assert row[x == -np.inf][0] == 0.0 and np.isnan(row[np.isnan(x)][0])
    assert row[x == 0.0][0] == 1.0


# -- statistics --------------------------------------------------------------------------------


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", N_FEATURES)
@pytest.mark.parametrize("weighted", [False, True])
def test_estep_stats_match_their_definitions(
    numba_path: bool, ct: str, d: int, weighted: bool
) -> None:
    rng = np.random.default_rng(100 + d)
    params = make_params(rng, 4, d, ct)
    X = make_rows(rng, params, 700)
    w = rng.uniform(0.0, 3.0, size=X.shape[0]) if weighted else None
    if w is not None:
        w[:10] = 0.0
    got = estep_stats(X, w, params)
    want = reference_stats(X, params, w)
    for name in ("nk", "s1", "s2", "centers"):
        g, r = getattr(got, name), want[name]
        if name == "s2" and ct == "spherical":
            # Spherical statistics keep Σ r‖z‖² per component, not its split by feature.
            g, r = g.sum(axis=1), r.sum(axis=1)
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-8)
    assert got.log_likelihood == pytest.approx(want["log_likelihood"], rel=1e-12)
    assert got.weight == pytest.approx(X.shape[0] if w is None else w.sum())
    assert got.n_rows == X.shape[0]
    # The worst-explained rows, with their log-densities.
    norm = want["norm"] if w is None else np.where(w > 0, want["norm"], np.inf)
    worst = np.sort(norm)[: params.n_components]
    np.testing.assert_allclose(np.sort(got.worst_scores), worst, rtol=1e-10)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", N_FEATURES)
def test_accumulate_matches_explicit_sums(numba_path: bool, ct: str, d: int) -> None:
    rng = np.random.default_rng(7)
    k = 3
    Z = rng.normal(size=(400, d))
    rw = rng.dirichlet(np.ones(k), size=400) * rng.uniform(0, 2, size=(400, 1))
    w = rng.uniform(0, 2, size=400)
    centers = rng.normal(size=(k, d)) if ct == "full" else np.zeros((k, d))
    nk, s1, s2 = accumulate(Z, rw, centers, ct, w)
    np.testing.assert_allclose(nk, rw.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(s1, rw.T @ Z, rtol=1e-11, atol=1e-11)
    if ct == "full":
        for j in range(k):
            D = Z - centers[j]
            want = np.einsum("n,ni,nj->ij", rw[:, j], D, D)
            np.testing.assert_allclose(s2[j], want, rtol=1e-11, atol=1e-11)
            np.testing.assert_array_equal(s2[j], s2[j].T)
    elif ct == "tied":
        np.testing.assert_allclose(s2, np.einsum("n,ni,nj->ij", w, Z, Z), rtol=1e-11)
    else:
        np.testing.assert_allclose(s2, rw.T @ Z**2, rtol=1e-11)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [2, kernels.DIRECT_MAX_FEATURES + 3])
def test_numba_and_numpy_paths_agree(ct: str, d: int) -> None:
    if not HAVE_NUMBA:  # pragma: no cover
        pytest.skip("numba absent")
    rng = np.random.default_rng(11)
    params = make_params(rng, 5, d, ct, lower=True)
    X = make_rows(rng, params, 1000)
    w = rng.uniform(0.0, 2.0, size=1000)
    results = []
    old = kernels.USE_NUMBA
    try:
        for flag in (True, False):
            kernels.USE_NUMBA = flag
            results.append((estep_stats(X, w, params), score_rows(X, params, want_resp=True)))
    finally:
        kernels.USE_NUMBA = old
    (a, (ra, na)), (b, (rb, nb)) = results
    assert a.allclose(b, rtol=1e-11, atol=1e-9)
    assert ra is not None and rb is not None
    np.testing.assert_allclose(ra, rb, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(na, nb, rtol=1e-12)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [2, kernels.DIRECT_MAX_FEATURES + 3])
def test_float32_statistics_agree_with_float64(numba_path: bool, ct: str, d: int) -> None:
    rng = np.random.default_rng(12)
    params = make_params(rng, 3, d, ct)
    X = make_rows(rng, params, 3000)
    X32 = X.astype(np.float32)
    s32 = estep_stats(X32, None, params)
    s64 = estep_stats(X32.astype(np.float64), None, params)
    assert s32.s2.dtype == np.float64 and s32.nk.dtype == np.float64
    scale = np.abs(s64.s2).max()
    np.testing.assert_allclose(s32.nk, s64.nk, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(s32.s1, s64.s1, rtol=1e-4, atol=1e-5 * np.abs(s64.s1).max())
    np.testing.assert_allclose(s32.s2, s64.s2, rtol=1e-4, atol=1e-5 * scale)
    assert s32.log_likelihood == pytest.approx(s64.log_likelihood, rel=1e-6)


# -- additivity and chunking -----------------------------------------------------------------


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [2, kernels.DIRECT_MAX_FEATURES + 3])
def test_statistics_of_two_halves_add_up(numba_path: bool, ct: str, d: int) -> None:
    rng = np.random.default_rng(21)
    params = make_params(rng, 4, d, ct)
    X = make_rows(rng, params, 900)
    w = rng.uniform(0.1, 2.0, size=900)
    for a in (1, 333, 899):
        parts = estep_stats(X[:a], w[:a], params) + estep_stats(X[a:], w[a:], params)
        assert parts.allclose(estep_stats(X, w, params), rtol=1e-11, atol=1e-9)


def _reduce(X: np.ndarray, params: GaussianParams, chunk_size: int | None) -> GaussianStats:
    data = ArrayData(X, chunk_size=chunk_size)
    width = chunk_width(params.n_components, X.shape[1], params.covariance_type)
    return data.reduce(lambda Xc, wc: estep_stats(Xc, wc, params), width=width)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_statistics_do_not_depend_on_chunk_size(numba_path: bool, ct: str) -> None:
    rng = np.random.default_rng(22)
    params = make_params(rng, 3, 6, ct)
    X = make_rows(rng, params, 2000)
    whole = _reduce(X, params, None)
    # At least n_components rows per chunk: GaussianStats keeps max(len) worst rows on add.
    for size in (3, 7, 256, 1999):
        assert _reduce(X, params, size).allclose(whole, rtol=1e-11, atol=1e-9)


def test_threads_give_the_same_sums_as_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parallel reduction is the same as the serial one (chunks are added in order)."""
    rng = np.random.default_rng(23)
    params = make_params(rng, 3, 4, "full")
    X = make_rows(rng, params, 5000)
    monkeypatch.setattr(data_mod, "n_threads", lambda: 2)
    parallel = _reduce(X, params, 300)
    monkeypatch.setattr(data_mod, "n_threads", lambda: 1)
    serial = _reduce(X, params, 300)
    assert parallel.allclose(serial, rtol=1e-14, atol=1e-12)
    assert parallel.n_rows == 5000


def test_sums_do_not_depend_on_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks go to the threads in runs (tasks) fixed by the row count, not the threads."""
    rng = np.random.default_rng(24)
    params = make_params(rng, 3, 4, "diag")
    X = make_rows(rng, params, 9000)
    assert len(data_mod._tasks(9000, 50)) < 180  # 180 chunks, grouped into tasks
    got = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(data_mod, "n_threads", lambda t=threads: t)
        got.append(_reduce(X, params, 50))
    for other in got[1:]:
        for name in ("nk", "s1", "s2"):
            np.testing.assert_array_equal(getattr(other, name), getattr(got[0], name))
        assert other.log_likelihood == got[0].log_likelihood


def test_tasks_cover_the_rows_in_whole_chunks() -> None:
    for n, step in ((1, 7), (100, 7), (10_000, 7), (10_000, 10_000), (12_345, 100)):
        tasks = data_mod._tasks(n, step)
        assert tasks[0][0] == 0 and tasks[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(tasks))
        assert all((b - a) % step == 0 for a, b in tasks[:-1])
        assert len(tasks) <= data_mod.TASKS


def test_chunks_hold_the_same_bytes_in_any_dtype() -> None:
    rows64 = data_mod.chunk_rows(64, 10**9)
    assert data_mod.chunk_rows(64, 10**9, itemsize=4) == 2 * rows64
    assert data_mod.chunk_rows(64, 100, itemsize=4) == 100  # never more than the rows
    assert ArrayData(np.zeros((10, 2), np.float32))._itemsize == 4


def test_for_each_chunk_visits_every_row_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_mod, "n_threads", lambda: 2)
    seen = np.zeros(100_001, dtype=int)

    def mark(start: int, stop: int) -> None:
        seen[start:stop] += 1

    for_each_chunk(mark, seen.shape[0], width=1000)
    assert np.all(seen == 1)


# -- prediction --------------------------------------------------------------------------------


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [2, kernels.DIRECT_MAX_FEATURES + 3])
def test_score_and_predict_rows_match_scipy(numba_path: bool, ct: str, d: int) -> None:
    rng = np.random.default_rng(31)
    params = make_params(rng, 4, d, ct)
    X = make_rows(rng, params, 1500)
    wlp = reference_log_prob(X, params)
    log_resp, norm = score_rows(X, params, want_resp=True)
    assert log_resp is not None
    np.testing.assert_allclose(norm, logsumexp(wlp, axis=1), rtol=1e-11)
    np.testing.assert_allclose(log_resp, wlp - logsumexp(wlp, axis=1)[:, None], atol=1e-9)
    none, norm_only = score_rows(X, params, want_resp=False)
    assert none is None
    np.testing.assert_allclose(norm_only, norm, rtol=1e-13)
    np.testing.assert_array_equal(predict_rows(X, params), wlp.argmax(axis=1))


def test_direct_path_handles_zero_weight_components(numba_path: bool) -> None:
    rng = np.random.default_rng(41)
    params = make_params(rng, 3, 2, "full")
    weights = np.array([0.5, 0.5, 0.0])
    params = GaussianParams(
        "full", weights, params.means, params.covariances, params.precisions_cholesky
    )
    X = make_rows(rng, params, 500)
    with np.errstate(divide="ignore"):
        got = estep_stats(X, None, params)
    assert got.nk[2] == 0.0
    assert np.all(np.isfinite(got.s2))
    assert got.nk.sum() == pytest.approx(500.0)


def test_reused_scratch_does_not_leak_into_results(numba_path: bool) -> None:
    """The direct E-step reuses per-thread arrays; what it returns must not be them."""
    rng = np.random.default_rng(42)
    params = make_params(rng, 3, 2, "full")
    X1, X2 = make_rows(rng, params, 700), make_rows(rng, params, 500) * 3.0
    first = estep_stats(X1, None, params)
    kept = (first.worst_scores.copy(), first.worst_rows.copy(), first.log_likelihood)
    estep_stats(X2, None, params)  # the same scratch, other numbers
    np.testing.assert_array_equal(first.worst_scores, kept[0])
    np.testing.assert_array_equal(first.worst_rows, kept[1])
    assert first.log_likelihood == kept[2]
    a = kernels._scratch("test", (3, 4), np.dtype(np.float32))
    b = kernels._scratch("test", 5, np.dtype(np.float32))
    assert a.shape == (3, 4) and b.shape == (5,) and np.shares_memory(a, b)


def test_runs_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    """Numba is optional: blocked, the module still imports and NumPy gives the same numbers."""
    import importlib.util
    import sys

    rng = np.random.default_rng(5)
    params = make_params(rng, 3, 2, "full")
    X = make_rows(rng, params, 5000)
    monkeypatch.setattr(kernels, "NUMBA_MIN_ROWS", 0)
    with_numba = estep_stats(X, None, params)

    monkeypatch.setitem(sys.modules, "numba", None)  # every import of numba now fails
    assert not kernels._numba_installed()
    path = kernels.__file__.replace("_kernels.py", "_numba_kernels.py")
    spec = importlib.util.spec_from_file_location("_numba_kernels_blocked", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the guarded import: no ImportError
    assert not module.HAVE_NUMBA

    monkeypatch.setattr(kernels, "HAVE_NUMBA", False)
    monkeypatch.setattr(kernels, "_compiled", None)
    monkeypatch.setattr(kernels, "_nb", lambda: pytest.fail("Numba kernels used"))
    without = estep_stats(X, None, params)
    assert without.allclose(with_numba, rtol=1e-11, atol=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
def test_worst_rows_one_pass_equals_argpartition(
    monkeypatch: pytest.MonkeyPatch, weighted: bool
) -> None:
    """The Numba selection of the worst rows picks the same scores as np.argpartition."""
    if not kernels.HAVE_NUMBA:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 3))
    scores = rng.normal(size=3000) * 5.0
    scores[[5, 17]] = -np.inf  # rows no component explains: selected, then left out
    scores[40] = np.nan
    scores[100:110] = scores[200]  # ties
    w = rng.uniform(0.0, 2.0, size=3000) if weighted else None
    if w is not None:
        w[np.argsort(scores)[:4]] = 0.0  # the very worst rows weigh nothing
    got = {}
    for min_rows in (0, 1 << 40):
        monkeypatch.setattr(kernels, "NUMBA_MIN_ROWS", min_rows)
        for keep in (1, 6, 3000, 4000):
            rows, s = kernels._worst(X, scores, w, keep)
            got[min_rows, keep] = (np.sort(s), rows.shape[0])
    for keep in (1, 6, 3000, 4000):
        a, b = got[0, keep], got[1 << 40, keep]
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1] == a[0].shape[0]
    assert np.all(np.isfinite(got[0, 6][0]))


@pytest.mark.parametrize("weighted", [False, True])
def test_worst_indices_are_a_stable_argsort_cut(
    monkeypatch: pytest.MonkeyPatch, weighted: bool
) -> None:
    """Both selection paths pick the rows a stable argsort would, ties to the earlier row."""
    rng = np.random.default_rng(11)
    scores = rng.integers(-4, 4, size=2500).astype(float)  # heavy ties everywhere
    # Late rows below every tie: they must push out the latest of the tied rows kept.
    scores[[1800, 2400]] = -np.inf
    scores[[4, 50]] = np.nan
    w = rng.uniform(0.0, 2.0, size=2500) if weighted else None
    if w is not None:
        w[rng.choice(2500, 300, replace=False)] = 0.0
    ref_scores = scores if w is None else np.where(w > 0, scores, np.inf)
    paths = [1 << 40] + ([0] if kernels.HAVE_NUMBA else [])
    for keep in (1, 5, 40, 2500, 3000):
        want = np.argsort(ref_scores, kind="stable")[:keep]
        want = want[np.isfinite(ref_scores[want])]
        for min_rows in paths:
            monkeypatch.setattr(kernels, "NUMBA_MIN_ROWS", min_rows)
            idx, s = kernels.worst_indices(scores, w, keep)
            np.testing.assert_array_equal(idx, want)
            np.testing.assert_array_equal(s, ref_scores[want])
