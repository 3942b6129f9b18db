"""The constrained M-steps of the fourteen parsimonious models (mclust's family).

Each M-step is checked as a maximiser: its objective Q is at least that of random
feasible perturbations, equals the closed forms of Celeux and Govaert (1995), respects
the nesting of the models, and a warm start never lowers Q (so EM never decreases).
Counts of free parameters are checked against mclust's ``nMclustParams`` and ``df``
(``tests/data/mclust_models.csv``); the log-likelihoods against mclust's are checked on
the production path (``select_mixture``) in ``tests/mixture/test_parsimonious_models.py``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.linalg import expm

from latentmix.gaussian import n_parameters as sklearn_style_n_parameters
from latentmix.gaussian._parsimonious import (
    ALIASES,
    CLOSED_FORM_MODELS,
    ITERATIVE_MODELS,
    MODELS,
    ParsimoniousState,
    canonical_model,
    constrained_covariances,
    expected_complete_loglik,
    n_covariance_parameters,
    n_parameters,
)
from latentmix.gaussian._parsimonious_em import (
    fit_em,
    initial_resps,
    log_likelihood,
    scatter_about_means,
)

DATA = Path(__file__).resolve().parent.parent / "data"
MULTIVARIATE = MODELS[:14]
TIGHT = {"tol": 1e-13, "max_iter": 5000}


def random_problem(seed: int, k: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """nk and positive-definite scatters W_k of components of different size and shape."""
    rng = np.random.default_rng(seed)
    m = rng.integers(d + 2, 4 * d + 20, size=k)
    scatter = np.empty((k, d, d))
    for j in range(k):
        root = rng.normal(size=(d, d)) * rng.uniform(0.2, 3.0, size=d)
        z = root @ rng.normal(size=(d, m[j]))
        scatter[j] = z @ z.T
    return m.astype(np.float64), scatter


def q(model: str, nk: np.ndarray, scatter: np.ndarray, cov: np.ndarray) -> float:
    return expected_complete_loglik(model, nk, scatter, cov)


# -- decompositions and feasible perturbations -------------------------------------------------


def decompose(model: str, cov: np.ndarray, state: ParsimoniousState):
    """λ_k (K,), A_k (K, D) and D_k (K, D, D) of a fitted model."""
    if state.volumes is not None:
        return state.volumes.copy(), state.shapes.copy(), state.orientations.copy()
    k, d = cov.shape[0], cov.shape[1]
    if model[-1] == "I" or d == 1:
        b = np.diagonal(cov, axis1=1, axis2=2)
        orient = np.tile(np.eye(d), (k, 1, 1))
    else:
        b, orient = np.linalg.eigh(cov)
    lam = np.exp(np.log(b).mean(axis=1))
    return lam, b / lam[:, None], orient


def random_rotation(rng: np.random.Generator, d: int, scale: float) -> np.ndarray:
    a = rng.normal(size=(d, d)) * scale
    return expm(a - a.T)


def perturb(model: str, cov: np.ndarray, state: ParsimoniousState, rng, scale: float):
    """A random covariance set satisfying ``model``'s constraint near the fitted one."""
    name = canonical_model(model)
    name = {"E": "EII", "V": "VII"}.get(name, name)
    lam, shape, orient = decompose(name, cov, state)
    k, d = shape.shape
    vol_l, shape_l, orient_l = name
    if vol_l == "E":
        lam = lam * np.exp(scale * rng.normal())
    else:
        lam = lam * np.exp(scale * rng.normal(size=k))
    if shape_l != "I":
        z = rng.normal(size=d) if shape_l == "E" else rng.normal(size=(k, d))
        shape = shape * np.exp(scale * z)
        shape /= np.exp(np.log(shape).mean(axis=-1, keepdims=True))
    if orient_l == "E":
        orient = random_rotation(rng, d, scale) @ orient
    elif orient_l == "V":
        orient = np.array([random_rotation(rng, d, scale) @ o for o in orient])
    return np.einsum("kij,kj,klj->kil", orient, lam[:, None] * shape, orient)


@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(1, 4),
    d=st.integers(1, 5),
    model=st.sampled_from(MULTIVARIATE),
)
def test_no_feasible_perturbation_beats_the_mstep(seed, k, d, model):
    nk, scatter = random_problem(seed, k, d)
    cov, state = constrained_covariances(model, nk, scatter, **TIGHT)
    best = q(model, nk, scatter, cov)
    rng = np.random.default_rng(seed + 1)
    for scale in (1e-3, 1e-2, 0.3):
        for _ in range(10):
            other = perturb(model, cov, state, rng, scale)
            assert q(model, nk, scatter, other) <= best + 1e-10 * abs(best)


