"""Stepwise EM and mini-batch k-means: exact helpers, then recovery of a known mixture."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from latentmix import GaussianMixture
from latentmix.cluster import KMeans
from latentmix.em._online import (
    DEFAULT_ALPHA,
    StepwiseEM,
    partial_fit_gaussian_mixture,
    partial_fit_kmeans,
    rereference,
    scale_stats,
    step_size,
)
from latentmix.gaussian._mstep import stats_from_resp

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]]) + 50.0
COVS = np.array([[[1.0, 0.3], [0.3, 0.8]], [[0.6, -0.2], [-0.2, 1.2]], [[1.5, 0.0], [0.0, 0.5]]])


def draw(n: int, rng: np.random.RandomState) -> np.ndarray:
    labels = rng.choice(3, size=n, p=WEIGHTS)
    L = np.linalg.cholesky(COVS)
    return MEANS[labels] + np.einsum("nij,nj->ni", L[labels], rng.randn(n, 2))


def true_log_density(X: np.ndarray) -> np.ndarray:
    dens = sum(
        w * multivariate_normal(m, c).pdf(X) for w, m, c in zip(WEIGHTS, MEANS, COVS, strict=True)
    )
    return np.log(dens)


def test_step_size_and_alpha():
    assert step_size(0) == pytest.approx(2.0**-DEFAULT_ALPHA)
    assert step_size(8, alpha=1.0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"alpha must be in \(0.5, 1\]"):
        StepwiseEM(alpha=0.5)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_rereference_equals_statistics_taken_about_the_new_point(covariance_type):
    rng = np.random.RandomState(0)
    X = draw(400, rng)
    resp = rng.dirichlet(np.ones(3), size=400)
    w = rng.uniform(0.5, 2.0, 400)
    shift_a, shift_b = MEANS.mean(axis=0), MEANS.mean(axis=0) + np.array([0.7, -0.4])
    centers_a = MEANS - shift_a
    centers_b = MEANS + 0.3 - shift_b
    a = stats_from_resp(X, resp, w, shift_a, centers_a, covariance_type)
    b = stats_from_resp(X, resp, w, shift_b, centers_b, covariance_type)
    moved = rereference(a, b.shift, b.centers)
    assert moved.allclose(b, rtol=1e-10, atol=1e-8)
    # Scaling weights leaves the row count alone; everything else doubles.
    doubled = dataclasses.replace(scale_stats(a, 2.0), n_rows=2 * a.n_rows)
    assert doubled.allclose(a + a, rtol=1e-12)


@pytest.fixture(scope="module")
def stream() -> list[np.ndarray]:
    rng = np.random.RandomState(42)
    return [draw(500, rng) for _ in range(200)]  # 100 000 rows, seen once


def _sorted(gm: GaussianMixture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(gm.means_[:, 0] + 10 * gm.means_[:, 1])
    return gm.weights_[order], gm.means_[order], gm.covariances_[order]


def test_partial_fit_recovers_the_mixture(stream):
    # Documented tolerance: after 100 000 rows seen once, weights within 0.01, means
    # within 0.05 and covariance entries within 0.05 of the generating mixture.
    gm = GaussianMixture(3, random_state=0)
    for batch in stream:
        partial_fit_gaussian_mixture(gm, batch)
    order = np.argsort(MEANS[:, 0] + 10 * MEANS[:, 1])
    weights, means, covs = _sorted(gm)
    np.testing.assert_allclose(weights, WEIGHTS[order], atol=0.01)
    np.testing.assert_allclose(means, MEANS[order], atol=0.05)
    np.testing.assert_allclose(covs, COVS[order], atol=0.05)
    assert gm.n_steps_ == len(stream) and len(gm.lower_bounds_) == len(stream)

    # Held out: within 1 % of a full-batch fit on the same rows (and of the truth).
    held_out = draw(20000, np.random.RandomState(7))
    batch_fit = GaussianMixture(3, random_state=0).fit(np.vstack(stream))
    online, full = gm.score(held_out), batch_fit.score(held_out)
    assert abs(online - full) <= 0.01 * abs(full)
    assert abs(online - true_log_density(held_out).mean()) <= 0.01 * abs(full)


def test_weights_count_like_repeated_rows(stream):
    start = dict(means_init=MEANS + 0.5, weights_init=WEIGHTS, precisions_init=np.linalg.inv(COVS))
    weighted, repeated = GaussianMixture(3, **start), GaussianMixture(3, **start)
    for batch in stream[:5]:
        w = np.where(np.arange(len(batch)) % 2 == 0, 2.0, 1.0)
        partial_fit_gaussian_mixture(weighted, batch, w)
        partial_fit_gaussian_mixture(repeated, np.vstack([batch, batch[::2]]))
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-10)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-9)


def test_fixed_parameters_stay_fixed(stream):
    gm = GaussianMixture(
        3,
        means_init=MEANS,
        weights_init=np.full(3, 1 / 3),
        precisions_init=np.array([np.eye(2)] * 3),
        fixed=("means",),
    )
    for batch in stream[:10]:
        partial_fit_gaussian_mixture(gm, batch)
    np.testing.assert_array_equal(gm.means_, MEANS)
    np.testing.assert_allclose(gm.weights_, WEIGHTS, atol=0.03)


def test_partial_fit_errors(stream):
    gm = GaussianMixture(3)
    with pytest.raises(ValueError, match=r"first batch.*fewer than n_components=3"):
        partial_fit_gaussian_mixture(gm, stream[0][:2])
    partial_fit_gaussian_mixture(gm, stream[0])
    with pytest.raises(ValueError, match="features"):
        partial_fit_gaussian_mixture(gm, np.ones((10, 3)))


def test_kmeans_partial_fit_recovers_the_centers(stream):
    km = KMeans(3, random_state=0)
    for batch in stream[:60]:
        partial_fit_kmeans(km, batch)
    order = np.argsort(km.cluster_centers_[:, 0] + 10 * km.cluster_centers_[:, 1])
    true_order = np.argsort(MEANS[:, 0] + 10 * MEANS[:, 1])
    # Well-separated clusters: each center is the running mean of its cluster's rows.
    np.testing.assert_allclose(km.cluster_centers_[order], MEANS[true_order], atol=0.05)
    assert km.counts_.sum() == pytest.approx(60 * 500)
    labels = km.predict(stream[-1])
    assert len(np.unique(labels)) == 3
