"""Frozen parameters: ``fixed`` keeps some of weights, means, covariances at their *_init."""

from __future__ import annotations

import numpy as np
import pytest

from latentmix.mixture._gaussian_mixture import GaussianMixture

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
FIXED = (("weights",), ("means",), ("covariances",), ("weights", "means"), ("means", "covariances"))

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    return np.vstack([rng.randn(80, 2) @ rng.randn(2, 2) + 5 * rng.randn(2) for _ in range(3)])


def start(ct: str) -> dict[str, np.ndarray]:
    g = GaussianMixture(
        3, covariance_type=ct, init_params="random_from_data", random_state=1, max_iter=2
    ).fit(blobs())
    return {
        "weights_init": np.array([0.5, 0.3, 0.2]),
        "means_init": g.means_ + 0.3,
        "precisions_init": g.precisions_,
    }


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("fixed", FIXED)
def test_fixed_parameters_are_kept_and_the_bound_never_decreases(
    ct: str, fixed: tuple[str, ...]
) -> None:
    init = start(ct)
    gm = GaussianMixture(
        3, covariance_type=ct, fixed=fixed, tol=0, max_iter=25, reg_covar=0.0, **init
    ).fit(blobs())
    if "weights" in fixed:
        np.testing.assert_array_equal(gm.weights_, init["weights_init"])
    else:
        assert not np.allclose(gm.weights_, init["weights_init"])
    if "means" in fixed:
        np.testing.assert_array_equal(gm.means_, init["means_init"])
    else:
        assert not np.allclose(gm.means_, init["means_init"])
    if "covariances" in fixed:
        np.testing.assert_allclose(gm.precisions_, init["precisions_init"], rtol=1e-10)
    trace = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(trace) >= -1e-12 * np.abs(trace[1:]))


@pytest.mark.parametrize("ct", ("full", "diag"))
def test_covariances_are_taken_about_the_fixed_means(ct: str) -> None:
    """One EM step against a direct computation with scipy-free numpy."""
    X = blobs()
    init = start(ct)
    gm = GaussianMixture(3, covariance_type=ct, fixed=("means",), max_iter=1, tol=0, **init)
    gm.fit(X)
    ref = GaussianMixture(3, covariance_type=ct, max_iter=0, **init)
    ref.fit(X)  # max_iter=0 keeps the initial parameters
    resp = ref.predict_proba(X)
    nk = resp.sum(0)
    mu = init["means_init"]
    for k in range(3):
        Z = X - mu[k]
        cov = (resp[:, k, None] * Z).T @ Z / (nk[k] + 10 * np.finfo(float).eps)
        expected = cov + 1e-6 * np.eye(2) if ct == "full" else np.diag(cov) + 1e-6
        np.testing.assert_allclose(gm.covariances_[k], expected, rtol=1e-9)
    np.testing.assert_allclose(gm.weights_, nk / nk.sum(), rtol=1e-9)


def test_everything_fixed_changes_nothing() -> None:
    init = start("full")
    gm = GaussianMixture(3, fixed=("weights", "means", "covariances"), **init).fit(blobs())
    np.testing.assert_array_equal(gm.means_, init["means_init"])
    np.testing.assert_allclose(gm.precisions_, init["precisions_init"], rtol=1e-10)
    assert gm._n_parameters() == 0


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_fixed_parameters_do_not_count_in_bic(ct: str) -> None:
    X = blobs()
    init = start(ct)
    free = GaussianMixture(3, covariance_type=ct, **init).fit(X)
    means_fixed = GaussianMixture(3, covariance_type=ct, fixed=["means"], **init).fit(X)
    assert free._n_parameters() - means_fixed._n_parameters() == 3 * 2
    ll = means_fixed.score(X) * X.shape[0]
    p = means_fixed._n_parameters()
    assert means_fixed.bic(X) == pytest.approx(-2 * ll + p * np.log(X.shape[0]))


def test_fixed_means_with_missing_values_and_a_prior() -> None:
    X = blobs()
    X[np.random.RandomState(0).rand(*X.shape) < 0.1] = np.nan
    init = start("full")
    gm = GaussianMixture(3, fixed=("means",), prior="default", tol=0, max_iter=20, **init).fit(X)
    np.testing.assert_array_equal(gm.means_, init["means_init"])
    trace = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(trace) >= -1e-12 * np.abs(trace[1:]))


def test_clear_errors() -> None:
    X = blobs()
    with pytest.raises(ValueError, match="pass the values to keep as means_init"):
        GaussianMixture(3, fixed=("means",)).fit(X)
    with pytest.raises(ValueError, match="fixed must name parameters among"):
        GaussianMixture(3, fixed=("centres",), means_init=np.zeros((3, 2))).fit(X)
    with pytest.raises(ValueError, match=r"means_init should have the shape \(3, 2\)"):
        GaussianMixture(3, fixed=("means",), means_init=np.zeros((2, 2))).fit(X)
    with pytest.raises(ValueError, match=r"precisions_init .* should have the shape"):
        GaussianMixture(
            3, covariance_type="diag", fixed=("covariances",), precisions_init=np.ones((3, 3))
        ).fit(X)
