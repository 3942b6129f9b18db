"""GaussianMixture against scikit-learn, SciPy and the invariants of EM."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from latentmix import CollapseWarning, ConvergenceWarning, GaussianMixture, NotFittedError
from latentmix.gaussian import COVARIANCE_TYPES, GaussianParams, estep_stats
from latentmix.gaussian._kernels import log_resp_and_norm, log_weighted_prob

RTOL = 1e-8


def blobs(seed: int = 0, n: int = 150, d: int = 3, k: int = 3, spread: float = 6.0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    parts = [rng.randn(n, d) @ rng.randn(d, d) * 0.5 + spread * rng.randn(d) for _ in range(k)]
    return np.vstack(parts)


def sklearn_start(X: np.ndarray, k: int, ct: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Initial parameters both implementations will start from."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkGaussianMixture(k, covariance_type=ct, random_state=seed, max_iter=2).fit(X)
    return {
        "weights_init": ref.weights_,
        "means_init": ref.means_,
        "precisions_init": ref.precisions_,
    }


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_every_iterate_matches_sklearn(ct: str, seed: int) -> None:
    """From the same start and tol=0, iterate i of ours equals iterate i of scikit-learn."""
    X = blobs(seed, d=4)
    start = sklearn_start(X, 3, ct, seed)
    for n_iter in (1, 2, 3, 7):
        kw = dict(covariance_type=ct, max_iter=n_iter, tol=0.0, **start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref = SkGaussianMixture(3, **kw).fit(X)
            ours = GaussianMixture(3, **kw).fit(X)
        assert rel_err(ours.weights_, ref.weights_) < RTOL
        assert rel_err(ours.means_, ref.means_) < RTOL
        assert rel_err(ours.covariances_, ref.covariances_) < RTOL
        assert rel_err(ours.precisions_, ref.precisions_) < RTOL
        np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=RTOL)
        assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=RTOL)
        assert ours.n_iter_ == ref.n_iter_ == n_iter
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=RTOL)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=RTOL)
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=RTOL)
    assert ours.aic(X) == pytest.approx(ref.aic(X), rel=RTOL)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_convergence_matches_sklearn(ct: str) -> None:
    """With the default tol both stop at the same iteration with the same bound."""
    X = blobs(3, d=2)
    start = sklearn_start(X, 3, ct, 3)
    ref = SkGaussianMixture(3, covariance_type=ct, **start).fit(X)
    ours = GaussianMixture(3, covariance_type=ct, **start).fit(X)
    assert ours.converged_ and ref.converged_
    assert ours.n_iter_ == ref.n_iter_
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=RTOL)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_density_matches_scipy(ct: str) -> None:
    X = blobs(2, d=3)
    gm = GaussianMixture(3, covariance_type=ct, init_params="random_from_data", random_state=0)
    gm.fit(X)
    cov = {
        "full": lambda k: gm.covariances_[k],
        "tied": lambda k: gm.covariances_,
        "diag": lambda k: np.diag(gm.covariances_[k]),
        "spherical": lambda k: gm.covariances_[k] * np.eye(3),
    }[ct]
    dens = sum(
        gm.weights_[k] * sps.multivariate_normal(gm.means_[k], cov(k)).pdf(X) for k in range(3)
    )
    np.testing.assert_allclose(gm.score_samples(X), np.log(dens), rtol=1e-10)


def params_for(X: np.ndarray, k: int, ct: str, seed: int) -> GaussianParams:
    gm = GaussianMixture(
        k, covariance_type=ct, init_params="random_from_data", random_state=seed, max_iter=3
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    return gm._params()


@settings(max_examples=25)
@given(
    seed=st.integers(0, 10_000),
    ct=st.sampled_from(COVARIANCE_TYPES),
    split=st.floats(0.05, 0.95),
    weighted=st.booleans(),
)
def test_statistics_of_halves_add_up(seed: int, ct: str, split: float, weighted: bool) -> None:
    X = blobs(seed % 7, n=40, d=3)
    rng = np.random.RandomState(seed)
    w = rng.uniform(0, 3, size=X.shape[0]) if weighted else None
    params = params_for(X, 3, ct, seed % 5)
    a = int(split * X.shape[0])
    whole = estep_stats(X, w, params)
    left = estep_stats(X[:a], None if w is None else w[:a], params)
    right = estep_stats(X[a:], None if w is None else w[a:], params)
    assert (left + right).allclose(whole, rtol=1e-11, atol=1e-9)
    np.testing.assert_allclose(np.sort((left + right).worst_scores), np.sort(whole.worst_scores))


@settings(max_examples=25)
@given(seed=st.integers(0, 10_000), ct=st.sampled_from(COVARIANCE_TYPES))
def test_responsibilities_sum_to_one(seed: int, ct: str) -> None:
    X = blobs(seed % 5, n=30, d=2) * (1 + seed % 3)
    gm = GaussianMixture(3, covariance_type=ct, init_params="random", random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    resp = gm.predict_proba(X + np.random.RandomState(seed).randn(*X.shape))
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(resp >= 0)


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), ct=st.sampled_from(COVARIANCE_TYPES))
def test_log_likelihood_never_decreases(seed: int, ct: str) -> None:
    """EM's monotonicity, with no regularisation, on well-conditioned data."""
    X = blobs(seed % 11, n=60, d=2, spread=3.0)
    gm = GaussianMixture(
        3,
        covariance_type=ct,
        reg_covar=0.0,
        tol=0.0,
        max_iter=30,
        init_params="random",
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", CollapseWarning)
        gm.fit(X)
    # Re-seeding a collapsed component is not an EM step; the property is EM's.
    assume(gm.n_reseeded_ == 0)
    trace = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(trace) >= -1e-10 * np.abs(trace[1:]))


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), ct=st.sampled_from(COVARIANCE_TYPES))
def test_weight_two_equals_duplicating_the_row(seed: int, ct: str) -> None:
    X = blobs(seed % 5, n=25, d=2)
    rng = np.random.RandomState(seed)
    counts = rng.randint(0, 3, size=X.shape[0])
    counts[0] = max(counts[0], 1)
    start = sklearn_start(X, 3, ct, seed % 3)
    kw = dict(covariance_type=ct, max_iter=5, tol=0.0, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = GaussianMixture(3, **kw).fit(X, sample_weight=counts)
        repeated = GaussianMixture(3, **kw).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, rtol=1e-9)
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-9)
    Xr = np.repeat(X, counts, axis=0)
    assert weighted.score(X, sample_weight=counts) == pytest.approx(repeated.score(Xr), rel=1e-9)
    assert weighted.bic(X, sample_weight=counts) == pytest.approx(repeated.bic(Xr), rel=1e-9)
    assert weighted.aic(X, sample_weight=counts) == pytest.approx(repeated.aic(Xr), rel=1e-9)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_fit_predict_equals_fit_then_predict(ct: str) -> None:
    X = blobs(4)
    a = GaussianMixture(3, covariance_type=ct, random_state=0, init_params="random_from_data")
    b = GaussianMixture(3, covariance_type=ct, random_state=0, init_params="random_from_data")
    np.testing.assert_array_equal(a.fit_predict(X), b.fit(X).predict(X))


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_far_from_origin(ct: str) -> None:
    """scikit-learn issue 30382: float32 data like 1e6 + 1e-2·randn gives positive variances."""
    rng = np.random.RandomState(0)
    base = np.vstack([1e6 + 1e-2 * rng.randn(300, 2), 1e6 + 0.5 + 1e-2 * rng.randn(300, 2)])
    X32 = base.astype(np.float32)
    X64 = X32.astype(np.float64)
    start = {
        "weights_init": np.array([0.5, 0.5]),
        "means_init": np.array([[1e6 - 0.1, 1e6 - 0.1], [1e6 + 0.6, 1e6 + 0.6]]),
    }
    prec = {"full": np.stack([np.eye(2)] * 2), "tied": np.eye(2), "diag": np.ones((2, 2))}
    start["precisions_init"] = prec.get(ct, np.ones(2)) * 1e3
    kw = dict(covariance_type=ct, max_iter=20, tol=0.0, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        f32 = GaussianMixture(2, **kw).fit(X32)
        f64 = GaussianMixture(2, **kw).fit(X64)
    if ct in ("full", "tied"):
        assert np.all(np.linalg.eigvalsh(f32.covariances_) > 0)
    else:
        assert np.all(f32.covariances_ > 0)
    np.testing.assert_allclose(f32.means_, f64.means_, rtol=1e-6)
    np.testing.assert_allclose(f32.covariances_, f64.covariances_, rtol=2e-2, atol=1e-7)
    np.testing.assert_allclose(f32.weights_, f64.weights_, rtol=1e-3)
    assert f32.predict_proba(X32).dtype == np.float32
    assert f32.score_samples(X32).dtype == np.float32
    assert f32.means_.dtype == np.float64


def test_collapsing_component_is_reseeded() -> None:
    """A component started as a spike on one row, with no regularisation, collapses at once.

    It is re-seeded at a worst-explained row with the pooled covariance, and EM finishes.
    """
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(150, 2), rng.randn(150, 2) + 8])
    means_init = np.array([[0.0, 0.0], [8.0, 8.0], X[7]])
    precisions = np.stack([np.eye(2), np.eye(2), 1e12 * np.eye(2)])
    gm = GaussianMixture(
        3,
        reg_covar=0.0,
        means_init=means_init,
        weights_init=[0.45, 0.45, 0.1],
        precisions_init=precisions,
        max_iter=300,
    )
    with pytest.warns(CollapseWarning, match="re-seeded"):
        gm.fit(X)
    assert gm.converged_
    assert 1 <= gm.n_reseeded_ <= 3
    assert np.all(np.isfinite(gm.score_samples(X)))
    assert np.all(np.linalg.eigvalsh(gm.covariances_) > 0)
    # the re-seeded component explains real data, not a spike on one row
    assert gm.weights_.min() > 0.01
    assert np.linalg.eigvalsh(gm.covariances_).min() > 1e-3


