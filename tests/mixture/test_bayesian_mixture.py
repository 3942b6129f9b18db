"""BayesianGaussianMixture: agreement with scikit-learn, ELBO, additivity, weights, streams."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp, xlogy
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

from latentmix.gaussian import COVARIANCE_TYPES
from latentmix.gaussian import _kernels as kernels
from latentmix.mixture._bayesian_mixture import BayesianGaussianMixture
from latentmix.mixture._vb_steps import (
    PRIOR_TYPES,
    _resp_log_resp,
    moments_from_stats,
    resp_stats,
    vb_estep_stats,
    weighted_log_prob,
)

RTOL = 1e-6  # the bar; in practice the iterates agree to ~1e-13


def blobs(seed: int = 0, n: int = 100, d: int = 3, k: int = 3, spread: float = 5.0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    parts = [rng.randn(n, d) @ rng.randn(d, d) * 0.5 + spread * rng.randn(d) for _ in range(k)]
    return np.vstack(parts)


def soft_resp(n: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    r = rng.uniform(size=(n, k))
    return r / r.sum(axis=1)[:, None]


def rel_err(a: Any, b: Any) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def sklearn_from_resp(X: np.ndarray, resp: np.ndarray, **kw: Any) -> SkBayesianGaussianMixture:
    """scikit-learn's estimator, fitted from the given initial responsibilities."""
    ref = SkBayesianGaussianMixture(**kw)
    # Its initialisation turns responsibilities into factors in `_initialize`: feed ours.
    ref._initialize_parameters = lambda X_, random_state, xp=None: ref._initialize(X_, resp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ref.fit(X)


def ours_from_resp(
    X: np.ndarray, resp: np.ndarray, sample_weight: Any = None, **kw: Any
) -> BayesianGaussianMixture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BayesianGaussianMixture(**kw)._fit(X, sample_weight=sample_weight, initial_resp=resp)


FACTORS = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
    "mean_precision_",
    "degrees_of_freedom_",
)


