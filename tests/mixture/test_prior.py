"""The conjugate prior (MAP EM, Fraley and Raftery 2007) and its defaults (mclust's)."""

from __future__ import annotations

import numpy as np
import pytest

from latentmix._exceptions import CollapseWarning
from latentmix.gaussian._mstep import mstep
from latentmix.gaussian._params import GaussianParams, precisions_cholesky_from_covariances
from latentmix.gaussian._prior import ConjugatePrior, log_prior, make_prior
from latentmix.mixture._gaussian_mixture import GaussianMixture
from latentmix.mixture._selection import _init_from_labels

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blobs(seed: int = 0, n: int = 60) -> np.ndarray:
    rng = np.random.RandomState(seed)
    return np.vstack([rng.randn(n, 3) @ rng.randn(3, 3) + 5 * rng.randn(3) for _ in range(3)])


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_defaults_are_mclusts(ct: str) -> None:
    X = blobs()
    prior = make_prior("default", X, None, 3, ct)
    fac = (1 / 3) ** (2 / 3)
    cov = np.cov(X, rowvar=False)  # R's var: n - 1
    assert prior.shrinkage == 0.01
    assert prior.dof == 3 + 2
    np.testing.assert_allclose(prior.mean, X.mean(axis=0))
    expected = {
        "full": fac * cov,
        "tied": fac * cov,
        "diag": fac * np.diag(cov),
        "spherical": fac * np.trace(cov) / 3,
    }[ct]
    np.testing.assert_allclose(prior.scale, expected, rtol=1e-12)
    custom = make_prior({"shrinkage": 0.5, "dof": 10}, X, None, 3, ct)
    assert (custom.shrinkage, custom.dof) == (0.5, 10.0)


def _log_posterior(X: np.ndarray, resp: np.ndarray, params: GaussianParams, prior) -> float:
    """Σ r log N(x | μ_k, Σ_k) + log p(θ): the M-step's objective, computed directly."""
    gm = GaussianMixture(params.n_components, covariance_type=params.covariance_type)
    gm._set_params(params)
    gm.n_features_in_ = X.shape[1]
    from latentmix.gaussian._kernels import log_gaussian_prob

    logp = log_gaussian_prob(X, params.means, params.precisions_cholesky, params.covariance_type)
    return float((resp * logp).sum() + log_prior(prior, params))


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_map_mstep_is_the_posterior_mode(ct: str) -> None:
    """No perturbation of the M-step's output raises the expected complete log-posterior."""
    X = blobs(1, n=8)  # few rows: the prior matters
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 3, size=X.shape[0])
    prior = make_prior({"shrinkage": 0.3}, X, None, 3, ct)
    from latentmix.gaussian._mstep import stats_from_labels

    shift = X.mean(axis=0)
    centers = np.zeros((3, 3))
    stats = stats_from_labels(X, labels, 3, None, shift, centers, ct)
    params, bad = mstep(stats, 0.0, prior=prior)
    assert bad == []
    resp = np.eye(3)[labels]
    best = _log_posterior(X, resp, params, prior)
    for _ in range(30):
        means = params.means + 1e-3 * rng.randn(*params.means.shape)
        cov = np.asarray(params.covariances) * np.exp(1e-3 * rng.randn())
        if ct in ("full", "tied"):
            A = 1e-3 * rng.randn(*cov.shape)
            cov = cov + A @ np.swapaxes(A, -1, -2)
        prec, _ = precisions_cholesky_from_covariances(cov, ct)
        other = GaussianParams(ct, params.weights, means, cov, prec)
        assert _log_posterior(X, resp, other, prior) <= best + 1e-12


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_log_posterior_never_decreases(ct: str) -> None:
    X = blobs()
    gm = GaussianMixture(
        3,
        covariance_type=ct,
        init_params="random_from_data",
        random_state=0,
        tol=0,
        max_iter=40,
        prior="default",
    ).fit(X)
    trace = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(trace) >= -1e-12 * np.abs(trace[1:]))
    # BIC uses the log-likelihood at the MAP estimate, as mclust does.
    ll = gm.score(X) * X.shape[0]
    assert gm.bic(X) == pytest.approx(-2 * ll + gm._n_parameters() * np.log(X.shape[0]))
    assert gm._objective(X, None) == pytest.approx(
        ll + log_prior(ConjugatePrior(ct, **gm.prior_), gm._params())
    )


def test_degenerate_clusters_get_finite_fits() -> None:
    """Three identical points and an empty component: ML fails, MAP gives a finite fit."""
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(40, 2), np.tile([[8.0, 8.0]], (3, 1))])
    labels = np.r_[np.zeros(40, int), np.ones(3, int)]
    init = _init_from_labels(X, labels, 2, "full", None, 1e-3)
    assert init is not None
    # Maximum likelihood collapses onto the three points (warned, here raised, or an error).
    with pytest.raises((ValueError, CollapseWarning), match="reg_covar"):
        GaussianMixture(2, reg_covar=0.0, max_iter=5, **init).fit(X)
    gm = GaussianMixture(2, reg_covar=0.0, max_iter=50, prior="default", **init).fit(X)
    assert np.all(np.isfinite(gm.covariances_))
    assert np.all(np.linalg.eigvalsh(gm.covariances_) > 0)
    assert np.isfinite(gm.bic(X))
    # An empty component keeps the prior's mode instead of failing.
    few = GaussianMixture(
        4,
        covariance_type="diag",
        prior="default",
        init_params="random_from_data",
        random_state=0,
        max_iter=50,
    ).fit(X[:6])
    assert np.all(np.isfinite(few.covariances_)) and few.n_reseeded_ == 0


def test_prior_off_by_default() -> None:
    X = blobs()
    a = GaussianMixture(3, init_params="random_from_data", random_state=0).fit(X)
    assert a.prior_ is None
    b = GaussianMixture(3, init_params="random_from_data", random_state=0, prior=None).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)


@pytest.mark.parametrize(
    ("prior", "match"),
    [
        ("mclust", "'prior' parameter of GaussianMixture must be None or 'default'"),
        ({"shrinkage": -1}, r"prior\['shrinkage'\] must be a finite number >= 0"),
        ({"dof": 1}, r"prior\['dof'\] must be a number > 2"),
        ({"scale": np.eye(2)}, r"prior\['scale'\] .* shape \(3, 3\)"),
        ({"scale": -np.eye(3)}, "symmetric positive-definite"),
        ({"mean": [0, 0]}, r"prior\['mean'\] must be a finite array of shape \(3,\)"),
        ({"kappa": 1}, "Unknown prior hyperparameter"),
    ],
)
def test_invalid_hyperparameters(prior: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2, prior=prior).fit(blobs())  # type: ignore[arg-type]
