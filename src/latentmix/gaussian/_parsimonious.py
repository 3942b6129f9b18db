"""The fourteen parsimonious covariance models of mclust: constrained M-steps.

Every covariance is eigen-decomposed as Σ_k = λ_k D_k A_k D_kᵀ (volume λ_k > 0, orientation
D_k orthogonal, shape A_k diagonal with |A_k| = 1), and a model's three letters say whether
volume, shape and orientation are Equal across components, Variable, or the Identity
(Banfield and Raftery, 1993; Celeux and Govaert, 1995)::

    EII  λ I          VII  λ_k I
    EEI  λ A          VEI  λ_k A          EVI  λ A_k          VVI  λ_k A_k
    EEE  λ D A Dᵀ     VEE  λ_k D A Dᵀ     EVE  λ D A_k Dᵀ     VVE  λ_k D A_k Dᵀ
    EEV  λ D_k A D_kᵀ VEV  λ_k D_k A D_kᵀ EVV  λ D_k A_k D_kᵀ VVV  λ_k D_k A_k D_kᵀ

and, for one feature, ``E`` (equal variance) and ``V`` (variable variance).
scikit-learn's ``full``, ``tied``, ``diag`` and ``spherical`` are VVV, EEE, VVI and VII
(:data:`ALIASES`).

The M-step of a model maximises the expected complete-data log-likelihood over the
covariances under the model's constraint,

    Q(Σ) = −½ Σ_k [ n_k log|Σ_k| + tr(Σ_k⁻¹ W_k) ]      (constants dropped),

given ``nk[k] = Σ_i w_i r_ik`` and the scatter about the new means
``W_k = Σ_i w_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ``. The weights and means do not depend on
the covariance model, so only the covariances are computed here.

Closed forms exist for EII, VII, EEI, VVI, EVI, EEE, EEV, EVV and VVV (EVV too: with
Σ_k = λ C_k and |C_k| = 1 the optimum is C_k ∝ W_k). VEI and VEE alternate between the
volumes and the common shape (or shape-and-orientation) matrix, each step optimal given
the other (Celeux and Govaert, 1995); VEV does the same in each W_k's eigenvectors,
which are the optimal orientations for any common shape. EVE and VVE profile out the
shapes and volumes (their closed-form optimum given the common orientation D) and
minimise over D the profile objective, Flury's common-principal-components criterion
Σ_k n_k log|diag(Dᵀ W_k D)| for VVE and Σ_k |diag(Dᵀ W_k D)|^{1/D} for EVE. A sweep of
plane (Jacobi) rotations comes first — in each plane the better of a Newton step in the
angle (halved until it decreases) and a coarse grid of angles, kept only if it lowers
the profile; the Flury–Gautschi route of Celeux and Govaert — then Newton steps in the
skew-symmetric generator of D's rotation (exact gradient and Hessian, a Cayley
retraction, step halving), which converge in a few steps where the sweeps alone crawl
for hundreds on badly scaled data; a sweep again wherever a Newton step fails, and a
final sweep to confirm. Rotations that hold the shapes fixed (our first version, and
also what the majorisation–minimisation of Browne and McNicholas, 2014, does) reached
far poorer local optima on random problems. The sweeps and the Newton steps are
compiled with Numba when it is installed (:mod:`~latentmix.gaussian._parsimonious_numba`), with
NumPy twins that give the same numbers. Every step of every iterative model is a
coordinate-wise or line-searched improvement, so started from the previous EM
iteration's parameters (``previous``) Q never decreases, and neither does EM's
log-likelihood.

``reg_covar`` is added to the scatter as ``nk[k] · reg_covar · I`` before the constrained
fit: that is ``reg_covar · I`` added to every W_k / n_k, so it reproduces scikit-learn's
``reg_covar`` exactly for full, tied, diag and spherical, and for the other models it
keeps the constraint (adding ``reg_covar · I`` after the fit would not: λ D_k A D_kᵀ + εI
no longer has a common shape). The M-step then maximises Q − ½ reg_covar Σ_k n_k
tr(Σ_k⁻¹). With ``reg_covar = 0`` (mclust's setting) the EM trace is monotone exactly;
with a positive ``reg_covar``, as for scikit-learn, the log-likelihood itself is not
guaranteed to increase (the ridge is a small bias, not part of the likelihood).

Components with ``nk <= 1e-12 · Σ nk`` (empty) take no part in the shared parameters and
get NaN covariances in every model that has a per-component parameter; the caller
re-seeds them (as :func:`~latentmix.gaussian.mstep` does for NaN covariances).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import lapack

from latentmix.gaussian._parsimonious_numba import (
    HAVE_NUMBA,
    NEGLIGIBLE,
    newton_step,
    profile_derivatives,
    rotation_sweep,
)

__all__ = [
    "ALIASES",
    "CLOSED_FORM_MODELS",
    "ITERATIVE_MODELS",
    "MODELS",
    "ParsimoniousState",
    "canonical_model",
    "constrained_covariances",
    "expected_complete_loglik",
    "is_constrained",
    "kernel_covariance_type",
    "n_covariance_parameters",
    "n_parameters",
]

Array = NDArray[np.float64]

MODELS = (
    "EII",
    "VII",
    "EEI",
    "VEI",
    "EVI",
    "VVI",
    "EEE",
    "VEE",
    "EVE",
    "VVE",
    "EEV",
    "VEV",
    "EVV",
    "VVV",
    "E",
    "V",
)
ALIASES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
ITERATIVE_MODELS = ("VEI", "VEE", "EVE", "VVE", "VEV")
CLOSED_FORM_MODELS = tuple(m for m in MODELS if m not in ITERATIVE_MODELS)

_EMPTY = 1e-12


@dataclass(frozen=True, eq=False)
class ParsimoniousState:
    """What an M-step found; pass it back as ``previous`` to warm-start the next one.

    ``covariances`` (K, D, D). For the iterative models also the decomposition
    Σ_k = λ_k D_k A_k D_kᵀ: ``volumes`` (K,) λ_k, ``shapes`` (K, D) the diagonals of A_k
    (|A_k| = 1; equal rows when shared), ``orientations`` (K, D, D) D_k (equal when
    shared); None for the closed forms. ``n_iter`` is the number of iterations (0 for a
    closed form) and ``converged`` whether the relative change in Q fell below ``tol``.
    """

    model: str
    covariances: Array
    volumes: Array | None
    shapes: Array | None
    orientations: Array | None
    n_iter: int
    converged: bool


def canonical_model(model: str, n_features: int | None = None) -> str:
    """The mclust name of ``model`` (resolving scikit-learn's names); raises if unknown."""
    name = ALIASES.get(model, model)
    if name not in MODELS:
        raise ValueError(
            f"Unknown covariance model {model!r}. Use one of mclust's {', '.join(MODELS)} "
            f"or scikit-learn's {', '.join(ALIASES)}."
        )
    if n_features is not None and n_features > 1 and name in ("E", "V"):
        raise ValueError(
            f"The covariance model {name!r} is for one-dimensional data; with {n_features} "
            "features use one of the fourteen multivariate models (EII ... VVV)."
        )
    return name


_KERNEL_TYPES = {"VVV": "full", "EEE": "tied", "VVI": "diag", "VII": "spherical"}


def kernel_covariance_type(model: str) -> str:
    """The covariance type of the statistics and kernels that fit ``model``.

    scikit-learn's four names and their mclust aliases (VVV, EEE, VVI, VII) keep their own
    storage (``full``, ``tied``, ``diag``, ``spherical``); every other model is stored and
    evaluated as ``full`` (K, D, D) covariances, with :func:`constrained_covariances` as
    its M-step.
    """
    if model in ALIASES:
        return model
    return _KERNEL_TYPES.get(canonical_model(model), "full")


def is_constrained(model: str) -> bool:
    """True if ``model`` needs :func:`constrained_covariances` (not one of the four)."""
    return model not in ALIASES and canonical_model(model) not in _KERNEL_TYPES


# -- parameter counts --------------------------------------------------------------------------


def n_covariance_parameters(model: str, n_components: int, n_features: int) -> int:
    """Free covariance parameters of ``model``, as mclust's ``nVarParams`` counts them."""
    k, d = n_components, n_features
    name = canonical_model(model, d)
    rot = d * (d - 1) // 2  # an orientation
    counts = {
        "E": 1,
        "V": k,
        "EII": 1,
        "VII": k,
        "EEI": d,
        "VEI": k + (d - 1),
        "EVI": 1 + k * (d - 1),
        "VVI": k * d,
        "EEE": d * (d + 1) // 2,
        "VEE": k + (d - 1) + rot,
        "EVE": 1 + k * (d - 1) + rot,
        "VVE": k * d + rot,
        "EEV": 1 + (d - 1) + k * rot,
        "VEV": k + (d - 1) + k * rot,
        "EVV": 1 + k * (d * (d + 1) // 2 - 1),
        "VVV": k * d * (d + 1) // 2,
    }
    return int(counts[name])


def n_parameters(model: str, n_components: int, n_features: int) -> int:
    """Free parameters as mclust's ``nMclustParams``: K·D means, K−1 weights, covariances."""
    k, d = n_components, n_features
    return int(n_covariance_parameters(model, k, d) + k * d + k - 1)


# -- the objective -----------------------------------------------------------------------------


def expected_complete_loglik(
    model: str, nk: NDArray[Any], scatter: NDArray[Any], covariances: NDArray[Any]
) -> float:
    """Q = −½ Σ_k [n_k log|Σ_k| + tr(Σ_k⁻¹ W_k)]; −inf if some Σ_k is not positive definite.

    ``model`` is only checked (the formula is the same for every model); ``covariances``
    is (K, D, D) as returned by :func:`constrained_covariances`.
    """
    nk_, w = _check(nk, scatter)
    canonical_model(model, w.shape[1])
    cov = np.asarray(covariances, dtype=np.float64)
    total = 0.0
    for k in range(w.shape[0]):
        if nk_[k] <= 0 and not np.any(w[k]):
            continue
        try:
            chol = np.linalg.cholesky(cov[k])
        except np.linalg.LinAlgError:
            return -np.inf
        diag = np.diag(chol)
        if not np.all(np.isfinite(chol)) or np.any(diag <= 0):
            return -np.inf
        logdet = 2.0 * float(np.log(diag).sum())
        sol = np.linalg.solve(chol, w[k])
        trace = float(np.trace(np.linalg.solve(chol, sol.T)))
        total += nk_[k] * logdet + trace
    return -0.5 * total


# -- the M-step --------------------------------------------------------------------------------


def constrained_covariances(
    model: str,
    nk: NDArray[Any],
    scatter: NDArray[Any],
    *,
    reg_covar: float = 0.0,
    previous: ParsimoniousState | NDArray[Any] | None = None,
    tol: float = 1e-8,
    max_iter: int = 100,
) -> tuple[Array, ParsimoniousState]:
    """Covariances (K, D, D) maximising Q under ``model``'s constraint, and a warm start.

    Parameters
    ----------
    model : str
        One of :data:`MODELS` or :data:`ALIASES`.
    nk : array-like of shape (n_components,)
        Σ_i w_i r_ik.
    scatter : array-like of shape (n_components, n_features, n_features)
        W_k = Σ_i w_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ about the new means.
    reg_covar : float, default=0
        Added to the scatter as ``nk[k] · reg_covar · I`` (see the module docstring).
    previous : ParsimoniousState or array of shape (n_components, n_features, n_features)
        The previous EM iteration's state (or covariances) that the iterative models
        start from; then Q(result) ≥ Q(previous) whenever ``previous`` satisfies the
        model's constraint. Closed forms ignore it.
    tol : float, default=1e-8
        The iterative models stop when Q changes by less than ``tol · max(|Q|, 1)``.
    max_iter : int, default=100
        Iteration cap of the iterative models (``state.converged`` says if it was hit).

    Returns
    -------
    covariances : ndarray of shape (n_components, n_features, n_features)
    state : ParsimoniousState
    """
    nk_, w = _check(nk, scatter)
    n_components, d = w.shape[0], w.shape[1]
    name = canonical_model(model, d)
    if reg_covar < 0:
        raise ValueError(f"reg_covar must be non-negative, got {reg_covar}.")
    if tol < 0 or max_iter < 1:
        raise ValueError(f"tol must be >= 0 and max_iter >= 1, got {tol} and {max_iter}.")
    if reg_covar > 0:
        w = w + (nk_ * reg_covar)[:, None, None] * np.eye(d)
    active = nk_ > _EMPTY * max(float(nk_.sum()), np.finfo(np.float64).tiny)
    if not np.any(active):
        raise ValueError("Every component is empty (nk is zero): nothing to estimate.")
    fit_name = {"E": "EII", "V": "VII"}.get(name, name)
    warm = _warm_start(previous, n_components, d)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if fit_name in ITERATIVE_MODELS:
            vol, shape, orient, n_iter, converged = _ITERATIVE[fit_name](
                nk_, w, active, warm, tol=tol, max_iter=max_iter
            )
            lam_a = vol[:, None] * shape
            cov = np.einsum("kij,kj,klj->kil", orient, lam_a, orient)
            state = ParsimoniousState(name, cov, vol, shape, orient, n_iter, converged)
        else:
            cov = _CLOSED[fit_name](nk_, w, active)
            state = ParsimoniousState(name, cov, None, None, None, 0, True)
        if fit_name not in ("EII", "EEI", "EEE"):  # a per-component parameter is undefined
            cov[~active] = np.nan
    cov = 0.5 * (cov + cov.transpose(0, 2, 1))
    return cov, state


def _check(nk: NDArray[Any], scatter: NDArray[Any]) -> tuple[Array, Array]:
    nk_ = np.asarray(nk, dtype=np.float64)
    w = np.asarray(scatter, dtype=np.float64)
    if w.ndim != 3 or w.shape[1] != w.shape[2] or nk_.shape != (w.shape[0],):
        raise ValueError(
            "scatter must have the shape (n_components, n_features, n_features) and nk "
            f"(n_components,); got {w.shape} and {nk_.shape}."
        )
    if np.any(nk_ < 0) or not np.all(np.isfinite(nk_)) or not np.all(np.isfinite(w)):
        raise ValueError("nk must be non-negative, and nk and scatter finite.")
    return nk_, 0.5 * (w + w.transpose(0, 2, 1))


@dataclass(frozen=True)
class _Warm:
    """A usable warm start: finite positive-definite covariances, D if one is common, and
    the previous VEV fit's common shape."""

    covariances: Array
    orientation: Array | None
    shape: Array | None = None


def _warm_start(
    previous: ParsimoniousState | NDArray[Any] | None, n_components: int, d: int
) -> _Warm | None:
    if previous is None:
        return None
    state = previous if isinstance(previous, ParsimoniousState) else None
    cov = state.covariances if state else np.asarray(previous, dtype=np.float64)
    if cov.shape != (n_components, d, d):
        raise ValueError(
            f"previous has the shape {cov.shape}; expected {(n_components, d, d)} "
            "(one covariance per component)."
        )
    finite = np.all(np.isfinite(cov), axis=(1, 2))
    if not np.any(finite):
        return None
    try:  # positive definite (a batched Cholesky: eigenvalues cost far more)
        np.linalg.cholesky(cov[finite])
    except np.linalg.LinAlgError:
        return None
    orientation = shape = None
    if state is not None and state.orientations is not None and state.shapes is not None:
        first = int(np.argmax(finite))  # an empty component's D is not the common one
        if state.model in ("EVE", "VVE"):
            orientation = state.orientations[first]
        if state.model == "VEV":  # the common shape, decreasing as the eigenvalues
            shape = state.shapes[first]
    return _Warm(cov[finite], orientation, shape)


def _geomean(x: Array) -> Array:
    return np.asarray(np.exp(np.log(x).mean(axis=-1)))


def _diag(w: Array) -> Array:
    return np.asarray(np.diagonal(w, axis1=1, axis2=2))


def _diag_matrices(b: Array) -> Array:
    out = np.zeros((*b.shape, b.shape[-1]))
    idx = np.arange(b.shape[-1])
    out[..., idx, idx] = b
    return out


def _safe_nk(nk: Array, active: Array) -> Array:
    return np.where(active, nk, 1.0)


def _eig_desc(w: Array) -> tuple[Array, Array]:
    """Eigenvalues (decreasing, clipped at 0) and eigenvectors of symmetric matrices."""
    evals, evecs = np.linalg.eigh(w)
    return np.maximum(evals[..., ::-1], 0.0), evecs[..., ::-1]


# closed forms ---------------------------------------------------------------------------------


def _fit_eii(nk: Array, w: Array, active: Array) -> Array:
    k, d = w.shape[0], w.shape[1]
    lam = np.trace(w[active], axis1=1, axis2=2).sum() / (nk[active].sum() * d)
    return np.tile(lam * np.eye(d), (k, 1, 1))


def _fit_vii(nk: Array, w: Array, active: Array) -> Array:
    d = w.shape[1]
    lam = np.trace(w, axis1=1, axis2=2) / (_safe_nk(nk, active) * d)
    return lam[:, None, None] * np.eye(d)


def _fit_eei(nk: Array, w: Array, active: Array) -> Array:
    b = _diag(w[active]).sum(axis=0) / nk[active].sum()
    return np.tile(np.diag(b), (w.shape[0], 1, 1))


def _fit_vvi(nk: Array, w: Array, active: Array) -> Array:
    return _diag_matrices(_diag(w) / _safe_nk(nk, active)[:, None])


def _fit_evi(nk: Array, w: Array, active: Array) -> Array:
    # A_k ∝ diag(W_k) with |A_k| = 1, λ = Σ_k |diag W_k|^{1/D} / n.
    b = _diag(w)
    g = _geomean(b)
    lam = g[active].sum() / nk[active].sum()
    return _diag_matrices(lam * b / g[:, None])


def _fit_eee(nk: Array, w: Array, active: Array) -> Array:
    return np.tile(w[active].sum(axis=0) / nk[active].sum(), (w.shape[0], 1, 1))


def _fit_vvv(nk: Array, w: Array, active: Array) -> Array:
    return w / _safe_nk(nk, active)[:, None, None]


def _fit_eev(nk: Array, w: Array, active: Array) -> Array:
    # With every W_k = L_k Ω_k L_kᵀ sorted decreasingly, D_k = L_k pairs the largest
    # eigenvalues with the largest shape entries, optimal for any common shape; then
    # λ A = Σ_k Ω_k / n.
    omega, evecs = _eig_desc(w)
    s = omega[active].sum(axis=0) / nk[active].sum()
    return np.einsum("kij,j,klj->kil", evecs, s, evecs)


def _fit_evv(nk: Array, w: Array, active: Array) -> Array:
    # Σ_k = λ C_k with |C_k| = 1: C_k = W_k / |W_k|^{1/D}, λ = Σ_k |W_k|^{1/D} / n.
    d = w.shape[1]
    sign, logdet = np.linalg.slogdet(w)
    g = np.where(sign > 0, np.exp(logdet / d), 0.0)
    lam = g[active].sum() / nk[active].sum()
    return lam * w / g[:, None, None]


_CLOSED: dict[str, Any] = {
    "EII": _fit_eii,
    "VII": _fit_vii,
    "EEI": _fit_eei,
    "VVI": _fit_vvi,
    "EVI": _fit_evi,
    "EEE": _fit_eee,
    "VVV": _fit_vvv,
    "EEV": _fit_eev,
    "EVV": _fit_evv,
}


# iterative ------------------------------------------------------------------------------------

_FitResult = tuple[Array, Array, Array, int, bool]


def _q_diag(nk: Array, omega: Array, vol: Array, shape: Array) -> float:
    """Q for Σ_k = λ_k D_k A_k D_kᵀ, given ``omega[k] = diag(D_kᵀ W_k D_k)``."""
    d = omega.shape[1]
    return float(-0.5 * (nk * d * np.log(vol) + (omega / shape).sum(axis=1) / vol).sum())


def _converged(q_new: float, q_old: float, tol: float) -> bool:
    return bool(abs(q_new - q_old) <= tol * max(abs(q_new), 1.0))


def _alternate_volume_shape(
    n: Array, omega: Array, shape: Array, tol: float, max_iter: int
) -> tuple[Array, Array, int, bool]:
    """Σ_k = λ_k A (a common shape) in coordinates where ``omega[k]`` is diag(W_k).

    Alternates λ_k = Σ_j ω_kj / a_j / (D n_k) and a ∝ Σ_k ω_k / λ_k, each optimal given
    the other: VEI, and VEV in each W_k's eigenvectors.
    """
    d = omega.shape[1]
    vol = (omega / shape).sum(axis=1) / (d * n)
    q_old = _q_diag(n, omega, vol, shape[None])
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007
        s = (omega / vol[:, None]).sum(axis=0)
        shape = s / _geomean(s)
        vol = (omega / shape).sum(axis=1) / (d * n)
        q = _q_diag(n, omega, vol, shape[None])
        if _converged(q, q_old, tol):
            converged = True
            break
        q_old = q
    return vol, shape, it, converged


def _mean_shape(shapes: Array) -> Array:
    """The normalised geometric mean of several shape vectors (each row |a| = 1 or not)."""
    shapes = shapes / _geomean(shapes)[:, None]
    shape = np.exp(np.log(shapes).mean(axis=0))
    return shape / _geomean(shape)


def _expand(k: int, active: Array, vol: Array, shape: Array, orient: Array) -> _FitResult:
    """Per-component arrays for all K components (NaN volumes for empty ones)."""
    d = orient.shape[-1]
    vol_all = np.full(k, np.nan)
    vol_all[active] = vol
    shape_all = np.ones((k, d))
    shape_all[active] = shape
    orient_all = np.tile(np.eye(d), (k, 1, 1))
    orient_all[active] = orient
    return vol_all, shape_all, orient_all, 0, True


def _fit_vei(
    nk: Array, w: Array, active: Array, warm: _Warm | None, *, tol: float, max_iter: int
) -> _FitResult:
    k, d = w.shape[0], w.shape[1]
    omega, n = _diag(w[active]), nk[active]
    # A warm start's diagonals: exactly the previous shape if it was a VEI fit.
    shape0 = _mean_shape(_diag(warm.covariances) if warm else omega.sum(axis=0, keepdims=True))
    vol, shape, it, conv = _alternate_volume_shape(n, omega, shape0, tol, max_iter)
    orient = np.tile(np.eye(d), (len(n), 1, 1))
    out = _expand(k, active, vol, np.tile(shape, (len(n), 1)), orient)
    return out[0], out[1], out[2], it, conv


def _fit_vev(
    nk: Array, w: Array, active: Array, warm: _Warm | None, *, tol: float, max_iter: int
) -> _FitResult:
    k = w.shape[0]
    omega, evecs = _eig_desc(w[active])
    n = nk[active]
    if warm is not None and warm.shape is not None:
        shape0 = warm.shape
    elif warm is not None:
        shape0 = _mean_shape(_eig_desc(warm.covariances)[0])  # decreasing, as omega
    else:
        shape0 = _mean_shape(omega.sum(axis=0, keepdims=True))
    vol, shape, it, conv = _alternate_volume_shape(n, omega, shape0, tol, max_iter)
    out = _expand(k, active, vol, np.tile(shape, (len(n), 1)), evecs)
    return out[0], out[1], out[2], it, conv


def _unit_det(c: Array) -> Array:
    sign, logdet = np.linalg.slogdet(c)
    return c / np.exp(logdet / c.shape[-1]) if sign > 0 else c


def _fit_vee(
    nk: Array, w: Array, active: Array, warm: _Warm | None, *, tol: float, max_iter: int
) -> _FitResult:
    # Σ_k = λ_k C with |C| = 1: λ_k = tr(W_k C⁻¹) / (D n_k) and C ∝ Σ_k W_k / λ_k.
    k, d = w.shape[0], w.shape[1]
    wa, n = w[active], nk[active]
    if warm is not None:
        _, logdet = np.linalg.slogdet(warm.covariances)  # positive definite
        c = _unit_det((warm.covariances / np.exp(logdet / d)[:, None, None]).mean(axis=0))
    else:
        c = _unit_det(wa.sum(axis=0))
    converged, it, q_old = False, 0, -np.inf
    for it in range(1, max_iter + 1):  # noqa: B007
        vol = np.einsum("kij,ji->k", wa, np.linalg.inv(c)) / (d * n)
        q = float(-0.5 * (n * d * (np.log(vol) + 1.0)).sum())  # tr(Σ_k⁻¹ W_k) = D n_k
        if _converged(q, q_old, tol):
            converged = True
            break
        q_old = q
        s = (wa / vol[:, None, None]).sum(axis=0)
        c = _unit_det(0.5 * (s + s.T))
    evals, evecs = _eig_desc(c)
    shape = evals / _geomean(evals)
    vol = vol * _geomean(evals)  # |C| = 1 up to rounding
    out = _expand(k, active, vol, np.tile(shape, (len(n), 1)), np.tile(evecs, (len(n), 1, 1)))
    return out[0], out[1], out[2], it, converged


def _plane_values(
    theta: Array, mu: Array, h: Array, b: Array, phi0: Array, weights: Array, d: int
) -> Array:
    """The profile objective after rotating by each angle θ in one plane (``d = 0``: VVE).

    ``theta`` (T,) angles; the other arrays (K,); returns (T,), +inf where a rotated
    variance is not positive.
    """
    u = h * np.cos(2 * theta)[:, None] + b * np.sin(2 * theta)[:, None]
    mii, mjj = mu + u, mu - u
    ok = np.all((mii > 0) & (mjj > 0), axis=1)
    phi = np.log(np.where(ok[:, None], mii * mjj, 1.0))
    value = np.exp((phi - phi0) / d) @ weights if d else phi @ weights
    return np.asarray(np.where(ok, value, np.inf))


# The profile has several minima per plane (period π/2): a coarse grid of angles next to
# the Newton step lets a sweep leave a poor local minimum.
_GRID = np.linspace(-np.pi / 4, np.pi / 4, 9)[1:-1]
_NO_GRID = _GRID[:0]
_HALVINGS: Array = np.asarray(0.5 ** np.arange(12), dtype=np.float64)

#: The compiled sweep when Numba is installed (tests switch it off to compare).
_USE_NUMBA = HAVE_NUMBA


def _rotation_sweep(m: Array, orient: Array, nk: Array, equal_volume: bool, grid: Array) -> None:
    """One sweep of plane rotations, in place: compiled if possible, else NumPy."""
    if _USE_NUMBA:
        rotation_sweep(m, orient, nk, equal_volume, grid, _HALVINGS)
    else:
        _rotation_sweep_numpy(m, orient, nk, equal_volume, grid)


def _rotation_sweep_numpy(
    m: Array, orient: Array, nk: Array, equal_volume: bool, grid: Array
) -> None:
    """One sweep of plane rotations of D, in place, each lowering the profile objective.

    ``m[k] = Dᵀ W_k D``. With the shapes and volumes profiled out (their optimum given D)
    the objective to minimise is Σ_k n_k Σ_j log m_k,jj for VVE and Σ_k |diag m_k|^{1/D}
    for EVE (Flury's common-principal-components criterion and its equal-volume twin).
    In the plane (i, j), m_ii(θ) = μ + u and m_jj(θ) = μ − u with u = h cos 2θ + b sin 2θ.
    Each rotation is the Newton step in θ, halved until the objective decreases, or the
    best angle of ``grid`` if that is lower still; nothing if neither lowers it (by more
    than rounding), so every sweep is monotone. The compiled twin is
    :func:`~latentmix.gaussian._parsimonious_numba.rotation_sweep`.
    """
    d = orient.shape[0]
    logd = np.log(_diag(m))
    for i in range(d - 1):
        for j in range(i + 1, d):
            a, e, b = m[:, i, i], m[:, j, j], m[:, i, j]
            mu, h = 0.5 * (a + e), 0.5 * (a - e)
            phi0 = logd[:, i] + logd[:, j]
            dphi = 2.0 * b * (1.0 / a - 1.0 / e)
            d2phi = -4.0 * h / a - 4.0 * (b / a) ** 2 + 4.0 * h / e - 4.0 * (b / e) ** 2
            if equal_volume:
                weights = np.exp(logd.sum(axis=1) / d)
                grad = float(weights @ dphi) / d
                hess = float(weights @ (d2phi / d + (dphi / d) ** 2))
                f0 = float(weights.sum())
            else:
                weights = nk
                grad, hess = float(nk @ dphi), float(nk @ d2phi)
                f0 = float(nk @ phi0)
            if not grad != 0 or not np.isfinite(grad):
                continue
            bar = f0 - 1e-13 * abs(f0)
            newton = -grad / hess if hess > 0 else -np.sign(grad) * np.pi / 8
            newton = float(np.clip(newton, -np.pi / 4, np.pi / 4))
            dv = d if equal_volume else 0
            step, best = 0.0, f0
            # The first halving that decreases, where the compiled loop stops; none if
            # even the Newton model's decrease is below the bar (a converged plane).
            steps = newton * _HALVINGS
            if 0.5 * grad * grad < NEGLIGIBLE * hess * abs(f0):
                steps = steps[:0]
            values = _plane_values(steps, mu, h, b, phi0, weights, dv)
            down = np.flatnonzero(values < bar)
            if len(down):
                step, best = float(steps[down[0]]), float(values[down[0]])
            if len(grid):
                values = _plane_values(grid, mu, h, b, phi0, weights, dv)
                c = int(np.argmin(values))
                if values[c] < best and values[c] < bar:
                    step, best = float(grid[c]), float(values[c])
            if not best < bar:
                continue
            cos, sin = np.cos(step), np.sin(step)
            # D ← D R and M_k ← Rᵀ M_k R, R the rotation by θ in the plane (i, j).
            oi, oj = orient[:, i].copy(), orient[:, j].copy()
            orient[:, i], orient[:, j] = cos * oi + sin * oj, cos * oj - sin * oi
            mi, mj = m[:, :, i].copy(), m[:, :, j].copy()
            m[:, :, i], m[:, :, j] = cos * mi + sin * mj, cos * mj - sin * mi
            mi, mj = m[:, i, :].copy(), m[:, j, :].copy()
            m[:, i, :], m[:, j, :] = cos * mi + sin * mj, cos * mj - sin * mi
            logd[:, i], logd[:, j] = np.log(m[:, i, i]), np.log(m[:, j, j])


def _fit_common_orientation(
    nk: Array,
    w: Array,
    active: Array,
    warm: _Warm | None,
    *,
    tol: float,
    max_iter: int,
    equal_volume: bool,
) -> _FitResult:
    """EVE (``equal_volume``) and VVE: Σ_k = λ(_k) D A_k Dᵀ with a common orientation D.

    The problem in D has several local optima. Warm-started, it continues from the
    previous D (so Q never falls below the previous parameters'). Cold, it starts from
    the identity (so Q ≥ EVI's or VVI's), the eigenvectors of Σ_k W_k (so Q ≥ EEE's or
    VEE's pooled orientation) and of each W_k, and keeps the best; its sweeps all try
    the grid of angles, a warm start's only the one that confirms convergence (EM's D
    moves little per iteration, and the grid costs several times a Newton-only sweep).
    """
    k, d = w.shape[0], w.shape[1]
    wa, n = w[active], nk[active]
    if warm is not None and warm.orientation is not None:
        starts = [np.array(warm.orientation)]
    elif warm is not None:  # the eigenvectors of the mean of D Λ_k Dᵀ are D
        starts = [_eig_desc(warm.covariances.mean(axis=0))[1]]
    else:
        starts = [np.eye(d), _eig_desc(wa.sum(axis=0))[1]]
        if len(n) > 1:
            starts += list(_eig_desc(wa)[1][:_MAX_COMPONENT_STARTS])
    best: tuple[float, Array, Array, Array, int, bool] | None = None
    for orient in starts:
        orient = np.ascontiguousarray(orient)
        q, vol, shape, it, converged = _orientation_iterations(
            n, np.ascontiguousarray(wa), orient, tol, max_iter, equal_volume, warm is None
        )
        if best is None or q > best[0]:
            best = (q, vol, shape, orient, it, converged)
    assert best is not None
    _, vol, shape, orient, it, converged = best
    out = _expand(k, active, vol, shape, np.tile(orient, (len(n), 1, 1)))
    return out[0], out[1], out[2], it, converged


_MAX_COMPONENT_STARTS = 4


@functools.lru_cache(maxsize=64)
def _planes(d: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The planes (i, j), i < j, in ``np.triu_indices`` order."""
    ii, jj = np.triu_indices(d, 1)
    ii.setflags(write=False)
    jj.setflags(write=False)
    return ii, jj


def _rotated(wa: Array, orient: Array) -> Array:
    m = orient.T @ wa @ orient
    return np.asarray(0.5 * (m + m.transpose(0, 2, 1)))


def _given_orientation(n: Array, m: Array, equal_volume: bool) -> tuple[float, Array, Array]:
    """Q, volumes and shapes at their optimum given D (``m[k] = Dᵀ W_k D``)."""
    b = _diag(m)
    if equal_volume:  # EVI in D's coordinates
        g = _geomean(b)
        shape = b / g[:, None]
        vol = np.full(len(n), g.sum() / n.sum())
    else:  # VVI in D's coordinates
        lam_a = b / n[:, None]
        vol = _geomean(lam_a)
        shape = lam_a / vol[:, None]
    return _q_diag(n, b, vol, shape), vol, shape


def _profile(n: Array, m: Array, equal_volume: bool) -> float:
    """The objective the rotations lower: Σ_k |diag m_k|^{1/D} (EVE), Σ_k n_k log|diag m_k|;
    +inf unless every diag m_k is positive."""
    b = _diag(m)
    if not np.all(b > 0):
        return np.inf
    logb = np.log(b)
    if equal_volume:
        return float(np.exp(logb.mean(axis=1)).sum())
    return float(n @ logb.sum(axis=1))


def _profile_derivatives(n: Array, m: Array, equal_volume: bool) -> tuple[Array, Array]:
    """Gradient (P,) and Hessian (P, P) of the profile f(D exp Ω) in Ω at Ω = 0.

    Ω is skew with Ω_ij = ω_a for the planes a = (i, j), i < j, in ``np.triu_indices``
    order. With m(Ω) = exp(−Ω) m exp(Ω), diag m moves by 2 (mΩ)_tt to first order and
    by (mΩ²)_tt − (ΩmΩ)_tt to second, so with c_t = ∂f/∂m_tt and S = ∂²f/∂m_tt∂m_uu,
    ∂f/∂ω_a = 2 Σ_k m_k,ij (c_k,j − c_k,i) and the Hessian is Σ_k J_kᵀ S_k J_k (J_k the
    first-order moves) plus the Hessian of Σ_t c_t [(mΩ²)_tt − (ΩmΩ)_tt], whose entry for
    the unit matrices E_pq, E_rs is T = δ_qr m_sp (c_s − c_q) + δ_sp m_qr (c_q − c_p).
    """
    k, d = m.shape[0], m.shape[1]
    ii, jj = _planes(d)
    b = _diag(m)
    if equal_volume:  # f_k = |diag m_k|^{1/D}
        g = _geomean(b)
        c = g[:, None] / (d * b)
        s = (g[:, None, None] / d**2) / (b[:, :, None] * b[:, None, :])
        s[:, np.arange(d), np.arange(d)] -= g[:, None] / (d * b**2)
    else:  # f_k = n_k Σ_t log m_k,tt
        c = n[:, None] / b
        s = _diag_matrices(-n[:, None] / b**2)
    mij = m[:, ii, jj]
    grad = (2.0 * mij * (c[:, jj] - c[:, ii])).sum(axis=0)
    planes = np.arange(len(ii))
    jac = np.zeros((k, d, len(ii)))
    jac[:, ii, planes], jac[:, jj, planes] = -2.0 * mij, 2.0 * mij
    hess = (jac.transpose(0, 2, 1) @ s @ jac).sum(axis=0)

    # T[p, q, r, s] = δ_qr X[s, p, q] + δ_sp X[q, r, p], X[x, y, z] = Σ_k m_xy (c_x − c_z).
    x = np.einsum("kxy,kx->xy", m, c)[:, :, None] - np.einsum("kxy,kz->xyz", m, c)
    eye = np.eye(d)
    t = eye[None, :, :, None] * x.transpose(1, 2, 0)[:, :, None, :]
    t += eye[:, None, None, :] * x.transpose(2, 0, 1)[:, :, :, None]
    i, j, p, q = ii[:, None], jj[:, None], ii[None, :], jj[None, :]
    hess += t[i, j, p, q] - t[i, j, q, p] - t[j, i, p, q] + t[j, i, q, p]
    return grad, 0.5 * (hess + hess.T)


def _newton_step(
    n: Array, wa: Array, orient: Array, m: Array, equal_volume: bool, modified: bool
) -> bool:
    """A Newton step for D on the profile, in place, if it (or one of its halvings)
    lowers the profile; False if nothing moved.

    Where the Hessian is not positive definite: no step, or with ``modified`` a step
    with its eigenvalues' moduli (a descent direction that leaves saddles and concave
    stretches quickly, though not always towards the best basin).

    D ← D C(Ω) with C the Cayley transform (I − Ω/2)⁻¹(I + Ω/2), orthogonal and equal to
    exp Ω to second order, so near an optimum the steps converge quadratically where
    the plane sweeps crawl (coordinate descent along a curved valley).
    """
    d = orient.shape[0]
    if d < 2:  # no plane to rotate
        return False
    if _USE_NUMBA:
        status = newton_step(n, wa, orient, m, equal_volume, _NEWTON_HALVINGS)
        if status >= 0 or not modified:
            return status == 1
        grad, hess = profile_derivatives(n, m, equal_volume)  # the modified step, below
    else:
        grad, hess = _profile_derivatives(n, m, equal_volume)
    if not np.all(np.isfinite(hess)) or not np.all(np.isfinite(grad)):
        return False
    chol, info = lapack.dpotrf(hess, lower=True)  # LAPACK directly: scipy.linalg's
    if info == 0:  # checks cost more than the factorisation at this size
        step, info = lapack.dpotrs(chol, -grad, lower=True)
    if info != 0 and not modified:
        return False
    if info != 0:  # not positive definite: Newton on |H| (eigenvalues' moduli)
        evals, evecs = np.linalg.eigh(hess)
        floor = 1e-8 * max(float(np.abs(evals).max()), np.finfo(float).tiny)
        step = -evecs @ ((evecs.T @ grad) / np.maximum(np.abs(evals), floor))
    step *= min(1.0, (np.pi / 4) / max(float(np.abs(step).max()), np.finfo(float).tiny))
    f0 = _profile(n, m, equal_volume)
    bar = f0 - 1e-13 * abs(f0)
    ii, jj = _planes(d)
    eye = np.eye(d)
    for _ in range(_NEWTON_HALVINGS):
        omega = np.zeros((d, d))
        omega[ii, jj], omega[jj, ii] = step, -step
        trial = orient @ np.linalg.solve(eye - 0.5 * omega, eye + 0.5 * omega)
        if _profile(n, _rotated(wa, trial), equal_volume) < bar:
            orient[...] = trial
            return True
        step *= 0.5
    return False


_NEWTON_HALVINGS = 8
_PATIENCE = 20


def _orientation_iterations(
    n: Array,
    wa: Array,
    orient: Array,
    tol: float,
    max_iter: int,
    equal_volume: bool,
    cold: bool,
) -> tuple[float, Array, Array, int, bool]:
    """Steps of D, each lowering the profile, until Q settles; D in place.

    Newton steps, and a sweep of plane rotations where one fails; a cold start begins
    with a sweep, and all its sweeps try the grid of angles. Far from an optimum the
    sweeps find better basins than modified Newton steps would, so those come only
    after ``_PATIENCE`` failures in a row. Q counts as settled only after a sweep with
    the grid that moved it by less than ``tol``, so the result is a minimum of the
    profile in every plane, as the sweeps alone would give, but found in a few Newton
    steps where the sweeps crawl for hundreds.
    """
    m = _rotated(wa, orient)
    q, vol, shape = _given_orientation(n, m, equal_volume)
    converged, it, failed = False, 0, 0
    confirm = cold  # a cold start begins with a sweep, a warm one with a Newton step
    for it in range(1, max_iter + 1):  # noqa: B007
        sweep = confirm
        if not sweep and _newton_step(n, wa, orient, m, equal_volume, failed >= _PATIENCE):
            failed = 0
        else:
            failed += not sweep
            sweep = True
            grid = _GRID if confirm or cold else _NO_GRID
            _rotation_sweep(m, orient, n, equal_volume, grid)  # m is overwritten
        m = _rotated(wa, orient)
        q_new, vol, shape = _given_orientation(n, m, equal_volume)
        settled = _converged(q_new, q, tol)
        q = q_new
        if settled and sweep:
            converged = True
            break
        confirm = settled  # Newton steps settled Q: confirm with a sweep and the grid
    return q, vol, shape, it, converged


def _fit_eve(nk: Array, w: Array, active: Array, warm: _Warm | None, **kw: Any) -> _FitResult:
    return _fit_common_orientation(nk, w, active, warm, equal_volume=True, **kw)


def _fit_vve(nk: Array, w: Array, active: Array, warm: _Warm | None, **kw: Any) -> _FitResult:
    return _fit_common_orientation(nk, w, active, warm, equal_volume=False, **kw)


_ITERATIVE: dict[str, Any] = {
    "VEI": _fit_vei,
    "VEE": _fit_vee,
    "EVE": _fit_eve,
    "VVE": _fit_vve,
    "VEV": _fit_vev,
}
