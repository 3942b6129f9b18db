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
which are the optimal orientations for any common shape. EVE and VVE alternate between
the shapes and volumes given the common orientation D (their closed-form optimum) and a
sweep of plane (Jacobi) rotations of D on the profile objective, Flury's
common-principal-components criterion Σ_k n_k log|diag(Dᵀ W_k D)| for VVE and
Σ_k |diag(Dᵀ W_k D)|^{1/D} for EVE: in each plane the better of a safeguarded Newton step
and a coarse grid of angles, kept only if it lowers the profile. This is the
Flury–Gautschi route of Celeux and Govaert. Rotations that hold the shapes fixed (our
first version, and also what the majorisation–minimisation of Browne and McNicholas,
2014, does) reached far poorer local optima on random problems. Every step of
every iterative model is a coordinate-wise improvement, so started from the previous EM
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

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
    """A usable warm start: finite positive-definite covariances, and D if one is common."""

    covariances: Array
    orientation: Array | None


def _warm_start(
    previous: ParsimoniousState | NDArray[Any] | None, n_components: int, d: int
) -> _Warm | None:
    if previous is None:
        return None
    orientation = None
    if isinstance(previous, ParsimoniousState):
        cov = previous.covariances
        if previous.orientations is not None and previous.model in ("EVE", "VVE"):
            orientation = previous.orientations[0]
    else:
        cov = np.asarray(previous, dtype=np.float64)
    if cov.shape != (n_components, d, d):
        raise ValueError(
            f"previous has the shape {cov.shape}; expected {(n_components, d, d)} "
            "(one covariance per component)."
        )
    finite = np.all(np.isfinite(cov), axis=(1, 2))
    if not np.any(finite):
        return None
    if np.any(np.linalg.eigvalsh(cov[finite])[:, 0] <= 0):
        return None
    return _Warm(cov[finite], orientation)


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
    if warm is not None:
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
        c = _unit_det(np.mean([_unit_det(s) for s in warm.covariances], axis=0))
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


def _plane_objective(
    theta: Array, mu: Array, h: Array, b: Array, phi0: Array, weights: Array, d: int
) -> Array:
    """The profile objective after rotating by each angle θ in one plane (``d = 0``: VVE).

    ``theta`` (T,) angles; the other arrays (K,); returns (T,), +inf where a rotated
    variance is not positive.
    """
    c2, s2 = np.cos(2 * theta)[:, None], np.sin(2 * theta)[:, None]
    mii, mjj = mu + h * c2 + b * s2, mu - h * c2 - b * s2
    ok = np.all((mii > 0) & (mjj > 0), axis=1)
    phi = np.log(np.where(mii > 0, mii, 1.0)) + np.log(np.where(mjj > 0, mjj, 1.0))
    value = weights @ np.exp((phi - phi0) / d).T if d else weights @ phi.T
    return np.asarray(np.where(ok, value, np.inf))


# The profile has several minima per plane (period π/2): a coarse grid of angles next to
# the Newton steps lets a sweep leave a poor local minimum.
_GRID = np.linspace(-np.pi / 4, np.pi / 4, 9)[1:-1]
_HALVINGS = 0.5 ** np.arange(12)


