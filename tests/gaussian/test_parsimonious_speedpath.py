"""The fast path of the EVE and VVE M-steps: compiled kernels and Newton steps for D.

The compiled sweep and derivatives must give the NumPy fallback's numbers; the
derivatives must be those of the profile objective (finite differences); and the
Newton steps must reach at least what the plane sweeps alone reach, in far fewer
iterations, on a problem where the sweeps crawl.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from scipy.linalg import expm

import latentmix.gaussian._parsimonious as pars
import latentmix.gaussian._parsimonious_numba as pars_numba
from latentmix.gaussian._parsimonious import constrained_covariances, expected_complete_loglik
from latentmix.gaussian._parsimonious_em import fit_em, initial_resps

needs_numba = pytest.mark.skipif(not pars_numba.HAVE_NUMBA, reason="Numba is not installed")


def scatters(seed: int, k: int, d: int, spread: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """nk and positive-definite W_k; feature scales over ``spread`` decades if asked."""
    rng = np.random.default_rng(seed)
    m = rng.integers(d + 2, 4 * d + 20, size=k)
    scale = 10.0 ** rng.uniform(-spread / 2, spread / 2, size=d)
    w = np.empty((k, d, d))
    for j in range(k):
        root = rng.normal(size=(d, d)) * rng.uniform(0.2, 3.0, size=d)
        z = scale[:, None] * (root @ rng.normal(size=(d, m[j])))
        w[j] = z @ z.T
    return m.astype(np.float64), w


def rotated(w: np.ndarray, orient: np.ndarray) -> np.ndarray:
    m = orient.T @ w @ orient
    return 0.5 * (m + m.transpose(0, 2, 1))


CASES = [(1, 2, 0), (3, 4, 1), (2, 7, 2), (6, 13, 3)]


@needs_numba
@pytest.mark.parametrize("equal_volume", [True, False])
@pytest.mark.parametrize(("k", "d", "seed"), CASES)
@pytest.mark.parametrize("grid", [True, False])
def test_compiled_sweep_equals_numpy_sweep(equal_volume, k, d, seed, grid):
    nk, w = scatters(seed, k, d, spread=1.0)
    orient = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))[0]
    angles = pars._GRID if grid else pars._NO_GRID
    fast, slow = orient.copy(), orient.copy()
    for _ in range(3):
        m_fast, m_slow = rotated(w, fast), rotated(w, slow)
        pars_numba.rotation_sweep(m_fast, fast, nk, equal_volume, angles, pars._HALVINGS)
        pars._rotation_sweep_numpy(m_slow, slow, nk, equal_volume, angles)
        np.testing.assert_allclose(m_fast, m_slow, rtol=1e-9, atol=1e-9 * np.abs(m_slow).max())
    assert not np.allclose(fast, orient)  # the sweeps moved D
    np.testing.assert_allclose(fast, slow, atol=1e-9)
    np.testing.assert_allclose(fast.T @ fast, np.eye(d), atol=1e-12)


@needs_numba
@pytest.mark.parametrize("equal_volume", [True, False])
@pytest.mark.parametrize(("k", "d", "seed"), CASES)
def test_compiled_derivatives_equal_numpy_derivatives(equal_volume, k, d, seed):
    nk, w = scatters(seed, k, d)
    orient = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))[0]
    m = rotated(w, orient)
    grad, hess = pars._profile_derivatives(nk, m, equal_volume)
    grad_c, hess_c = pars_numba.profile_derivatives(nk, m, equal_volume)
    np.testing.assert_allclose(grad_c, grad, rtol=1e-10, atol=1e-12 * np.abs(grad).max())
    np.testing.assert_allclose(hess_c, hess, rtol=1e-10, atol=1e-12 * np.abs(hess).max())
    np.testing.assert_array_equal(hess_c, hess_c.T)


@pytest.mark.parametrize("equal_volume", [True, False])
@pytest.mark.parametrize(("k", "d", "seed"), [(1, 2, 0), (3, 4, 1), (2, 5, 2)])
def test_derivatives_are_those_of_the_profile(equal_volume, k, d, seed):
    # f(ω) = profile(D exp Ω(ω)), differentiated by central differences.
    nk, w = scatters(seed, k, d, spread=0.5)
    orient = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))[0]
    ii, jj = np.triu_indices(d, 1)
    n_planes = len(ii)

    def f(omega_vec: np.ndarray) -> float:
        omega = np.zeros((d, d))
        omega[ii, jj], omega[jj, ii] = omega_vec, -omega_vec
        return pars._profile(nk, rotated(w, orient @ expm(omega)), equal_volume)

    grad, hess = pars._profile_derivatives(nk, rotated(w, orient), equal_volume)
    unit, h = np.eye(n_planes), 1e-4
    fd_grad = np.array([(f(h * e) - f(-h * e)) / (2 * h) for e in unit])
    fd_hess = (
        np.array(
            [
                [
                    (f(h * a + h * b) - f(h * a - h * b) - f(h * b - h * a) + f(-h * a - h * b)) / 4
                    for b in unit
                ]
                for a in unit
            ]
        )
        / h**2
    )
    scale = max(np.abs(fd_hess).max(), np.abs(fd_grad).max())
    np.testing.assert_allclose(grad, fd_grad, atol=1e-6 * scale)
    np.testing.assert_allclose(hess, fd_hess, atol=1e-5 * scale)


@needs_numba
@pytest.mark.parametrize("equal_volume", [True, False])
@pytest.mark.parametrize(("k", "d", "seed"), CASES)
@pytest.mark.parametrize("modified", [True, False])
def test_compiled_newton_step_equals_numpy_step(equal_volume, k, d, seed, modified, monkeypatch):
    nk, w = scatters(seed, k, d, spread=1.0)
    rng = np.random.default_rng(seed)
    moved = []
    for near in (True, False):  # near an optimum and at a random D
        orient = np.linalg.qr(rng.normal(size=(d, d)))[0]
        if near:
            _, state = constrained_covariances("EVE" if equal_volume else "VVE", nk, w)
            a = rng.normal(size=(d, d)) * 0.002
            orient = state.orientations[0] @ expm(a - a.T)
        fast, slow = orient.copy(), orient.copy()
        m = rotated(w, orient)
        monkeypatch.setattr(pars, "_USE_NUMBA", True)
        ok_fast = pars._newton_step(nk, w, fast, m, equal_volume, modified)
        monkeypatch.setattr(pars, "_USE_NUMBA", False)
        ok_slow = pars._newton_step(nk, w, slow, m, equal_volume, modified)
        assert ok_fast == ok_slow
        np.testing.assert_allclose(fast, slow, atol=1e-9)
        if ok_fast:
            f0 = pars._profile(nk, m, equal_volume)
            assert pars._profile(nk, rotated(w, fast), equal_volume) < f0
            np.testing.assert_allclose(fast.T @ fast, np.eye(d), atol=1e-12)
        moved.append(ok_fast)
    if modified:  # a descent direction, wherever H is indefinite: some halving decreases
        assert all(moved)


@needs_numba
def test_compiled_newton_step_reports_an_indefinite_hessian():
    # Far from an optimum H is indefinite: the kernel says so (−1) and leaves D alone.
    nk, w = scatters(2, 3, 6, spread=2.0)
    rng = np.random.default_rng(0)
    statuses = set()
    for _ in range(10):
        orient = np.linalg.qr(rng.normal(size=(6, 6)))[0]
        moved = orient.copy()
        m = rotated(w, orient)
        status = pars_numba.newton_step(nk, w, moved, m, False, pars._NEWTON_HALVINGS)
        statuses.add(status)
        if status != 1:
            np.testing.assert_array_equal(moved, orient)
        hess = pars._profile_derivatives(nk, m, False)[1]
        assert (status == -1) == (np.linalg.eigvalsh(hess)[0] <= 0)
    assert -1 in statuses


@needs_numba
@pytest.mark.parametrize("model", ["EVE", "VVE"])
@pytest.mark.parametrize(("k", "d", "seed"), [(3, 4, 1), (4, 6, 5), (6, 13, 3)])
def test_mstep_is_the_same_without_numba(model, k, d, seed, monkeypatch):
    nk, w = scatters(seed, k, d)
    nk1, w1 = scatters(seed + 1, k, d)
    cold, state = constrained_covariances(model, nk, w)
    warm, _ = constrained_covariances(model, nk1, w1, previous=state)
    monkeypatch.setattr(pars, "_USE_NUMBA", False)
    monkeypatch.setattr(pars_numba, "_compiled", None)  # any use of the kernels fails
    monkeypatch.setattr(pars_numba, "_compiled_derivatives", None)
    monkeypatch.setattr(pars_numba, "_compiled_newton", None)
    cold_np, _ = constrained_covariances(model, nk, w)
    # The same warm start: two starts that tie may give the same covariances with D's
    # columns in another order, and the sweeps then take another path.
    warm_np, _ = constrained_covariances(model, nk1, w1, previous=state)
    np.testing.assert_allclose(cold_np, cold, rtol=1e-7, atol=1e-9 * np.abs(cold).max())
    np.testing.assert_allclose(warm_np, warm, rtol=1e-7, atol=1e-9 * np.abs(warm).max())


def test_module_imports_without_numba(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # every import of numba now fails
    spec = importlib.util.spec_from_file_location("_pars_numba_blocked", pars_numba.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(RuntimeError, match="Numba"):
        module.rotation_sweep(None, None, None, True, None, None)


def sweeps_only(nk, w, orient, equal_volume, n_sweeps):
    """The profile after ``n_sweeps`` plane sweeps alone (the grid in the first)."""
    orient = orient.copy()
    for it in range(n_sweeps):
        grid = pars._GRID if it == 0 else pars._NO_GRID
        pars._rotation_sweep(rotated(w, orient), orient, nk, equal_volume, grid)
    return pars._profile(nk, rotated(w, orient), equal_volume)


@pytest.mark.parametrize("model", ["EVE", "VVE"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_newton_steps_beat_many_sweeps_on_badly_scaled_data(model, seed):
    # Features over four decades: the sweeps crawl along a curved valley. From the same
    # start, the M-step (sweeps then Newton steps) must end at least as low in the
    # profile as 300 sweeps alone, and converge within its default 100 iterations.
    equal_volume = model == "EVE"
    nk, w = scatters(seed, 5, 8, spread=4.0)
    start = np.linalg.eigh(w.sum(axis=0))[1]
    shapes = np.ones((5, 8))
    previous = pars.ParsimoniousState(
        model,
        np.einsum("ij,kj,lj->kil", start, shapes, start),
        np.ones(5),
        shapes,
        np.tile(start, (5, 1, 1)),
        1,
        True,
    )
    cov, state = constrained_covariances(model, nk, w, previous=previous)
    assert state.converged and state.n_iter < 100
    ours = pars._profile(nk, rotated(w, state.orientations[0]), equal_volume)
    slow = sweeps_only(nk, w, start, equal_volume, 300)
    assert ours <= slow + 1e-12 * abs(slow)
    assert np.isfinite(expected_complete_loglik(model, nk, w, cov))


@pytest.mark.parametrize("model", ["EVE", "VVE"])
def test_numpy_path_em_trace_never_decreases(model, monkeypatch):
    from sklearn.datasets import load_iris

    monkeypatch.setattr(pars, "_USE_NUMBA", False)
    X = load_iris().data
    resp = initial_resps(X, 3, 3, seed=0)[2]
    trace = fit_em(X, model, resp=resp, max_iter=60, tol=1e-12).trace
    assert np.all(np.isfinite(trace)) and len(trace) > 3
    assert np.all(np.diff(trace) >= -1e-10 * np.abs(trace[1:]))


@pytest.mark.parametrize("model", ["EVE", "VVE"])
def test_warm_start_takes_the_common_orientation_past_an_empty_first_component(model):
    # An empty component's orientation is the identity, not the common D: restarting
    # from the state (one iteration) must keep Q, not restart from the identity.
    nk, w = scatters(4, 4, 5)
    nk[0], w[0] = 0.0, 0.0
    cov, state = constrained_covariances(model, nk, w, tol=1e-12, max_iter=500)
    assert np.allclose(state.orientations[0], np.eye(5))
    assert not np.allclose(state.orientations[1], np.eye(5), atol=1e-3)
    again, _ = constrained_covariances(model, nk, w, previous=state, max_iter=1)
    q0 = expected_complete_loglik(model, nk, w, cov)
    assert expected_complete_loglik(model, nk, w, again) >= q0 - 1e-12 * abs(q0)


def test_vev_warm_start_from_the_state_equals_that_from_the_covariances():
    # The state's common shape is the (decreasing) shape the eigenvalues would give.
    nk, w = scatters(6, 3, 6)
    nk1, w1 = scatters(7, 3, 6)
    cov, state = constrained_covariances("VEV", nk, w)
    from_state, _ = constrained_covariances("VEV", nk1, w1, previous=state, max_iter=3)
    from_cov, _ = constrained_covariances("VEV", nk1, w1, previous=cov, max_iter=3)
    np.testing.assert_allclose(from_state, from_cov, rtol=1e-9, atol=1e-12 * np.abs(cov).max())