@pytest.mark.parametrize("model", MULTIVARIATE)
def test_perturbations_are_feasible_and_leave_the_model_unchanged(model):
    # The perturbations above must stay in the model: refitting a perturbed covariance
    # set as "data" of a model with the same constraint gives that set back (nk · Σ_k
    # as the scatter has its optimum at Σ_k exactly when Σ satisfies the constraint).
    nk, scatter = random_problem(3, 3, 4)
    cov, state = constrained_covariances(model, nk, scatter, **TIGHT)
    other = perturb(model, cov, state, np.random.default_rng(0), 0.3)
    refit, _ = constrained_covariances(model, nk, nk[:, None, None] * other, **TIGHT)
    np.testing.assert_allclose(refit, other, rtol=1e-6, atol=1e-9)


# -- closed forms ------------------------------------------------------------------------------


def closed_form(model: str, nk: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Celeux and Govaert (1995), Table 1, written out independently."""
    k, d = w.shape[0], w.shape[1]
    n = nk.sum()
    eye = np.eye(d)
    if model == "EII":
        return np.array([np.trace(w.sum(0)) / (n * d) * eye] * k)
    if model == "VII":
        return np.array([np.trace(w[j]) / (nk[j] * d) * eye for j in range(k)])
    if model == "EEI":
        return np.array([np.diag(np.diag(w.sum(0))) / n] * k)
    if model == "VVI":
        return np.array([np.diag(np.diag(w[j])) / nk[j] for j in range(k)])
    if model == "EVI":
        dets = [np.prod(np.diag(w[j])) ** (1 / d) for j in range(k)]
        return np.array([sum(dets) / n * np.diag(np.diag(w[j])) / dets[j] for j in range(k)])
    if model == "EEE":
        return np.array([w.sum(0) / n] * k)
    if model == "VVV":
        return w / nk[:, None, None]
    if model == "EEV":
        out = []
        vals = [np.linalg.eigh(w[j]) for j in range(k)]
        omega = sum(v[0] for v in vals)
        for _, vec in vals:
            out.append(vec @ np.diag(omega / n) @ vec.T)
        return np.array(out)
    if model == "EVV":
        dets = [np.linalg.det(w[j]) ** (1 / d) for j in range(k)]
        return np.array([sum(dets) / n * w[j] / dets[j] for j in range(k)])
    raise AssertionError(model)


def test_closed_form_models_are_the_expected_ones():
    assert set(CLOSED_FORM_MODELS) == {
        "EII", "VII", "EEI", "VVI", "EVI", "EEE", "VVV", "EEV", "EVV", "E", "V",
    }  # fmt: skip
    assert set(ITERATIVE_MODELS) == {"VEI", "VEE", "EVE", "VVE", "VEV"}


@pytest.mark.parametrize("model", ["EII", "VII", "EEI", "VVI", "EVI", "EEE", "VVV", "EEV", "EVV"])
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_forms(model, seed):
    nk, scatter = random_problem(seed, 3, 4)
    cov, state = constrained_covariances(model, nk, scatter)
    np.testing.assert_allclose(cov, closed_form(model, nk, scatter), rtol=1e-10, atol=1e-12)
    assert state.n_iter == 0 and state.converged


def sklearn_reference(X, resp, reg, ct):
    from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters

    _, means, cov = _estimate_gaussian_parameters(X, resp, reg, ct)
    k, d = means.shape
    if ct == "tied":
        return np.tile(cov, (k, 1, 1))
    if ct == "diag":
        return np.array([np.diag(c) for c in cov])
    if ct == "spherical":
        return cov[:, None, None] * np.eye(d)
    return cov


@pytest.mark.parametrize("alias", list(ALIASES))
@pytest.mark.parametrize("reg", [0.0, 1e-3])
def test_aliases_equal_sklearn_estimates(alias, reg):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 3)) + 5.0
    resp = rng.dirichlet(np.ones(4), size=200)
    nk, _, scatter = scatter_about_means(X, resp)
    ours, _ = constrained_covariances(alias, nk, scatter, reg_covar=reg)
    same, _ = constrained_covariances(ALIASES[alias], nk, scatter, reg_covar=reg)
    np.testing.assert_array_equal(ours, same)
    np.testing.assert_allclose(ours, sklearn_reference(X, resp, reg, alias), rtol=1e-10)
    k, d = 4, 3
    assert n_parameters(alias, k, d) == sklearn_style_n_parameters(k, d, alias)


@pytest.mark.parametrize("model", MULTIVARIATE)
def test_reg_covar_is_added_to_the_scatter(model):
    nk, scatter = random_problem(5, 3, 3)
    reg = 0.05
    ours, _ = constrained_covariances(model, nk, scatter, reg_covar=reg, **TIGHT)
    shifted = scatter + reg * nk[:, None, None] * np.eye(3)
    ref, _ = constrained_covariances(model, nk, shifted, **TIGHT)
    np.testing.assert_allclose(ours, ref, rtol=1e-8)


# -- iterative models: nesting, convergence, warm starts ---------------------------------------

ORDER = {"I": 0, "E": 1, "V": 2}


def nested(a: str, b: str) -> bool:
    """Model a is a special case of model b."""
    if a[1] == "I":  # no shape, hence no orientation
        a = a[:2] + "I"
    return all(ORDER[x] <= ORDER[y] for x, y in zip(a, b))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nested_models_have_lower_objective(seed):
    nk, scatter = random_problem(seed, 3, 4)
    qs = {
        m: q(m, nk, scatter, constrained_covariances(m, nk, scatter, **TIGHT)[0])
        for m in MULTIVARIATE
    }
    pairs = [(a, b) for a, b in itertools.permutations(MULTIVARIATE, 2) if nested(a, b)]
    assert len(pairs) > 40
    for a, b in pairs:
        assert qs[a] <= qs[b] + 1e-9 * abs(qs[b]), (a, b)


@pytest.mark.parametrize("model", ITERATIVE_MODELS)
def test_one_component_iterative_models_reach_the_closed_form(model):
    # With K = 1 "equal" and "variable" coincide: VEI is VVI and the others are VVV.
    nk, scatter = random_problem(7, 1, 4)
    cov, _ = constrained_covariances(model, nk, scatter, **TIGHT)
    target = "VVI" if model == "VEI" else "VVV"
    np.testing.assert_allclose(cov, closed_form(target, nk, scatter), rtol=1e-6)


@pytest.mark.parametrize("model", ITERATIVE_MODELS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_iterative_models_converge(model, seed):
    nk, scatter = random_problem(seed, 4, 5)
    cov, state = constrained_covariances(model, nk, scatter)
    assert state.converged and 0 < state.n_iter < 100
    # Restarting from the solution moves Q by no more than the tolerance allows.
    again, state2 = constrained_covariances(model, nk, scatter, previous=state)
    assert q(model, nk, scatter, again) >= q(model, nk, scatter, cov) - 1e-12 * abs(
        q(model, nk, scatter, cov)
    )
    assert state2.n_iter <= state.n_iter


@settings(max_examples=30)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(1, 4),
    d=st.integers(1, 5),
    model=st.sampled_from(MULTIVARIATE),
    max_iter=st.sampled_from([1, 2, 100]),
    as_array=st.booleans(),
)
def test_warm_start_never_lowers_the_objective(seed, k, d, model, max_iter, as_array):
    # EM's monotonicity: the M-step for new statistics, started from the previous
    # parameters, is at least as good as keeping them, after any number of iterations.
    nk0, scatter0 = random_problem(seed, k, d)
    nk1, scatter1 = random_problem(seed + 1, k, d)
    previous, state = constrained_covariances(model, nk0, scatter0)
    start = previous if as_array else state
    cov, _ = constrained_covariances(model, nk1, scatter1, previous=start, max_iter=max_iter)
    q_prev = q(model, nk1, scatter1, previous)
    assert q(model, nk1, scatter1, cov) >= q_prev - 1e-10 * abs(q_prev)


# -- the objective, empty components, one dimension, errors -------------------------------------


def test_objective_is_the_expected_complete_loglik():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    resp = rng.dirichlet(np.ones(2), size=60)
    nk, means, scatter = scatter_about_means(X, resp)
    cov, _ = constrained_covariances("VEV", nk, scatter)
    direct = sum(
        resp[:, j] @ stats.multivariate_normal(means[j], cov[j]).logpdf(X) for j in range(2)
    )
    const = -0.5 * nk.sum() * 3 * np.log(2 * np.pi)
    assert np.isclose(q("VEV", nk, scatter, cov) + const, direct, rtol=1e-12)


@pytest.mark.parametrize("model", MULTIVARIATE)
def test_empty_component(model):
    nk, scatter = random_problem(4, 3, 3)
    nk_e = np.array([nk[0], 0.0, nk[2]])
    scatter_e = scatter.copy()
    scatter_e[1] = 0.0
    cov, _ = constrained_covariances(model, nk_e, scatter_e, **TIGHT)
    rest, _ = constrained_covariances(model, nk[[0, 2]], scatter[[0, 2]], **TIGHT)
    np.testing.assert_allclose(cov[[0, 2]], rest, rtol=1e-6)
    if model in ("EII", "EEI", "EEE"):
        np.testing.assert_allclose(cov[1], rest[0])
    else:
        assert np.all(np.isnan(cov[1]))


def test_one_dimensional_models():
    nk, scatter = random_problem(2, 3, 1)
    e, _ = constrained_covariances("E", nk, scatter)
    v, _ = constrained_covariances("V", nk, scatter)
    np.testing.assert_allclose(e, scatter.sum() / nk.sum() * np.ones((3, 1, 1)))
    np.testing.assert_allclose(v, scatter / nk[:, None, None])
    assert n_parameters("E", 3, 1) == 6 and n_parameters("V", 3, 1) == 8
    for model in MULTIVARIATE:  # all fourteen reduce to E or V
        cov, _ = constrained_covariances(model, nk, scatter)
        np.testing.assert_allclose(cov, e if model[0] == "E" else v, rtol=1e-8)


def test_errors():
    nk, scatter = random_problem(0, 2, 3)
    with pytest.raises(ValueError, match="Unknown covariance model 'XYZ'"):
        constrained_covariances("XYZ", nk, scatter)
    with pytest.raises(ValueError, match="one-dimensional"):
        constrained_covariances("E", nk, scatter)
    with pytest.raises(ValueError, match="shape"):
        constrained_covariances("VVV", nk[:1], scatter)
    with pytest.raises(ValueError, match="reg_covar"):
        constrained_covariances("VVV", nk, scatter, reg_covar=-1.0)
    with pytest.raises(ValueError, match="empty"):
        constrained_covariances("VEE", np.zeros(2), np.zeros_like(scatter))
    with pytest.raises(ValueError, match="previous"):
        constrained_covariances("VEE", nk, scatter, previous=np.eye(3))


# -- parameter counts ---------------------------------------------------------------------------

# R: sapply(models, function(m) nMclustParams(m, d, G)), mclust 6.0.0.
NMCLUSTPARAMS = {
    (1, 2): [3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5],
    (1, 4): [5, 5, 8, 8, 8, 8, 14, 14, 14, 14, 14, 14, 14, 14],
    (3, 2): [9, 11, 10, 12, 12, 14, 11, 13, 13, 15, 13, 15, 15, 17],
    (3, 4): [15, 17, 18, 20, 24, 26, 24, 26, 30, 32, 36, 38, 42, 44],
}


@pytest.mark.parametrize(("k", "d"), list(NMCLUSTPARAMS))
def test_parameter_counts_match_nmclustparams(k, d):
    assert [n_parameters(m, k, d) for m in MULTIVARIATE] == NMCLUSTPARAMS[(k, d)]
    for m in MULTIVARIATE:
        assert n_parameters(m, k, d) == n_covariance_parameters(m, k, d) + k * d + k - 1


def mclust_table() -> pd.DataFrame:
    return pd.read_csv(DATA / "mclust_models.csv", comment="#")


def test_parameter_counts_match_mclust_df():
    table = mclust_table().dropna()
    dims = {"iris": 4, "wine": 13, "faithful": 2}
    assert len(table) > 300
    for r in table.itertuples():
        assert n_parameters(r.model, r.G, dims[r.dataset]) == r.df, (r.dataset, r.model, r.G)


# -- EM: monotone traces, sample weights, mclust's log-likelihoods -----------------------------


def iris() -> np.ndarray:
    from sklearn.datasets import load_iris

    return load_iris().data


@pytest.mark.parametrize("model", MULTIVARIATE)
def test_em_trace_never_decreases_on_iris(model):
    X = iris()
    for k in (2, 4):
        resp = initial_resps(X, k, 3, seed=0)[2]  # a k-means start
        fit = fit_em(X, model, resp=resp, max_iter=300, tol=1e-12)
        trace = fit.trace
        assert np.all(np.isfinite(trace)) and len(trace) > 3
        assert np.all(np.diff(trace) >= -1e-10 * np.abs(trace[1:])), model


@pytest.mark.parametrize("model", ["VEI", "EVE", "VEV", "EVV"])
def test_sample_weights_equal_repeated_rows(model):
    X = iris()
    counts = np.random.default_rng(0).integers(0, 3, size=X.shape[0])
    resp = initial_resps(X, 3, 3)[2]
    weighted = fit_em(X, model, resp=resp, sample_weight=counts.astype(float), max_iter=12, tol=0)
    rep = fit_em(
        np.repeat(X, counts, axis=0),
        model,
        resp=np.repeat(resp, counts, axis=0),
        max_iter=12,
        tol=0,
    )
    np.testing.assert_allclose(weighted.trace, rep.trace, rtol=1e-9)
    np.testing.assert_allclose(weighted.covariances, rep.covariances, rtol=1e-6, atol=1e-10)


def test_log_likelihood_matches_scipy():
    X = iris()
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(3), size=X.shape[0])
    nk, means, scatter = scatter_about_means(X, resp)
    cov, _ = constrained_covariances("VVE", nk, scatter)
    w = nk / nk.sum()
    dens = sum(w[j] * stats.multivariate_normal(means[j], cov[j]).pdf(X) for j in range(3))
    assert np.isclose(log_likelihood(X, w, means, cov), np.log(dens).sum(), rtol=1e-12)
