"""The conjugate prior for mclust's EII, EEI, VEI, EVI, EEV and VEV (MAP EM).

The reference numbers are mclust 6.0.0's ``me(..., prior = priorControl())`` fits from the
same starting partition, stored in ``tests/data/mclust_prior.csv`` (the header says how).
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.datasets import load_iris

from latentmix import GaussianMixture
from latentmix.gaussian._kernels import estep_stats
from latentmix.gaussian._mstep import parsimonious_mstep, stats_from_labels, stats_from_resp
from latentmix.gaussian._params import GaussianParams, precisions_cholesky_from_covariances
from latentmix.gaussian._prior import (
    ConjugatePrior,
    log_prior,
    make_prior,
    prior_covariance_type,
)

DATA = Path(__file__).parent.parent / "data"
MODELS = ("EII", "EEI", "VEI", "EVI", "EEV", "VEV")
NO_PRIOR = ("VEE", "EVE", "VVE", "EVV")


@cache
def _dataset(name: str) -> NDArray[np.float64]:
    if name == "iris":
        return np.asarray(load_iris().data, dtype=np.float64)
    rows = np.loadtxt(DATA / "faithful.csv", delimiter=",", skiprows=1)
    return np.asarray(rows, dtype=np.float64)


@cache
def _reference() -> dict[tuple[str, int, str, str], NDArray[np.float64]]:
    lines = [ln for ln in (DATA / "mclust_prior.csv").read_text().splitlines() if ln[:1] != "#"]
    out = {}
    for row in csv.DictReader(lines):
        key = (row["dataset"], int(row["G"]), row["model"], row["field"])
        out[key] = np.array(row["values"].split(), dtype=np.float64)
    return out


def _cases() -> list[tuple[str, int, str]]:
    return sorted({(d, g, m) for d, g, m, f in _reference() if f == "loglik"})


def _start_stats(X: NDArray[np.float64], labels: NDArray[np.intp], k: int) -> Any:
    shift = X.mean(axis=0)
    nk = np.bincount(labels, minlength=k)
    centers = np.eye(k)[labels].T @ X / nk[:, None] - shift
    return stats_from_labels(X, labels, k, None, shift, centers, "full")


def _map_em(
    X: NDArray[np.float64], stats: Any, model: str, prior: ConjugatePrior, max_iter: int = 5000
) -> tuple[GaussianParams, float, NDArray[np.float64]]:
    """EM from the M-step of ``stats``: the parameters, their log-likelihood and the MAP
    objective (log-likelihood + log-prior) before every M-step."""
    params, bad, state = parsimonious_mstep(stats, model, 0.0, prior=prior)
    assert not bad
    objective: list[float] = []
    for _ in range(max_iter):
        stats = estep_stats(X, None, params)
        objective.append(stats.log_likelihood + log_prior(prior, params))
        if len(objective) > 1 and abs(objective[-1] - objective[-2]) < 1e-13 * abs(objective[-1]):
            break
        params, bad, state = parsimonious_mstep(stats, model, 0.0, prior=prior, previous=state)
        assert not bad
    return params, float(stats.log_likelihood), np.array(objective)


@pytest.mark.parametrize(("dataset", "k", "model"), _cases())
def test_map_em_matches_mclust(dataset: str, k: int, model: str) -> None:
    ref = _reference()
    X = _dataset(dataset)
    d = X.shape[1]
    labels = ref[(dataset, k, "", "start")].astype(np.intp) - 1
    spec: str | dict[str, Any] = "default"
    if model == "EII":
        # mclust's EII M-step leaves out the prior's scale (its fits are the same for any
        # scale); ours keeps it, so compare with a negligible one.
        spec = {"scale": 1e-12 * np.eye(d)}
    prior = make_prior(spec, X, None, k, model)
    params, loglik, _ = _map_em(X, _start_stats(X, labels, k), model, prior)
    # mclust's EEI keeps the unshrunk class means (while its variances take the means'
    # prior term), which is not the mode of any posterior; ours is the posterior mode, and
    # the two fixed points differ by up to 1.1e-5 in the log-likelihood here.
    rtol = 2e-5 if model == "EEI" else 1e-6
    np.testing.assert_allclose(loglik, ref[(dataset, k, model, "loglik")][0], rtol=rtol)
    ptol = 1e-2 if model == "EEI" else 1e-4
    np.testing.assert_allclose(params.weights, ref[(dataset, k, model, "pro")], atol=ptol)
    means = ref[(dataset, k, model, "mean")].reshape(k, d)
    spread = X.std(axis=0)
    assert np.max(np.abs(params.means - means) / spread) < ptol
    sigma = ref[(dataset, k, model, "sigma")].reshape(k, d, d)
    assert np.max(np.abs(params.covariances - sigma)) < ptol * np.max(np.abs(sigma))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dataset", ["iris", "faithful"])
def test_map_objective_never_decreases(dataset: str, model: str) -> None:
    X = _dataset(dataset)
    k = 4
    rng = np.random.default_rng(7)
    resp = rng.dirichlet(np.ones(k), size=X.shape[0])  # a poor start: many iterations
    shift = X.mean(axis=0)
    stats = stats_from_resp(X, resp, None, shift, np.zeros((k, X.shape[1])), "full")
    prior = make_prior("default", X, None, k, model)
    _, _, objective = _map_em(X, stats, model, prior, max_iter=400)
    assert len(objective) > 5
    assert np.all(np.diff(objective) >= -1e-10 * np.abs(objective[1:]))


def _map_q(
    X: NDArray[np.float64], resp: NDArray[np.float64], params: GaussianParams, prior: Any
) -> float:
    """Σ_i Σ_k r_ik log N(x_i | μ_k, Σ_k) + log p(μ, Σ): what the M-step maximises."""
    total = 0.0
    for j in range(params.n_components):
        diff = X - params.means[j]
        sign, logdet = np.linalg.slogdet(params.covariances[j])
        assert sign > 0
        maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(params.covariances[j]), diff)
        total += float(resp[:, j] @ (-0.5 * (maha + logdet + X.shape[1] * np.log(2 * np.pi))))
    return total + log_prior(prior, params)


def _with(params: GaussianParams, means: Any, cov: Any) -> GaussianParams:
    prec, bad = precisions_cholesky_from_covariances(cov, "full")
    assert not bad
    return GaussianParams("full", params.weights, means, cov, prec)


@pytest.mark.parametrize("model", MODELS)
def test_mstep_is_the_posterior_mode(model: str) -> None:
    # Moves that keep the model's constraint (common scalings, shifts of the means, and a
    # per-component scaling where the volumes vary) never raise what the M-step maximises.
    X = _dataset("iris")
    k = 3
    rng = np.random.default_rng(3)
    resp = rng.dirichlet(np.ones(k) * 2, size=X.shape[0])
    stats = stats_from_resp(X, resp, None, X.mean(axis=0), np.zeros((k, 4)), "full")
    prior = make_prior("default", X, None, k, model)
    params, bad, _ = parsimonious_mstep(stats, model, 0.0, prior=prior)
    assert not bad
    best = _map_q(X, resp, params, prior)
    for eps in (1e-3, -1e-3, 1e-2, -1e-2):
        cov = params.covariances * (1 + eps)
        assert _map_q(X, resp, _with(params, params.means, cov), prior) < best
        means = params.means + eps * rng.standard_normal(params.means.shape)
        assert _map_q(X, resp, _with(params, means, params.covariances), prior) < best
        if model[0] == "V":
            cov = params.covariances.copy()
            cov[1] *= 1 + eps
            assert _map_q(X, resp, _with(params, params.means, cov), prior) < best


def test_eii_uses_the_prior_scale() -> None:
    # Unlike mclust's EII M-step: the inverse-gamma prior's scale adds to the variance.
    X = _dataset("iris")
    stats = _start_stats(X, np.repeat(np.arange(3), 50), 3)
    tiny = make_prior({"scale": 1e-12 * np.eye(4)}, X, None, 3, "EII")
    default = make_prior("default", X, None, 3, "EII")
    var_tiny = parsimonious_mstep(stats, "EII", 0.0, prior=tiny)[0].covariances[0, 0, 0]
    var = parsimonious_mstep(stats, "EII", 0.0, prior=default)[0].covariances[0, 0, 0]
    n_terms = 150 * 4 + 3 * 4 + default.dof + 2  # (n + K) D + ν + 2
    np.testing.assert_allclose(var - var_tiny, np.trace(default.scale) / 4 / n_terms, rtol=1e-10)


@pytest.mark.parametrize("model", [m for m in MODELS if m != "VEV"])
def test_empty_component_keeps_a_finite_fit(model: str) -> None:
    X = _dataset("faithful")
    labels = (X[:, 0] > 3.0).astype(np.intp)  # component 2 gets no point
    resp = np.zeros((X.shape[0], 3))
    resp[np.arange(X.shape[0]), labels] = 1.0
    stats = stats_from_resp(X, resp, None, X.mean(axis=0), np.zeros((3, 2)), "full")
    prior = make_prior("default", X, None, 3, model)
    params, bad, _ = parsimonious_mstep(stats, model, 0.0, prior=prior)
    assert bad == []
    assert np.all(np.isfinite(params.covariances))
    assert np.all(np.linalg.eigvalsh(params.covariances) > 0)
    np.testing.assert_allclose(params.means[2], prior.mean, atol=1e-12)


@pytest.mark.parametrize("model", MODELS)
def test_default_scale_is_mclusts(model: str) -> None:
    X = _dataset("iris")
    k = 3
    prior = make_prior("default", X, None, k, model)
    assert prior.covariance_type == model
    assert prior.dof == X.shape[1] + 2
    assert prior.shrinkage == 0.01
    np.testing.assert_allclose(prior.mean, X.mean(axis=0))
    # mclust: var(data) / K^(2/D); its one-variance models take the average variance.
    np.testing.assert_allclose(prior.scale, np.cov(X.T) / k ** (2 / 4))


@pytest.mark.parametrize("model", NO_PRIOR)
def test_models_without_an_mclust_prior_raise(model: str) -> None:
    X = _dataset("iris")
    with pytest.raises(ValueError, match="mclust does not define its conjugate prior"):
        GaussianMixture(3, covariance_type=model, prior="default").fit(X)
    with pytest.raises(ValueError, match="EII, VII, EEI, VEI, EVI, VVI, EEE, EEV, VEV, VVV"):
        prior_covariance_type(model)


def test_prior_made_for_another_model_is_refused() -> None:
    X = _dataset("iris")
    stats = _start_stats(X, np.repeat(np.arange(3), 50), 3)
    prior = make_prior("default", X, None, 3, "EEV")
    with pytest.raises(ValueError, match="made for covariance_type='EEV'"):
        parsimonious_mstep(stats, "VEV", 0.0, prior=prior)


@pytest.mark.parametrize("model", ["VEI", "EVI", "EEV", "VEV"])
@pytest.mark.parametrize("k", [2, 3])
def test_gaussian_mixture_with_a_prior_reaches_mclusts_map_fit(model: str, k: int) -> None:
    """End to end: the estimator, started where mclust starts, ends where mclust ends."""
    ref = _reference()
    if ("iris", k, model, "loglik") not in ref:
        pytest.skip("mclust has no fit here")
    X = _dataset("iris")
    labels = ref[("iris", k, "", "start")].astype(np.intp) - 1
    prior = make_prior("default", X, None, k, model)
    start, bad, _ = parsimonious_mstep(_start_stats(X, labels, k), model, 0.0, prior=prior)
    assert not bad
    gm = GaussianMixture(
        k,
        covariance_type=model,
        prior="default",
        weights_init=start.weights,
        means_init=start.means,
        precisions_init=np.linalg.inv(start.covariances),
        reg_covar=0.0,
        tol=1e-13,
        max_iter=5000,
    ).fit(X)
    assert gm.converged_
    loglik = float(gm.score_samples(X).sum())
    np.testing.assert_allclose(loglik, ref[("iris", k, model, "loglik")][0], rtol=1e-6)
    # lower_bound_ is the log-posterior per row, and EM never lowered it.
    bounds = np.array(gm.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))
    posterior = loglik + log_prior(ConjugatePrior(model, **gm.prior_), gm._params())
    assert gm.lower_bound_ == pytest.approx(posterior / X.shape[0], rel=1e-9)
    # BIC uses the log-likelihood at the MAP estimate, with mclust's parameter count.
    assert gm.bic(X) == pytest.approx(-2 * loglik + gm._n_parameters() * np.log(150), rel=1e-12)