def assert_same_factors(ours: Any, ref: Any, rtol: float = RTOL) -> None:
    for name in FACTORS:
        assert rel_err(getattr(ours, name), getattr(ref, name)) < rtol, name
    wc_ours, wc_ref = ours.weight_concentration_, ref.weight_concentration_
    assert rel_err(np.hstack(wc_ours), np.hstack(wc_ref)) < rtol


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_every_iterate_matches_sklearn(ct: str, prior_type: str) -> None:
    """From the same initial responsibilities and tol=0, iterate i of ours is sklearn's."""
    X = blobs(0, d=3)
    resp = soft_resp(X.shape[0], 5)
    kw = dict(
        n_components=5, covariance_type=ct, weight_concentration_prior_type=prior_type, tol=0.0
    )
    for n_iter in (0, 1, 2, 5):
        ref = sklearn_from_resp(X, resp, max_iter=n_iter, **kw)
        ours = ours_from_resp(X, resp, max_iter=n_iter, **kw)
        assert_same_factors(ours, ref)
        assert ours.n_iter_ == ref.n_iter_ == n_iter
        if n_iter:
            # scikit-learn's tied bounds are arrays of shape (1,): ravel before comparing.
            ref_trace = np.ravel(np.asarray(ref.lower_bounds_, dtype=float))
            np.testing.assert_allclose(ours.lower_bounds_, ref_trace, rtol=RTOL)
    for name in ("mean_prior_", "covariance_prior_", "degrees_of_freedom_prior_"):
        assert rel_err(getattr(ours, name), getattr(ref, name)) < 1e-12, name
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=RTOL)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=RTOL)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_every_iterate_matches_sklearn_on_large_chunks(ct: str) -> None:
    """Chunks of at least NUMBA_MIN_ROWS rows take the fused kernels: still sklearn's iterates."""
    X = blobs(11, n=1000, d=4)  # 3000 rows: one chunk, above the Numba threshold
    assert X.shape[0] >= kernels.NUMBA_MIN_ROWS
    resp = soft_resp(X.shape[0], 6, seed=11)
    kw = dict(n_components=6, covariance_type=ct, tol=0.0, max_iter=5)
    ref = sklearn_from_resp(X, resp, **kw)
    ours = ours_from_resp(X, resp, **kw)
    assert_same_factors(ours, ref)
    ref_trace = np.ravel(np.asarray(ref.lower_bounds_, dtype=float))
    np.testing.assert_allclose(ours.lower_bounds_, ref_trace, rtol=RTOL)
    trace = np.asarray(ours.lower_bounds_)
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("ct", ["full", "diag", "spherical"])
def test_seeded_start_matches_sklearn(ct: str) -> None:
    """random_from_data reads only the seed rows; the fit is still sklearn's from those seeds.

    (``tied`` differs by design: see ``resp_stats``.)
    """
    X = blobs(12, n=200, d=3)
    kw = dict(
        n_components=4, covariance_type=ct, init_params="random_from_data", tol=0.0, max_iter=3
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkBayesianGaussianMixture(random_state=0, **kw).fit(X)
        ours = BayesianGaussianMixture(random_state=0, **kw).fit(X)
    assert_same_factors(ours, ref)
    ref_trace = np.ravel(np.asarray(ref.lower_bounds_, dtype=float))
    np.testing.assert_allclose(ours.lower_bounds_, ref_trace, rtol=RTOL)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_seed_statistics_equal_a_pass_over_every_row(ct: str, weighted: bool) -> None:
    """The seed-rows shortcut gives the statistics of one-hot responsibilities on all rows."""
    X = blobs(13, n=50, d=3)
    n, k = X.shape[0], 4
    w = np.random.RandomState(13).uniform(0.5, 2.0, size=n) if weighted else None
    seeds = np.array([17, 3, 120, 64])
    bgm = BayesianGaussianMixture(n_components=k, covariance_type=ct, max_iter=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bgm.fit(X, sample_weight=w)
    from latentmix.em._data import ArrayData
    from latentmix.mixture._bayesian_mixture import _VBFamily

    data = ArrayData(X, w)
    priors = bgm._get_priors()
    mean = X.mean(axis=0)
    family = _VBFamily(bgm, priors, X.shape[1], mean)
    one_hot = np.zeros((n, k))
    one_hot[seeds, np.arange(k)] = 1.0
    full = resp_stats(X, one_hot, w, mean, np.zeros((k, 3)), ct, weight_resp=False)
    short = family._seed_stats(data, seeds)
    assert short.allclose(full, rtol=1e-12, atol=1e-12)
    assert short.weight == pytest.approx(n if w is None else w.sum(), rel=1e-14)
    assert short.n_rows == n


def _few_iterations(
    X: np.ndarray, ct: str, weighted: bool, *, seed: int, max_iter: int
) -> tuple[np.ndarray | None, Any]:
    """Sample weights (or None) and the variational parameters after a few iterations."""
    w = np.random.RandomState(seed).uniform(0.0, 3.0, size=X.shape[0]) if weighted else None
    bgm = BayesianGaussianMixture(
        n_components=5, covariance_type=ct, init_params="random_from_data", max_iter=max_iter
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bgm.set_params(random_state=seed).fit(X, sample_weight=w)
    return w, bgm._vb_params()


@pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="needs Numba")
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_and_numpy_estep_agree(
    ct: str, weighted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same chunk through the Numba kernels and through the NumPy formulas."""
    X = blobs(14, n=1000, d=3)
    w, params = _few_iterations(X, ct, weighted, seed=14, max_iter=3)
    fused = vb_estep_stats(X, w, params)
    monkeypatch.setattr(kernels, "USE_NUMBA", False)
    plain = vb_estep_stats(X, w, params)
    assert fused.allclose(plain, rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_entropy_term_equals_the_naive_sum(ct: str, weighted: bool) -> None:
    """Σ w Σ_k r log r of the E-step against log-sum-exp responsibilities (scipy)."""
    X = blobs(15, n=1000, d=3, spread=2.0)  # overlapping: many rows split between components
    w, params = _few_iterations(X, ct, weighted, seed=15, max_iter=2)
    shift = params.shift()
    wlp = weighted_log_prob(X - shift, params, shift)
    log_resp = wlp - logsumexp(wlp, axis=1)[:, None]
    per_row = xlogy(np.exp(log_resp), np.exp(log_resp)).sum(axis=1)
    expected = per_row.sum() if w is None else per_row @ w
    assert expected < -1.0  # the rows really are split
    assert vb_estep_stats(X, w, params).resp_log_resp == pytest.approx(expected, rel=1e-10)


def test_entropy_helper_counts_zero_log_zero_as_zero() -> None:
    """A responsibility that is exactly 0 next to a log term of −∞ adds nothing (not NaN)."""
    rel = np.array([[0.0, -np.inf, -1.0], [0.0, -0.5, -2.0]])
    log_sum = np.log(np.exp(rel).sum(axis=1))
    resp = np.exp(rel - log_sum[:, None])
    w = np.array([2.0, 0.5])
    got = _resp_log_resp(resp * w[:, None], rel, log_sum, w)
    expected = float(xlogy(resp, resp).sum(axis=1) @ w)
    assert np.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-12)
    assert _resp_log_resp(resp, rel, log_sum, None) == pytest.approx(
        float(xlogy(resp, resp).sum()), rel=1e-12
    )


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_convergence_matches_sklearn(ct: str) -> None:
    """With the default tol both stop at the same iteration with the same bound."""
    X = blobs(3, d=2)
    resp = soft_resp(X.shape[0], 4, seed=3)
    kw = dict(n_components=4, covariance_type=ct, max_iter=300)
    ref = sklearn_from_resp(X, resp, **kw)
    ours = ours_from_resp(X, resp, **kw)
    assert ours.converged_ and ref.converged_
    assert ours.n_iter_ == ref.n_iter_
    assert ours.lower_bound_ == pytest.approx(float(np.ravel(ref.lower_bound_)[0]), rel=RTOL)
    assert_same_factors(ours, ref)


def test_custom_priors_match_sklearn() -> None:
    """Given priors are used as given (same numbers as scikit-learn's)."""
    X = blobs(4, d=2)
    resp = soft_resp(X.shape[0], 3, seed=4)
    kw = dict(
        n_components=3,
        max_iter=4,
        tol=0.0,
        weight_concentration_prior=0.3,
        mean_precision_prior=0.5,
        mean_prior=[1.0, -1.0],
        degrees_of_freedom_prior=3.5,
        covariance_prior=np.array([[2.0, 0.3], [0.3, 1.0]]),
    )
    assert_same_factors(ours_from_resp(X, resp, **kw), sklearn_from_resp(X, resp, **kw))


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_unneeded_components_switch_off(ct: str, prior_type: str) -> None:
    """3 well-separated Gaussians, 10 components: all but 3 weights fall below 1e-2."""
    if ct == "tied" and prior_type == "dirichlet_distribution":
        pytest.skip(
            "tied + Dirichlet distribution stalls at its initialisation (the lower bound "
            "barely moves); scikit-learn does the same from the same start"
        )
    rng = np.random.RandomState(1)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    X = np.vstack([rng.randn(300, 2) + c for c in centers])
    bgm = BayesianGaussianMixture(
        n_components=10,
        covariance_type=ct,
        weight_concentration_prior_type=prior_type,
        init_params="random",
        max_iter=500,
        random_state=0,
    ).fit(X)
    assert bgm.converged_
    assert np.sum(bgm.weights_ >= 1e-2) == 3
    big = np.argsort(bgm.weights_)[-3:]
    found = bgm.means_[big]
    for c in centers:
        assert np.min(np.linalg.norm(found - c, axis=1)) < 0.3


@settings(max_examples=15)
@given(
    seed=st.integers(0, 10_000),
    ct=st.sampled_from(COVARIANCE_TYPES),
    prior_type=st.sampled_from(PRIOR_TYPES),
    init=st.sampled_from(["random", "random_from_data", "k-means++"]),
    weighted=st.booleans(),
)
def test_elbo_never_decreases(
    seed: int, ct: str, prior_type: str, init: str, weighted: bool
) -> None:
    X = blobs(seed % 50, n=40, d=2, k=3)
    w = np.random.RandomState(seed).uniform(0.2, 3.0, size=X.shape[0]) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bgm = BayesianGaussianMixture(
            n_components=4,
            covariance_type=ct,
            weight_concentration_prior_type=prior_type,
            init_params=init,
            tol=0.0,
            max_iter=30,
            random_state=seed,
        ).fit(X, sample_weight=w)
    trace = np.asarray(bgm.lower_bounds_)
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), ct=st.sampled_from(COVARIANCE_TYPES))
def test_responsibilities_sum_to_one(seed: int, ct: str) -> None:
    X = blobs(seed % 20, n=30, d=2)
    bgm = BayesianGaussianMixture(
        n_components=3, covariance_type=ct, init_params="random_from_data", random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bgm.fit(X)
    far = np.random.RandomState(seed).randn(20, 2) * 100.0
    for Z in (X, far):
        resp = bgm.predict_proba(Z)
        assert np.all(resp >= 0)
        np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)


@settings(max_examples=20)
@given(
    seed=st.integers(0, 10_000),
    ct=st.sampled_from(COVARIANCE_TYPES),
    split=st.floats(0.05, 0.95),
    weighted=st.booleans(),
)
def test_statistics_of_halves_add_up(seed: int, ct: str, split: float, weighted: bool) -> None:
    """The variational E-step statistics of X[:a] plus those of X[a:] equal those of X."""
    X = blobs(seed % 20, n=30, d=3)
    w = np.random.RandomState(seed).uniform(0.0, 2.0, size=X.shape[0]) if weighted else None
    bgm = BayesianGaussianMixture(
        n_components=3, covariance_type=ct, init_params="random_from_data", max_iter=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bgm.set_params(random_state=seed).fit(X, sample_weight=w)
    params = bgm._vb_params()
    a = max(1, int(split * X.shape[0]))
    whole = vb_estep_stats(X, w, params)
    parts = vb_estep_stats(X[:a], None if w is None else w[:a], params) + vb_estep_stats(
        X[a:], None if w is None else w[a:], params
    )
    assert parts.allclose(whole)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_weight_two_equals_duplicating_the_row(ct: str) -> None:
    X = blobs(2, n=30, d=2)
    rng = np.random.RandomState(2)
    counts = rng.randint(0, 4, size=X.shape[0])
    counts[0] = 1
    resp = soft_resp(X.shape[0], 3, seed=2)
    kw = dict(n_components=3, covariance_type=ct, max_iter=6, tol=0.0)
    weighted = ours_from_resp(X, resp, sample_weight=counts.astype(float), **kw)
    rows = np.repeat(np.arange(X.shape[0]), counts)
    duplicated = ours_from_resp(X[rows], resp[rows], **kw)
    assert_same_factors(weighted, duplicated, rtol=1e-9)
    np.testing.assert_allclose(weighted.lower_bounds_, duplicated.lower_bounds_, rtol=1e-9)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("n", [60, 1000])  # 1000 per blob: chunks above the Numba threshold
def test_float32_far_from_origin(ct: str, n: int) -> None:
    """Translating the data translates the fit (statistics are taken about a shift)."""
    X = blobs(5, n=n, d=2)
    resp = soft_resp(X.shape[0], 3, seed=5)
    kw = dict(n_components=3, covariance_type=ct, max_iter=5, tol=0.0)
    near = ours_from_resp(X, resp, **kw)
    offset = np.array([1e4, -2e4])
    far = ours_from_resp((X + offset).astype(np.float32), resp, **kw)
    np.testing.assert_allclose(far.means_ - offset, near.means_, atol=5e-3)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-2)
    np.testing.assert_allclose(far.weights_, near.weights_, atol=1e-3)
    proba = far.predict_proba((X + offset).astype(np.float32))
    assert proba.dtype == np.float32


@pytest.mark.parametrize("init", ["random_from_data", "k-means++"])
def test_seeded_start_is_translation_invariant(init: str) -> None:
    """Non-regression: a tied start from seed rows must not depend on the origin."""
    X = blobs(6, n=50, d=2)
    kw = dict(n_components=3, covariance_type="tied", init_params=init, max_iter=0)
    near = BayesianGaussianMixture(random_state=0, **kw).fit(X)
    far = BayesianGaussianMixture(random_state=0, **kw).fit(X + 1e3)
    np.testing.assert_allclose(far.means_ - 1e3, near.means_, atol=1e-9)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-9)


def test_blending_moments_equals_reweighting_the_rows() -> None:
    """(1 − ρ)·moments(A) + ρ·moments(B) are the moments of A and B weighted 1 − ρ and ρ."""
    rng = np.random.RandomState(0)
    A, B = rng.randn(40, 3) + 1.0, rng.randn(30, 3) * 2.0 - 3.0
    rA, rB = soft_resp(40, 2, 1), soft_resp(30, 2, 2)
    rho = 0.3
    for ct in COVARIANCE_TYPES:
        shift, zeros = np.zeros(3), np.zeros((2, 3))
        mA = moments_from_stats(resp_stats(A, rA, None, shift, zeros, ct))
        mB = moments_from_stats(resp_stats(B, rB, None, shift, zeros, ct))
        wAB = np.concatenate([np.full(40, 1 - rho), np.full(30, rho)])
        both = moments_from_stats(
            resp_stats(np.vstack([A, B]), np.vstack([rA, rB]), wAB, shift, zeros, ct)
        )
        blended = mA.blend(mB, rho)
        np.testing.assert_allclose(blended.nk, both.nk, rtol=1e-12)
        np.testing.assert_allclose(blended.means, both.means, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(blended.scatter, both.scatter, rtol=1e-10, atol=1e-12)


def test_partial_fit_step_after_fit_is_one_more_iteration() -> None:
    """With total_samples = N, a batch that is the whole data set is one VB iteration."""
    X = blobs(6, n=50, d=2)
    resp = soft_resp(X.shape[0], 3, seed=6)
    kw = dict(n_components=3, tol=0.0)
    stepped = ours_from_resp(X, resp, max_iter=3, **kw)
    stepped.set_params(total_samples=float(X.shape[0])).partial_fit(X)
    assert_same_factors(stepped, ours_from_resp(X, resp, max_iter=4, **kw), rtol=1e-10)
    assert stepped.n_batch_iter_ == 1


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_partial_fit_recovers_the_components(ct: str) -> None:
    """A stream of batches from a fixed mixture: the components and weights come back."""
    rng = np.random.RandomState(0)
    centers = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    true_w = np.array([0.5, 0.3, 0.2])

    def batch(n: int) -> np.ndarray:
        z = rng.choice(3, size=n, p=true_w)
        return rng.randn(n, 2) * 0.7 + centers[z]

    # The first batch is fitted like `fit`; restarts keep it from a poor local optimum.
    bgm = BayesianGaussianMixture(
        n_components=6, covariance_type=ct, init_params="k-means++", n_init=3, random_state=0
    )
    for _ in range(40):
        bgm.partial_fit(batch(200))
    assert bgm.n_batch_iter_ == 40
    assert bgm.n_samples_seen_ == 40 * 200
    for c, wc in zip(centers, true_w):
        near = np.linalg.norm(bgm.means_ - c, axis=1) < 0.5
        assert bgm.weights_[near].sum() == pytest.approx(wc, abs=0.03)
    assert np.sum(bgm.weights_ > 0.01) == 3
    held_out = batch(500)
    assert bgm.score(held_out) > -4.0  # log-density per row of 3 Gaussians of sd 0.7 ≈ −2.8


def test_partial_fit_step_sizes_follow_the_schedule() -> None:
    """The second batch is blended with ρ = (1 + τ) ** −κ, the first replaces (ρ = 1)."""
    X = blobs(7, n=40, d=2)
    Y = blobs(8, n=30, d=2)
    bgm = BayesianGaussianMixture(
        n_components=3,
        init_params="k-means++",
        random_state=0,
        learning_offset=3.0,
        learning_decay=0.6,
        total_samples=500.0,
    )
    bgm.partial_fit(X)
    first = bgm._svi_moments
    params = bgm._vb_params()
    bgm.partial_fit(Y)
    batch = moments_from_stats(vb_estep_stats(Y, None, params).gaussian).scaled(500.0 / Y.shape[0])
    expected = first.blend(batch, (1 + 3.0) ** -0.6)
    np.testing.assert_allclose(bgm._svi_moments.nk, expected.nk, rtol=1e-12)
    np.testing.assert_allclose(bgm._svi_moments.scatter, expected.scatter, rtol=1e-10)


def test_partial_fit_rejects_other_feature_count() -> None:
    bgm = BayesianGaussianMixture(n_components=2, init_params="k-means++", random_state=0)
    bgm.partial_fit(blobs(0, n=20, d=3))
    with pytest.raises(ValueError, match="features"):
        bgm.partial_fit(blobs(0, n=20, d=2))


def test_fit_predict_equals_fit_then_predict() -> None:
    X = blobs(1)
    kw = dict(n_components=4, init_params="random_from_data", random_state=0)
    labels = BayesianGaussianMixture(**kw).fit_predict(X)
    np.testing.assert_array_equal(labels, BayesianGaussianMixture(**kw).fit(X).predict(X))


def test_warm_start_continues() -> None:
    X = blobs(2, d=2)
    resp = soft_resp(X.shape[0], 3, seed=1)
    kw = dict(n_components=3, tol=0.0)
    warm = ours_from_resp(X, resp, max_iter=3, **kw)
    warm.set_params(warm_start=True, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X)
    assert_same_factors(warm, ours_from_resp(X, resp, max_iter=5, **kw), rtol=1e-10)


def test_n_init_keeps_the_best() -> None:
    X = blobs(3, d=2)
    kw = dict(n_components=4, init_params="random_from_data", max_iter=200)
    best = BayesianGaussianMixture(n_init=4, random_state=0, **kw).fit(X)
    singles = []
    rs = np.random.RandomState(0)
    for _ in range(4):
        singles.append(BayesianGaussianMixture(random_state=rs, **kw).fit(X).lower_bound_)
    assert best.lower_bound_ == pytest.approx(max(singles), rel=1e-12)


def test_sample_shapes_and_moments() -> None:
    X = blobs(4, n=200, d=2, k=2, spread=8.0)
    bgm = BayesianGaussianMixture(n_components=2, init_params="k-means++", random_state=0).fit(X)
    Xs, ys = bgm.sample(4000, random_state=1)
    assert Xs.shape == (4000, 2) and ys.shape == (4000,)
    for k in range(2):
        np.testing.assert_allclose(Xs[ys == k].mean(axis=0), bgm.means_[k], atol=0.2)
    with pytest.raises(ValueError, match="at least one sample"):
        bgm.sample(0)


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        BayesianGaussianMixture().predict(np.zeros((2, 2)))


def test_wrong_feature_count_at_predict() -> None:
    bgm = BayesianGaussianMixture(n_components=2, init_params="random_from_data", random_state=0)
    bgm.fit(blobs(0, d=3))
    with pytest.raises(ValueError, match="features"):
        bgm.predict(np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"degrees_of_freedom_prior": 1.5}, "greater than 2"),
        ({"mean_prior": [0.0, 1.0]}, "mean_prior needs one value per feature"),
        ({"covariance_prior": np.eye(2)}, r"shape of \(3, 3\)"),
        ({"covariance_prior": -np.eye(3)}, "positive-definite"),
        ({"covariance_type": "diag", "covariance_prior": [1.0, 0.0, 1.0]}, "positive"),
        ({"weight_concentration_prior": 0.0}, "weight_concentration_prior"),
        ({"weight_concentration_prior_type": "beta"}, "weight_concentration_prior_type"),
        ({"learning_decay": 0.3}, "learning_decay"),
        ({"n_components": 0}, "n_components"),
    ],
)
def test_invalid_parameters(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BayesianGaussianMixture(**{"n_components": 2, **params}).fit(blobs(0))


def test_bad_initial_resp_shape() -> None:
    with pytest.raises(ValueError, match="initial_resp should have the shape"):
        BayesianGaussianMixture(n_components=2)._fit(blobs(0), initial_resp=np.ones((3, 2)))


def test_bad_sample_weight() -> None:
    X = blobs(0)
    with pytest.raises(ValueError, match="non-negative"):
        BayesianGaussianMixture(n_components=2).fit(X, sample_weight=-np.ones(X.shape[0]))


@parametrize_with_checks(
    [BayesianGaussianMixture(n_components=2, init_params="k-means++", max_iter=20)],
    expected_failed_checks=lambda est: {
        "check_sample_weight_equivalence_on_dense_data": (
            "the random initialisation draws from the repeated rows, so the two fits start "
            "differently; from the same start weights equal repetition (tested above)"
        )
    },
)
def test_sklearn_estimator_contract(estimator: Any, check: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
