"""Compiled steps of the common orientation D for the EVE and VVE M-steps.

Each function does what its NumPy twin in :mod:`latentmix.gaussian._parsimonious` does,
with the same formulas and decisions in the same order, so the two give the same
numbers up to rounding:

* :func:`rotation_sweep` — ``_rotation_sweep_numpy``: one cyclic sweep of plane (Jacobi)
  rotations of D, each lowering the profile objective. In NumPy the time goes to the
  interpreter (D(D−1)/2 planes, each a dozen calls on K-vectors); here a plane costs a
  few dozen flops and a few logarithms per component.
* :func:`profile_derivatives` — ``_profile_derivatives``: the gradient and Hessian of the
  profile in the D(D−1)/2 plane angles, using that most Hessian entries couple only
  planes that share an index.
* :func:`newton_step` — ``_newton_step`` where the Hessian is positive definite: the
  Newton step with a Cayley retraction and step halving (no ``np.linalg`` inside, which
  would take Numba many seconds to compile).

Numba is optional: without it ``HAVE_NUMBA`` is False and the caller uses NumPy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

try:  # pragma: no cover - exercised by whichever environment runs the tests
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False

__all__ = [
    "HAVE_NUMBA",
    "NEGLIGIBLE",
    "newton_step",
    "profile_derivatives",
    "rotation_sweep",
]

#: A plane whose Newton model promises a decrease below NEGLIGIBLE · |f| (a tenth of the
#: 1e-13 · |f| a rotation must gain) is not searched along the Newton direction.
NEGLIGIBLE = 1e-14
_NEGLIGIBLE = NEGLIGIBLE


def _plane_value(
    theta: float,
    mu: Any,
    h: Any,
    b: Any,
    phi0: Any,
    wts: Any,
    equal_volume: bool,
    d: float,
) -> float:  # pragma: no cover - compiled; checked against the NumPy loop
    """The profile objective after rotating the plane by θ (+inf if a variance is ≤ 0)."""
    c2, s2 = math.cos(2.0 * theta), math.sin(2.0 * theta)
    value = 0.0
    for k in range(mu.shape[0]):
        u = h[k] * c2 + b[k] * s2
        mii, mjj = mu[k] + u, mu[k] - u
        if not (mii > 0.0 and mjj > 0.0):
            return np.inf
        phi = math.log(mii * mjj)
        if equal_volume:
            value += wts[k] * math.exp((phi - phi0[k]) / d)
        else:
            value += wts[k] * phi
    return value


def _sweep(
    m: Any, orient: Any, nk: Any, equal_volume: bool, grid: Any, halvings: Any
) -> None:  # pragma: no cover - compiled; checked against the NumPy loop
    """In place: one sweep over the planes (i, j) of ``m[k] = Dᵀ W_k D`` and D.

    Mirrors ``_rotation_sweep_numpy`` line by line (see its docstring); ``grid`` holds
    the grid angles to try (empty: none).
    """
    kk, d = m.shape[0], m.shape[1]
    dd = float(d)
    mu = np.empty(kk)
    h = np.empty(kk)
    b = np.empty(kk)
    phi0 = np.empty(kk)
    wts = np.empty(kk)
    logd = np.empty((kk, d))
    logsum = np.zeros(kk)
    for k in range(kk):
        for t in range(d):
            logd[k, t] = math.log(m[k, t, t])
            logsum[k] += logd[k, t]
    for i in range(d - 1):
        for j in range(i + 1, d):
            grad = 0.0
            hess = 0.0
            for k in range(kk):
                a, e, bk = m[k, i, i], m[k, j, j], m[k, i, j]
                mu[k] = 0.5 * (a + e)
                h[k] = 0.5 * (a - e)
                b[k] = bk
                phi0[k] = logd[k, i] + logd[k, j]
                dphi = 2.0 * bk * (1.0 / a - 1.0 / e)
                d2phi = -4.0 * h[k] / a - 4.0 * (bk / a) ** 2 + 4.0 * h[k] / e - 4.0 * (bk / e) ** 2
                if equal_volume:
                    g = math.exp(logsum[k] / dd)
                    wts[k] = g
                    grad += g * dphi
                    hess += g * (d2phi / dd + (dphi / dd) ** 2)
                else:
                    wts[k] = nk[k]
                    grad += nk[k] * dphi
                    hess += nk[k] * d2phi
            if equal_volume:
                grad /= dd
            if not grad != 0.0 or not math.isfinite(grad):
                continue
            f0 = 0.0
            for k in range(kk):
                f0 += wts[k] if equal_volume else wts[k] * phi0[k]
            bar = f0 - 1e-13 * abs(f0)
            if hess > 0.0:
                newton = -grad / hess
            else:
                newton = -math.copysign(math.pi / 8, grad)
            newton = min(max(newton, -math.pi / 4), math.pi / 4)
            best, best_value = 0.0, f0
            # Backtrack to the first decrease, unless even the Newton model's decrease
            # is below the bar (a converged plane: no halving would pass it).
            tries = halvings.shape[0] if not 0.5 * grad * grad < _NEGLIGIBLE * hess * abs(f0) else 0
            for c in range(tries):
                theta = newton * halvings[c]
                value = _plane_value(theta, mu, h, b, phi0, wts, equal_volume, dd)
                if value < bar:
                    best, best_value = theta, value
                    break
            for c in range(grid.shape[0]):
                value = _plane_value(grid[c], mu, h, b, phi0, wts, equal_volume, dd)
                if value < best_value and value < bar:
                    best, best_value = grid[c], value
            if not best_value < bar:
                continue
            cos, sin = math.cos(best), math.sin(best)
            # D ← D R and M_k ← Rᵀ M_k R, R the rotation by θ in the plane (i, j).
            for r in range(d):
                oi, oj = orient[r, i], orient[r, j]
                orient[r, i] = cos * oi + sin * oj
                orient[r, j] = cos * oj - sin * oi
            for k in range(kk):
                for r in range(d):
                    mi, mj = m[k, r, i], m[k, r, j]
                    m[k, r, i] = cos * mi + sin * mj
                    m[k, r, j] = cos * mj - sin * mi
                for r in range(d):
                    mi, mj = m[k, i, r], m[k, j, r]
                    m[k, i, r] = cos * mi + sin * mj
                    m[k, j, r] = cos * mj - sin * mi
                old = logd[k, i] + logd[k, j]
                logd[k, i] = math.log(m[k, i, i])
                logd[k, j] = math.log(m[k, j, j])
                logsum[k] += logd[k, i] + logd[k, j] - old


def _derivatives(
    n: Any, m: Any, equal_volume: bool, grad: Any, hess: Any
) -> None:  # pragma: no cover - compiled; checked against the NumPy formulas
    """Fill grad (P,) and hess (P, P) of the profile in Ω, as ``_profile_derivatives``.

    The Hessian's first part, Σ_k J_kᵀ S_k J_k, is a sum of K outer products (EVE's S_k
    is rank one plus diagonal) plus terms for planes that share an index; the second
    part couples only planes that share an index. So the P² loop is an outer-product
    update and a cheap test, and the rest touches O(P·D) pairs.
    """
    kk, d = m.shape[0], m.shape[1]
    dd = float(d)
    n_planes = d * (d - 1) // 2
    pi = np.empty(n_planes, dtype=np.int64)
    pj = np.empty(n_planes, dtype=np.int64)
    a = 0
    for i in range(d - 1):
        for j in range(i + 1, d):
            pi[a], pj[a] = i, j
            a += 1
    c = np.empty((kk, d))
    diag_s = np.empty((kk, d))  # S_k's diagonal part
    z = np.zeros((kk, n_planes))  # S_k's rank-one part, through J_k (EVE only)
    for k in range(kk):
        if equal_volume:
            s = 0.0
            for t in range(d):
                s += math.log(m[k, t, t])
            g = math.exp(s / dd)
            root = math.sqrt(g) / dd
            for t in range(d):
                c[k, t] = g / (dd * m[k, t, t])
                diag_s[k, t] = -g / (dd * m[k, t, t] ** 2)
            for a in range(n_planes):
                i, j = pi[a], pj[a]
                z[k, a] = 2.0 * m[k, i, j] * root * (1.0 / m[k, j, j] - 1.0 / m[k, i, i])
        else:
            for t in range(d):
                c[k, t] = n[k] / m[k, t, t]
                diag_s[k, t] = -n[k] / m[k, t, t] ** 2
    # X[x, y, z] = Σ_k m_xy (c_x − c_z)
    x = np.zeros((d, d, d))
    for k in range(kk):
        for p in range(d):
            for q in range(d):
                for r in range(d):
                    x[p, q, r] += m[k, p, q] * (c[k, p] - c[k, r])
    for a in range(n_planes):
        i, j = pi[a], pj[a]
        s = 0.0
        for k in range(kk):
            s += 2.0 * m[k, i, j] * (c[k, j] - c[k, i])
        grad[a] = s
        for b in range(a, n_planes):
            u, v = pi[b], pj[b]
            h = 0.0
            for k in range(kk):
                h += z[k, a] * z[k, b]
            if i == u or i == v or j == u or j == v:
                # J's diagonal part: 4 m_ij m_uv (S_iu − S_iv − S_ju + S_jv), S diagonal.
                e = 0.0
                for k in range(kk):
                    sd = 0.0
                    if i == u:
                        sd += diag_s[k, i]
                    if i == v:
                        sd -= diag_s[k, i]
                    if j == u:
                        sd -= diag_s[k, j]
                    if j == v:
                        sd += diag_s[k, j]
                    e += 4.0 * m[k, i, j] * m[k, u, v] * sd
                h += e
                # T(i,j,u,v) − T(i,j,v,u) − T(j,i,u,v) + T(j,i,v,u) with T(p, q, r, s) =
                # δ_qr X[s, p, q] + δ_sp X[q, r, p]: eight terms, two for each shared index.
                if j == u:
                    h += x[v, i, j] + x[i, v, j]
                if v == i:
                    h += x[j, u, i] + x[u, j, i]
                if j == v:
                    h -= x[u, i, j] + x[i, u, j]
                if u == i:
                    h -= x[j, v, i] + x[v, j, i]
            hess[a, b] = h
            hess[b, a] = h


def _profile_at(
    n: Any, wa: Any, orient: Any, equal_volume: bool, tmp: Any
) -> float:  # pragma: no cover - compiled; checked against the NumPy step
    """The profile at D = ``orient`` (+inf unless diag(Dᵀ W_k D) > 0): only the diagonal."""
    kk, d = wa.shape[0], wa.shape[1]
    value = 0.0
    for k in range(kk):
        for r in range(d):
            for c in range(d):
                s = 0.0
                for t in range(d):
                    s += wa[k, r, t] * orient[t, c]
                tmp[r, c] = s
        logs = 0.0
        for c in range(d):
            s = 0.0
            for r in range(d):
                s += orient[r, c] * tmp[r, c]
            if not s > 0.0:
                return np.inf
            logs += math.log(s)
        value += math.exp(logs / d) if equal_volume else n[k] * logs
    return value


def _cayley(step: Any, d: int, out: Any) -> None:  # pragma: no cover - compiled
    """out = (I − Ω/2)⁻¹ (I + Ω/2), Ω skew with Ω_ij = step[a] over the planes (i < j).

    Gaussian elimination with partial pivoting (I − Ω/2 is never singular: its
    eigenvalues are 1 − iλ/2 for the real λ of iΩ).
    """
    lhs = np.zeros((d, d))
    for i in range(d):
        lhs[i, i] = 1.0
        for j in range(d):
            out[i, j] = 1.0 if i == j else 0.0
    a = 0
    for i in range(d - 1):
        for j in range(i + 1, d):
            lhs[i, j] -= 0.5 * step[a]
            lhs[j, i] += 0.5 * step[a]
            out[i, j] += 0.5 * step[a]
            out[j, i] -= 0.5 * step[a]
            a += 1
    for c in range(d):
        p = c
        for r in range(c + 1, d):
            if abs(lhs[r, c]) > abs(lhs[p, c]):
                p = r
        if p != c:
            for t in range(d):
                lhs[c, t], lhs[p, t] = lhs[p, t], lhs[c, t]
                out[c, t], out[p, t] = out[p, t], out[c, t]
        for r in range(c + 1, d):
            f = lhs[r, c] / lhs[c, c]
            if f != 0.0:
                for t in range(c, d):
                    lhs[r, t] -= f * lhs[c, t]
                for t in range(d):
                    out[r, t] -= f * out[c, t]
    for c in range(d - 1, -1, -1):
        for t in range(d):
            s = out[c, t]
            for r in range(c + 1, d):
                s -= lhs[c, r] * out[r, t]
            out[c, t] = s / lhs[c, c]


def _newton(
    n: Any,
    wa: Any,
    orient: Any,
    m: Any,
    equal_volume: bool,
    n_halvings: int,
) -> int:  # pragma: no cover - compiled; checked against the NumPy step
    """In place: the Newton step of ``_newton_step`` where the Hessian is positive
    definite (same rules, same order). 1 if D moved, 0 if not, −1 if the Hessian is not
    positive definite (the caller takes the modified step, if any)."""
    d = orient.shape[0]
    n_planes = d * (d - 1) // 2
    grad = np.empty(n_planes)
    hess = np.empty((n_planes, n_planes))
    _derivatives(n, m, equal_volume, grad, hess)
    for a in range(n_planes):
        if not math.isfinite(grad[a]):
            return 0
        for b in range(n_planes):
            if not math.isfinite(hess[a, b]):
                return 0
    # Cholesky, then the two triangular solves.
    chol = np.zeros((n_planes, n_planes))
    for j in range(n_planes):
        s = hess[j, j]
        for t in range(j):
            s -= chol[j, t] * chol[j, t]
        if not s > 0.0:
            return -1
        chol[j, j] = math.sqrt(s)
        for i in range(j + 1, n_planes):
            s = hess[i, j]
            for t in range(j):
                s -= chol[i, t] * chol[j, t]
            chol[i, j] = s / chol[j, j]
    step = np.empty(n_planes)
    for i in range(n_planes):
        s = -grad[i]
        for t in range(i):
            s -= chol[i, t] * step[t]
        step[i] = s / chol[i, i]
    for i in range(n_planes - 1, -1, -1):
        s = step[i]
        for t in range(i + 1, n_planes):
            s -= chol[t, i] * step[t]
        step[i] = s / chol[i, i]
    return _line_search(n, wa, orient, m, equal_volume, n_halvings, step)


def _line_search(
    n: Any, wa: Any, orient: Any, m: Any, equal_volume: bool, n_halvings: int, step: Any
) -> int:  # pragma: no cover - compiled; checked against the NumPy step
    """D ← D C(Ω) for the step or its first halving that lowers the profile: 1, else 0."""
    d = orient.shape[0]
    n_planes = step.shape[0]
    big = 0.0
    for a in range(n_planes):
        big = max(big, abs(step[a]))
    scale = min(1.0, (math.pi / 4) / max(big, 2.2250738585072014e-308))
    for a in range(n_planes):
        step[a] *= scale
    f0 = 0.0
    for k in range(m.shape[0]):
        logs = 0.0
        for t in range(d):
            logs += math.log(m[k, t, t])
        f0 += math.exp(logs / d) if equal_volume else n[k] * logs
    bar = f0 - 1e-13 * abs(f0)
    rot = np.empty((d, d))
    trial = np.empty((d, d))
    tmp = np.empty((d, d))
    for _ in range(n_halvings):
        _cayley(step, d, rot)
        for r in range(d):
            for c in range(d):
                s = 0.0
                for t in range(d):
                    s += orient[r, t] * rot[t, c]
                trial[r, c] = s
        if _profile_at(n, wa, trial, equal_volume, tmp) < bar:
            orient[:, :] = trial
            return 1
        for a in range(n_planes):
            step[a] *= 0.5
    return 0


_compiled: Any
_compiled_derivatives: Any
_compiled_newton: Any
if HAVE_NUMBA:  # pragma: no cover - exercised by whichever environment runs the tests
    _jit = numba.njit(cache=True, nogil=True, boundscheck=False)
    _plane_value = _jit(_plane_value)
    _compiled = _jit(_sweep)
    _derivatives = _jit(_derivatives)
    _compiled_derivatives = _derivatives
    _profile_at = _jit(_profile_at)
    _cayley = _jit(_cayley)
    _line_search = _jit(_line_search)
    _compiled_newton = _jit(_newton)
else:  # pragma: no cover
    _compiled = _compiled_derivatives = _compiled_newton = None


def rotation_sweep(
    m: Any, orient: Any, nk: Any, equal_volume: bool, grid: Any, halvings: Any
) -> None:
    """One compiled sweep, in place (Numba must be installed: check ``HAVE_NUMBA`` first)."""
    if _compiled is None:
        raise RuntimeError("rotation_sweep needs Numba; use the NumPy sweep instead.")
    _compiled(m, orient, nk, equal_volume, grid, halvings)


def profile_derivatives(n: Any, m: Any, equal_volume: bool) -> tuple[Any, Any]:
    """Compiled gradient and Hessian of the profile in the plane angles (needs Numba)."""
    if _compiled_derivatives is None:
        raise RuntimeError("profile_derivatives needs Numba; use the NumPy formulas instead.")
    n_planes = m.shape[1] * (m.shape[1] - 1) // 2
    grad, hess = np.empty(n_planes), np.empty((n_planes, n_planes))
    _compiled_derivatives(n, m, equal_volume, grad, hess)
    return grad, hess


def newton_step(n: Any, wa: Any, orient: Any, m: Any, equal_volume: bool, n_halvings: int) -> int:
    """The compiled Newton step for D, in place: 1 if it moved D, 0 if not, −1 if the
    Hessian is not positive definite (needs Numba)."""
    if _compiled_newton is None:
        raise RuntimeError("newton_step needs Numba; use the NumPy step instead.")
    return int(_compiled_newton(n, wa, orient, m, equal_volume, n_halvings))
