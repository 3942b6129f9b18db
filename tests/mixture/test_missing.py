"""Missing values by EM (Ghahramani and Jordan, 1994): NaN entries are latent."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

from latentmix import CollapseWarning
from latentmix.gaussian._kernels import estep_stats
from latentmix.gaussian._missing import (
    _log_resp,
    _log_weights,
    _stats_from_patterns,
    estep_stats_missing,
    full_covariances,
)
from latentmix.mixture._gaussian_mixture import GaussianMixture

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# Several fits stop after a fixed number of iterations on purpose (tol=0).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def correlated_blobs(seed: int = 0, n: int = 150, d: int = 3) -> np.ndarray:
    rng = np.random.RandomState(seed)
    parts = []
    for _ in range(3):
        A = rng.randn(d, d) * 0.8 + np.eye(d)
        parts.append(rng.randn(n, d) @ A + 6.0 * rng.randn(d))
    return np.vstack(parts)


def mask(X: np.ndarray, frac: float, seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    Xm = X.copy()
    Xm[rng.rand(*X.shape) < frac] = np.nan
    return Xm


def fitted(X: np.ndarray, ct: str, **kw: object) -> GaussianMixture:
    return GaussianMixture(
        3, covariance_type=ct, init_params="random_from_data", random_state=0, **kw
    ).fit(X)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_pattern_statistics_equal_the_complete_data_kernel(ct: str) -> None:
    """The missing-value code path, run on complete rows, gives the ordinary statistics."""
    X = correlated_blobs()
    params = fitted(X, ct, max_iter=5, tol=0)._params()
    lw = _log_weights(params)

    def resp_of(pat):  # type: ignore[no-untyped-def]
        lr, norm = _log_resp(pat.log_prob, lw)
        return np.exp(lr), norm

    ours = _stats_from_patterns(X, None, params, resp_of)
    assert ours.allclose(estep_stats(X, None, params), rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_no_nan_is_exactly_the_complete_data_path(ct: str) -> None:
    X = correlated_blobs()
    params = fitted(X, ct, max_iter=3, tol=0)._params()
    a, b = estep_stats_missing(X, None, params), estep_stats(X, None, params)
    for name in ("nk", "s1", "s2", "worst_scores"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.log_likelihood == b.log_likelihood


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_statistics_with_nan_are_additive(ct: str) -> None:
    Xm = mask(correlated_blobs(), 0.3, 1)
    w = np.random.RandomState(0).rand(Xm.shape[0])
    params = fitted(correlated_blobs(), ct, max_iter=3, tol=0)._params()
    whole = estep_stats_missing(Xm, w, params)
    parts = estep_stats_missing(Xm[:100], w[:100], params) + estep_stats_missing(
        Xm[100:], w[100:], params
    )
    assert whole.allclose(parts, rtol=1e-10, atol=1e-9)


@settings(max_examples=12)
@given(
    ct=st.sampled_from(COVARIANCE_TYPES),
    seed=st.integers(0, 10_000),
    frac=st.floats(0.05, 0.5),
)
def test_observed_data_log_likelihood_never_decreases(ct: str, seed: int, frac: float) -> None:
    """EM's guarantee, for the exact M-step: reg_covar=0 (adding reg_covar after the
    M-step can lower the likelihood by ~1e-8, with or without missing values)."""
    X = correlated_blobs(seed % 7, n=40)
    Xm = mask(X, frac, seed)
    start = GaussianMixture(
        3,
        covariance_type=ct,
        init_params="random_from_data",
        random_state=seed,
        max_iter=3,
        reg_covar=1e-3,
    ).fit(X)
    gm = GaussianMixture(
        3,
        covariance_type=ct,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
        tol=0,
        max_iter=30,
        reg_covar=0.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        gm.fit(Xm)
    # With reg_covar=0 a component may collapse onto a few rows and be re-seeded; that is
    # not an EM step, and the guarantee is EM's.
    assume(gm.n_reseeded_ == 0)
    trace = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(trace) >= -1e-12 * np.abs(trace[1:]))


def test_score_samples_is_the_observed_marginal_density() -> None:
    X = correlated_blobs()
    gm = fitted(X, "full")
    row = np.array([[X[0, 0], np.nan, X[0, 2]]])
    obs = [0, 2]
    ref = logsumexp(
        [
            np.log(gm.weights_[k])
            + sps.multivariate_normal.logpdf(
                row[0, obs], gm.means_[k, obs], gm.covariances_[k][np.ix_(obs, obs)]
            )
            for k in range(3)
        ]
    )
    assert gm.score_samples(row)[0] == pytest.approx(ref, rel=1e-12)
    resp = gm.predict_proba(row)[0]
    assert resp.sum() == pytest.approx(1.0)
    assert gm.predict(row)[0] == resp.argmax()


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_impute_is_the_conditional_mean(ct: str) -> None:
    X = correlated_blobs()
    gm = GaussianMixture(1, covariance_type=ct).fit(X)
    cov = full_covariances(gm._params())[0]
    row = np.array([[np.nan, X[5, 1], np.nan]])
    o, m = [1], [0, 2]
    ref = gm.means_[0, m] + cov[np.ix_(m, o)] @ np.linalg.solve(
        cov[np.ix_(o, o)], row[0, o] - gm.means_[0, o]
    )
    np.testing.assert_allclose(gm.impute(row)[0, m], ref, rtol=1e-12)
    assert gm.impute(row)[0, 1] == row[0, 1]


def test_missing_fit_is_closer_to_the_complete_fit_than_mean_imputation() -> None:
    X = correlated_blobs(3, n=200)
    Xm = mask(X, 0.2, 4)
    complete = fitted(X, "full", tol=1e-6, max_iter=300)
    init = dict(
        weights_init=complete.weights_,
        means_init=complete.means_,
        precisions_init=complete.precisions_,
    )
    em = GaussianMixture(3, tol=1e-6, max_iter=300, **init).fit(Xm)
    filled = np.where(np.isnan(Xm), np.nanmean(Xm, axis=0), Xm)
    naive = GaussianMixture(3, tol=1e-6, max_iter=300, **init).fit(filled)

    def errors(est: GaussianMixture) -> tuple[float, float]:
        cost = ((est.means_[:, None] - complete.means_[None]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(cost)
        mean_err = np.linalg.norm(est.means_[rows] - complete.means_[cols])
        cov_err = np.linalg.norm(est.covariances_[rows] - complete.covariances_[cols])
        return float(mean_err), float(cov_err)

    em_mean, em_cov = errors(em)
    naive_mean, naive_cov = errors(naive)
    assert em_mean < naive_mean
    assert em_cov < naive_cov


def test_impute_beats_column_means_on_held_out_entries() -> None:
    X = correlated_blobs(5, n=200)
    Xm = mask(X, 0.2, 6)
    gm = fitted(Xm, "full", tol=1e-6, max_iter=300)
    hidden = np.isnan(Xm)
    rmse_em = np.sqrt(np.mean((gm.impute(Xm)[hidden] - X[hidden]) ** 2))
    col = np.broadcast_to(np.nanmean(Xm, axis=0), X.shape)
    rmse_mean = np.sqrt(np.mean((col[hidden] - X[hidden]) ** 2))
    assert rmse_em < 0.7 * rmse_mean
    assert not np.isnan(gm.impute(Xm)).any()


def test_entirely_missing_rows_contribute_nothing_and_get_the_prior() -> None:
    X = correlated_blobs()
    Xm = mask(X, 0.15, 2)
    start = fitted(Xm, "full", max_iter=2, tol=0)
    init = dict(
        weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_
    )
    with_empty = np.vstack([Xm, np.full((5, 3), np.nan)])
    a = GaussianMixture(3, **init).fit(Xm)
    b = GaussianMixture(3, **init).fit(with_empty)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-12)
    assert a.lower_bounds_ == pytest.approx(b.lower_bounds_, rel=1e-12)
    empty = np.full((2, 3), np.nan)
    np.testing.assert_allclose(b.predict_proba(empty), np.tile(b.weights_, (2, 1)))
    np.testing.assert_array_equal(b.score_samples(empty), 0.0)
    assert b.bic(with_empty) == pytest.approx(b.bic(Xm))
    np.testing.assert_allclose(b.impute(empty), np.tile(b.weights_ @ b.means_, (2, 1)))


def test_sample_conditional_keeps_observed_and_centres_on_the_conditional_mean() -> None:
    X = correlated_blobs()
    gm = GaussianMixture(1).fit(X)
    rows = np.array([[np.nan, X[0, 1], X[0, 2]], [X[1, 0], np.nan, np.nan]])
    draws = gm.sample_conditional(rows, n_samples=4000, random_state=0)
    assert draws.shape == (4000, 2, 3)
    assert not np.isnan(draws).any()
    observed = ~np.isnan(rows)
    assert np.all(draws[:, observed] == rows[observed])
    np.testing.assert_allclose(draws.mean(axis=0), gm.impute(rows), atol=0.1)
    again = gm.sample_conditional(rows, n_samples=4000, random_state=0)
    np.testing.assert_array_equal(draws, again)
    with pytest.raises(ValueError, match="positive integer"):
        gm.sample_conditional(rows, n_samples=0)


def test_float32_with_nan() -> None:
    Xm = mask(correlated_blobs(), 0.1, 0).astype(np.float32)
    gm = fitted(Xm, "diag")
    assert gm.predict_proba(Xm).dtype == np.float32
    assert gm.score_samples(Xm).dtype == np.float32
    assert np.isfinite(gm.score(Xm))


def test_clear_errors() -> None:
    X = correlated_blobs()
    bad = X.copy()
    bad[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"column.*no observed value.*Drop those columns"):
        GaussianMixture(2).fit(bad)
    with pytest.raises(ValueError, match="Every row of X is entirely missing"):
        GaussianMixture(1).fit(np.full((5, 2), np.nan))
    inf = X.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2).fit(inf)
    few = np.vstack([X[:2], np.full((5, 3), np.nan)])
    with pytest.raises(ValueError, match="n_samples"):
        GaussianMixture(3, init_params="random_from_data").fit(few)