def test_repeated_collapse_raises() -> None:
    """An isolated point with reg_covar=0 keeps attracting a component: a clear error."""
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(100, 2), rng.randn(100, 2) + 8, [[30.0, 30.0]]])
    gm = GaussianMixture(
        3,
        reg_covar=0.0,
        means_init=np.array([[0.0, 0.0], [8.0, 8.0], [30.0, 30.0]]),
        weights_init=[0.45, 0.45, 0.1],
        precisions_init=np.stack([np.eye(2)] * 3),
        max_iter=200,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        with pytest.raises(ValueError, match=r"kept collapsing.*increase reg_covar"):
            gm.fit(X)
    # the same data with scikit-learn's default regularisation fits without trouble
    gm.set_params(reg_covar=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        gm.fit(X)
    assert np.all(np.isfinite(gm.score_samples(X)))


def test_all_points_identical() -> None:
    X = np.ones((20, 3))
    gm = GaussianMixture(1).fit(X)
    np.testing.assert_allclose(gm.means_, X[:1])
    np.testing.assert_allclose(gm.covariances_[0], 1e-6 * np.eye(3))
    with pytest.raises(ValueError, match="distinct rows"):
        GaussianMixture(2).fit(X)
    with pytest.raises(ValueError, match="increase reg_covar"):
        GaussianMixture(1, reg_covar=0.0).fit(X)


def test_fewer_distinct_points_than_components() -> None:
    X = np.array([[0.0, 1.0], [0.0, 1.0], [2.0, 3.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match=r"only 2 distinct rows.*n_components <= 2"):
        GaussianMixture(3).fit(X)


def test_warm_start_continues() -> None:
    X = blobs(5)
    start = sklearn_start(X, 3, "full")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        once = GaussianMixture(3, max_iter=6, tol=0.0, **start).fit(X)
        twice = GaussianMixture(3, max_iter=3, tol=0.0, warm_start=True, **start).fit(X)
        twice.fit(X)
    np.testing.assert_allclose(twice.means_, once.means_, rtol=1e-10)
    assert twice.lower_bounds_ == pytest.approx(once.lower_bounds_[3:], rel=1e-12)


def test_convergence_warning() -> None:
    X = blobs(6)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        GaussianMixture(3, max_iter=1, init_params="random_from_data", random_state=0).fit(X)


def test_n_init_keeps_the_best() -> None:
    X = blobs(7, k=4)
    scores = [
        GaussianMixture(4, init_params="random_from_data", random_state=s).fit(X).lower_bound_
        for s in range(4)
    ]
    best = GaussianMixture(4, init_params="random_from_data", n_init=4, random_state=0).fit(X)
    assert best.lower_bound_ >= max(scores) - 1e-9 or best.lower_bound_ >= np.median(scores)


def test_sample_shapes_and_moments() -> None:
    X = blobs(8, d=2)
    for ct in COVARIANCE_TYPES:
        gm = GaussianMixture(3, covariance_type=ct, random_state=0, init_params="random_from_data")
        gm.fit(X)
        Xs, ys = gm.sample(20000)
        assert Xs.shape == (20000, 2) and ys.shape == (20000,)
        np.testing.assert_allclose(np.bincount(ys, minlength=3) / 20000, gm.weights_, atol=0.02)
        k = int(np.argmax(gm.weights_))
        np.testing.assert_allclose(Xs[ys == k].mean(axis=0), gm.means_[k], atol=0.1)
    with pytest.raises(ValueError, match="at least one sample"):
        gm.sample(0)


def test_log_resp_normalisation_is_stable() -> None:
    """Far-away rows still get normalised responsibilities (log-sum-exp)."""
    X = blobs(9)
    gm = GaussianMixture(3, init_params="random_from_data", random_state=0).fit(X)
    params = gm._params()
    far = X[:5] + 1e4
    log_resp, norm = log_resp_and_norm(
        log_weighted_prob(far - params.shift(), params, params.shift())
    )
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0)
    assert np.all(np.isfinite(norm))


# -- bad input ------------------------------------------------------------------------------


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        GaussianMixture().predict([[1.0, 2.0]])


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.array([[1.0, np.inf], [2.0, 3.0]]), "infinity"),
        (np.empty((0, 3)), "0 sample"),
        (np.array([1.0, 2.0, 3.0]), "2D array"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert|numeric|dtype"),
    ],
)
def test_bad_X(X: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianMixture().fit(X)


def test_fewer_samples_than_components() -> None:
    with pytest.raises(ValueError, match=r"n_samples=2.*n_components=3"):
        GaussianMixture(3).fit(np.array([[1.0, 2.0], [3.0, 4.0]]))


def test_wrong_feature_count_at_predict() -> None:
    gm = GaussianMixture(2, random_state=0, init_params="random_from_data").fit(blobs(0))
    with pytest.raises(ValueError, match="features"):
        gm.predict(np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_components": 0}, "n_components"),
        ({"covariance_type": "banana"}, "covariance_type"),
        ({"tol": -1.0}, "tol"),
        ({"reg_covar": -1e-6}, "reg_covar"),
        ({"init_params": "nope"}, "init_params"),
        ({"n_init": 0}, "n_init"),
        ({"weights_init": [0.5, 0.6]}, "normalized"),
        ({"weights_init": [1.0]}, "shape"),
        ({"means_init": np.zeros((2, 5))}, "means_init should have the shape"),
        ({"precisions_init": -np.ones((2, 3, 3))}, "positive-definite"),
        ({"random_state": -1}, r"'random_state'.*an int in the range \[0, 2\*\*32 - 1\]"),
        ({"random_state": np.random.default_rng(0)}, r"'random_state'.*numpy RandomState"),
    ],
)
def test_invalid_parameters(params: dict[str, object], match: str) -> None:
    kw = {"n_components": 2, **params}
    with pytest.raises(ValueError, match=match):
        GaussianMixture(**kw).fit(blobs(0))  # type: ignore[arg-type]


def test_bad_sample_weight() -> None:
    X = blobs(0)
    with pytest.raises(ValueError, match="Negative"):
        GaussianMixture().fit(X, sample_weight=-np.ones(X.shape[0]))
    with pytest.raises(ValueError, match="one weight per row"):
        GaussianMixture().fit(X, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="All sample weights are zero"):
        GaussianMixture().fit(X, sample_weight=np.zeros(X.shape[0]))


def test_invalid_parameter_error_is_both_value_and_type_error() -> None:
    # As scikit-learn's InvalidParameterError: code catching either keeps working.
    message = r"^The 'n_components' parameter of GaussianMixture must be an int in the range"
    with pytest.raises(TypeError, match=message + r" \[1, inf\)\. Got '2' instead\.$") as info:
        GaussianMixture("2").fit(blobs(0))  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_input_check_reports_nan_exactly() -> None:
    # The one pass that looks for NaN is a float64 sum: finite values whose sum overflows
    # (to inf, or to nan as inf - inf) must not be taken for missing entries.
    from latentmix._validation import check_finite

    huge = np.array([[1e308, 1e308], [-1e308, -1e308]])
    assert check_finite(huge, allow_nan=True) is False
    assert check_finite(huge[:1], allow_nan=True) is False
    assert check_finite(blobs(0), allow_nan=True) is False
    with_nan = blobs(0)
    with_nan[7, 1] = np.nan
    assert check_finite(with_nan, allow_nan=True) is True
    assert check_finite(with_nan.astype(np.float32), allow_nan=True) is True
    with pytest.raises(ValueError, match="NaN"):
        check_finite(with_nan)


def test_missing_value_checks_count_only_rows_that_are_points() -> None:
    # An entirely missing row and a row of weight zero are no points: neither is a
    # distinct row nor observes a column. A missing entry differs from any value.
    X = np.array([[0.0, 1.0], [0.0, 1.0], [2.0, np.nan], [np.nan, np.nan], [4.0, np.nan]])
    with pytest.raises(ValueError, match=r"only 3 distinct rows.*n_components <= 3"):
        GaussianMixture(4).fit(X)
    with pytest.raises(ValueError, match=r"only 2 distinct rows.*n_components <= 2"):
        GaussianMixture(4).fit(X, sample_weight=[1.0, 1.0, 1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"1 column\(s\) with no observed value \(columns \[1\]\)"):
        GaussianMixture(2).fit(X, sample_weight=[0.0, 0.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="Every row of X is entirely missing"):
        GaussianMixture(1).fit(X, sample_weight=[0.0, 0.0, 0.0, 1.0, 0.0])
    complete = np.array([[0.0, 1.0], [0.0, 1.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match=r"only 1 distinct rows"):
        GaussianMixture(2).fit(complete, sample_weight=[1.0, 1.0, 0.0])


def test_post_fit_methods_follow_the_nan_found_by_the_input_check() -> None:
    X = blobs(0)
    n = X.shape[0]
    gm = GaussianMixture(3, random_state=0).fit(X)
    partial_row = np.array([np.nan, X[0, 1], X[0, 2]])
    with_nan = np.vstack([X, partial_row, np.full(3, np.nan)])
    lp = gm.score_samples(with_nan)
    # Complete rows score as without the NaN rows; the partial row by its marginal density.
    np.testing.assert_allclose(lp[:n], gm.score_samples(X), rtol=1e-12)
    marginal = sum(
        w * sps.multivariate_normal(m[1:], c[1:, 1:]).pdf(partial_row[1:])
        for w, m, c in zip(gm.weights_, gm.means_, gm.covariances_)
    )
    assert lp[n] == pytest.approx(np.log(marginal), rel=1e-10)
    assert lp[n + 1] == 0.0
    resp = gm.predict_proba(with_nan)
    np.testing.assert_allclose(resp[:n], gm.predict_proba(X), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(resp[n + 1], gm.weights_, rtol=1e-12)
    np.testing.assert_array_equal(gm.predict(with_nan)[:n], gm.predict(X))
    # BIC counts the partial row but not the entirely missing one.
    n_params = (gm.bic(X) + 2.0 * lp[:n].sum()) / np.log(n)
    expected = -2.0 * lp.sum() + n_params * np.log(n + 1)
    assert gm.bic(with_nan) == pytest.approx(expected, rel=1e-12)
