"""Degenerate data, one documented outcome per case and estimator.

| case | GaussianMixture | BayesianGaussianMixture | KMeans | BernoulliMixture |
| --- | --- | --- | --- | --- |
| all points identical, K=1 | fits, covariance = reg_covar | fits | fits, inertia 0 | fits |
| all points identical, K=2 | ValueError "distinct rows" | fits (ConvergenceWarnings) | fits + ConvergenceWarning "distinct clusters" | fits |
| two points, three components | ValueError "n_samples >= n_components" | same | same ("n_clusters") | same |
| a component whose weight is zero | re-seeded + CollapseWarning | weight shrinks towards 0 | empty cluster re-seeded | mean ½ |

A component collapsing on one point during EM is covered in tests/mixture
(test_collapsing_component_is_reseeded, test_repeated_collapse_raises).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from latentmix import (
    BayesianGaussianMixture,
    CollapseWarning,
    ConvergenceWarning,
    GaussianMixture,
    KMeans,
)
from latentmix.mixture._bernoulli import BernoulliMixture


def blobs() -> np.ndarray:
    rng = np.random.RandomState(0)
    return np.vstack([rng.randn(100, 2), rng.randn(100, 2) + 8])


def test_identical_points_one_component_all_estimators() -> None:
    X = np.full((20, 3), 2.5)
    gm = GaussianMixture(1).fit(X)
    np.testing.assert_allclose(gm.covariances_[0], 1e-6 * np.eye(3))
    bgm = BayesianGaussianMixture(n_components=1, random_state=0).fit(X)
    assert np.all(np.isfinite(bgm.score_samples(X)))
    km = KMeans(1, random_state=0).fit(X)
    assert km.inertia_ == 0.0
    bm = BernoulliMixture(1).fit(np.ones((20, 3)))
    assert np.all(np.isfinite(bm.score_samples(np.ones((20, 3)))))


def test_identical_points_two_components() -> None:
    X = np.full((20, 3), 2.5)
    with pytest.raises(ValueError, match="distinct rows"):
        GaussianMixture(2).fit(X)
    # The k-means start inside warns that it found one cluster only, and the bound of
    # two identical factors creeps up slowly (may not converge): both ConvergenceWarnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bgm = BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
    assert np.all(np.isfinite(bgm.score_samples(X)))
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(1\)"):
        km = KMeans(2, random_state=0).fit(X)
    assert km.inertia_ == 0.0 and np.all(km.labels_ == km.labels_[0])
    bm = BernoulliMixture(2, random_state=0).fit(np.ones((20, 3)))
    assert np.all(np.isfinite(bm.means_)) and np.all(bm.means_ <= 1.0)


@pytest.mark.parametrize(
    "estimator",
    [
        GaussianMixture(3),
        BayesianGaussianMixture(n_components=3),
        KMeans(3),
        BernoulliMixture(3),
    ],
    ids=lambda e: type(e).__name__,
)
def test_two_points_three_components(estimator: object) -> None:
    X = np.array([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match=r"n_samples >= n_(components|clusters).*n_samples=2"):
        estimator.fit(X)  # type: ignore[attr-defined]


def test_gaussian_component_with_zero_weight_is_reseeded() -> None:
    X = blobs()
    gm = GaussianMixture(
        3,
        weights_init=[0.5, 0.5, 0.0],
        means_init=[[0.0, 0.0], [8.0, 8.0], [4.0, 4.0]],
        precisions_init=np.stack([np.eye(2)] * 3),
    )
    with pytest.warns(CollapseWarning, match="re-seeded"):
        gm.fit(X)
    assert gm.n_reseeded_ >= 1
    assert np.all(gm.weights_ > 0)
    assert np.all(np.isfinite(gm.score_samples(X)))


def test_bayesian_mixture_switches_off_unneeded_components() -> None:
    X = blobs()
    bgm = BayesianGaussianMixture(n_components=5, random_state=0, max_iter=500).fit(X)
    assert np.sum(bgm.weights_ > 0.05) == 2
    assert np.all(np.isfinite(bgm.score_samples(X)))


def test_bernoulli_component_without_weight_gets_finite_mean() -> None:
    X = np.ones((10, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bm = BernoulliMixture(2, alpha=0.0, random_state=0).fit(X)
    assert np.all((bm.means_ >= 0.0) & (bm.means_ <= 1.0))
    assert np.all(np.isfinite(bm.score_samples(X)))