def _rotation_sweep(m: Array, orient: Array, nk: Array, equal_volume: bool) -> None:
    """One sweep of plane rotations of D, in place, each lowering the profile objective.

    ``m[k] = Dᵀ W_k D``. With the shapes and volumes profiled out (their optimum given D)
    the objective to minimise is Σ_k n_k Σ_j log m_k,jj for VVE and Σ_k |diag m_k|^{1/D}
    for EVE (Flury's common-principal-components criterion and its equal-volume twin).
    In the plane (i, j), m_ii(θ) = μ + h cos 2θ + b sin 2θ and m_jj(θ) = μ − h cos 2θ −
    b sin 2θ; each rotation takes the best of a Newton step in θ, its halvings and a
    coarse grid of angles, only if it lowers the objective, so every sweep is monotone.
    """
    d = orient.shape[0]
    for i in range(d - 1):
        for j in range(i + 1, d):
            a, e, b = m[:, i, i], m[:, j, j], m[:, i, j]
            mu, h = 0.5 * (a + e), 0.5 * (a - e)
            phi0 = np.log(a) + np.log(e)
            dphi = 2.0 * b * (1.0 / a - 1.0 / e)
            d2phi = -4.0 * h / a - 4.0 * (b / a) ** 2 + 4.0 * h / e - 4.0 * (b / e) ** 2
            if equal_volume:
                g = np.exp(np.log(np.diagonal(m, axis1=1, axis2=2)).mean(axis=1))
                grad = float(g @ dphi) / d
                hess = float(g @ (d2phi / d + (dphi / d) ** 2))
            else:
                grad, hess = float(nk @ dphi), float(nk @ d2phi)
            if not grad != 0 or not np.isfinite(grad):
                continue

            weights = g if equal_volume else nk
            newton = -grad / hess if hess > 0 else -np.sign(grad) * np.pi / 8
            newton = float(np.clip(newton, -np.pi / 4, np.pi / 4))
            # Every candidate at once: θ = 0, the Newton step and its halvings, the grid.
            angles = np.concatenate([[0.0], newton * _HALVINGS, _GRID])
            values = _plane_objective(angles, mu, h, b, phi0, weights, d if equal_volume else 0)
            best = int(np.argmin(values))
            if not values[best] < values[0] - 1e-13 * abs(values[0]):
                continue
            step = float(angles[best])
            cos, sin = np.cos(step), np.sin(step)
            # D ← D R and M_k ← Rᵀ M_k R, R the rotation by θ in the plane (i, j).
            oi, oj = orient[:, i].copy(), orient[:, j].copy()
            orient[:, i], orient[:, j] = cos * oi + sin * oj, cos * oj - sin * oi
            mi, mj = m[:, :, i].copy(), m[:, :, j].copy()
            m[:, :, i], m[:, :, j] = cos * mi + sin * mj, cos * mj - sin * mi
            mi, mj = m[:, i, :].copy(), m[:, j, :].copy()
            m[:, i, :], m[:, j, :] = cos * mi + sin * mj, cos * mj - sin * mi


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
    VEE's pooled orientation) and of each W_k, and keeps the best.
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
        q, vol, shape, it, converged = _orientation_iterations(
            n, wa, orient, tol, max_iter, equal_volume
        )
        if best is None or q > best[0]:
            best = (q, vol, shape, orient, it, converged)
    assert best is not None
    _, vol, shape, orient, it, converged = best
    out = _expand(k, active, vol, shape, np.tile(orient, (len(n), 1, 1)))
    return out[0], out[1], out[2], it, converged


_MAX_COMPONENT_STARTS = 4


def _orientation_iterations(
    n: Array, wa: Array, orient: Array, tol: float, max_iter: int, equal_volume: bool
) -> tuple[float, Array, Array, int, bool]:
    """Shapes and volumes given D, then a rotation sweep, until Q settles; D in place."""
    converged, it, q_old = False, 0, -np.inf
    for it in range(1, max_iter + 1):  # noqa: B007
        m = np.einsum("ji,kjl,lm->kim", orient, wa, orient)
        m = 0.5 * (m + m.transpose(0, 2, 1))
        b = _diag(m)
        if equal_volume:  # EVI in D's coordinates
            g = _geomean(b)
            shape = b / g[:, None]
            vol = np.full(len(n), g.sum() / n.sum())
        else:  # VVI in D's coordinates
            lam_a = b / n[:, None]
            vol = _geomean(lam_a)
            shape = lam_a / vol[:, None]
        q = _q_diag(n, b, vol, shape)
        if _converged(q, q_old, tol):
            converged = True
            break
        q_old = q
        _rotation_sweep(m, orient, n, equal_volume)
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
