"""Online EM: stepwise EM for families with additive statistics, and mini-batch k-means.

Stepwise EM (Cappé and Moulines, 2009) keeps running statistics per unit of sample weight,
ŝ, and after each batch B moves them a step towards the batch's own statistics,

    ŝ_t = (1 − γ_t) · ŝ_{t−1} + γ_t · S(B; θ_{t−1}) / W(B),      γ_t = (t + 2) ** (−alpha),

then takes the M-step on ŝ_t scaled to the total weight seen so far (so a prior keeps its
meaning; the maximum-likelihood M-step does not depend on the scale). The first batch
sets ŝ_0 = S(B_0)/W(B_0). ``alpha`` must lie in (0.5, 1] for the stochastic-approximation
guarantees: 1 forgets nothing (every batch counts equally, a running average), values
near 0.5 forget old statistics fastest and follow a drifting stream. The default 0.6 is
Cappé and Moulines' recommendation, with Polyak averaging left out.

Gaussian statistics are sums about a reference point (the previous means, see
:class:`~latentmix.gaussian.GaussianStats`); before blending, the running statistics are
moved exactly to the new batch's reference (:func:`rereference`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import singledispatch
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from latentmix.em._data import ArrayData, DataSource
from latentmix.em._loop import EMFamily
from latentmix.gaussian._stats import GaussianStats

__all__ = [
    "DEFAULT_ALPHA",
    "StepwiseEM",
    "blend_stats",
    "partial_fit_gaussian_mixture",
    "partial_fit_kmeans",
    "rereference",
    "scale_stats",
    "step_size",
]

#: Step-size exponent: γ_t = (t + 2) ** −alpha (Cappé and Moulines' recommended 0.6).
DEFAULT_ALPHA = 0.6

P = TypeVar("P")
S = TypeVar("S")


def step_size(t: int, alpha: float = DEFAULT_ALPHA) -> float:
    """γ_t = (t + 2) ** (−alpha), the weight of the t-th update (t = 1, 2, ...)."""
    return float((t + 2.0) ** (-alpha))


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.5 < alpha <= 1.0:
        raise ValueError(
            f"alpha must be in (0.5, 1] (step sizes (t + 2) ** -alpha must sum to infinity "
            f"while their squares do not), got {alpha}. Use 0.6 for a stream that may drift, "
            "1.0 for a running average."
        )
    return alpha


# -- operations on statistics -----------------------------------------------------------------


@singledispatch
def scale_stats(stats: Any, factor: float) -> Any:
    """The statistics of ``factor`` times every weight (a scaled copy; row counts are kept)."""
    raise TypeError(
        f"Online EM needs to scale statistics of type {type(stats).__name__}; register it "
        "with latentmix.em._online.scale_stats.register."
    )


@scale_stats.register
def _(stats: GaussianStats, factor: float) -> GaussianStats:
    f = float(factor)
    return dataclasses.replace(
        stats,
        nk=stats.nk * f,
        s1=stats.s1 * f,
        s2=stats.s2 * f,
        log_likelihood=stats.log_likelihood * f,
        weight=stats.weight * f,
    )


def rereference(
    stats: GaussianStats, shift: NDArray[np.float64], centers: NDArray[np.float64]
) -> GaussianStats:
    """The same sums taken about another reference point (``shift``, ``centers``): exact algebra.

    With a_k = shift + c_k the old and a'_k = shift' + c'_k the new reference of component
    k, and δ_k = a_k − a'_k: s1' = s1 + nk·(shift − shift'), and the second moments gain
    the cross terms of δ (for ``tied``, about the shift alone).
    """
    ct = stats.covariance_type
    shift = np.asarray(shift, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    if np.array_equal(shift, stats.shift) and np.array_equal(centers, stats.centers):
        return stats
    a = stats.shift - shift  # move of the global reference
    nk = stats.nk
    s1 = stats.s1 + nk[:, None] * a
    if ct == "full":
        delta = (stats.shift + stats.centers) - (shift + centers)  # (K, D)
        csum = stats.s1 - nk[:, None] * stats.centers  # Σ w r (x − a_k)
        s2 = (
            stats.s2
            + np.einsum("ki,kj->kij", csum, delta)
            + np.einsum("ki,kj->kij", delta, csum)
            + nk[:, None, None] * np.einsum("ki,kj->kij", delta, delta)
        )
    elif ct == "tied":
        m = stats.s1.sum(axis=0)  # Σ w z over all rows
        total = nk.sum()
        s2 = stats.s2 + np.outer(m, a) + np.outer(a, m) + total * np.outer(a, a)
    else:  # diag, spherical: per component Σ w r z² about the shift
        s2 = stats.s2 + 2.0 * a * stats.s1 + nk[:, None] * a**2
    return dataclasses.replace(stats, shift=shift, centers=centers, s1=s1, s2=s2)


@singledispatch
def blend_stats(running: Any, batch: Any, gamma: float) -> Any:
    """(1 − γ)·running + γ·batch/W(batch), in the batch's reference (per unit weight)."""
    raise TypeError(
        f"Online EM cannot blend statistics of type {type(running).__name__}; register it "
        "with latentmix.em._online.blend_stats.register."
    )


@blend_stats.register
def _(running: GaussianStats, batch: GaussianStats, gamma: float) -> GaussianStats:
    if batch.weight <= 0:
        raise ValueError("A batch with total sample weight 0 carries no information.")
    g = float(gamma)
    old = rereference(running, batch.shift, batch.centers)
    new = scale_stats(batch, 1.0 / batch.weight)
    return dataclasses.replace(
        new,
        nk=(1.0 - g) * old.nk + g * new.nk,
        s1=(1.0 - g) * old.s1 + g * new.s1,
        s2=(1.0 - g) * old.s2 + g * new.s2,
        log_likelihood=(1.0 - g) * old.log_likelihood + g * new.log_likelihood,
        weight=(1.0 - g) * old.weight + g * new.weight,
        n_rows=running.n_rows + batch.n_rows,
        # Re-seeding after a collapse uses the rows the *current* model explains worst.
        worst_rows=batch.worst_rows,
        worst_scores=batch.worst_scores,
    )


def _weight_of(stats: Any) -> float:
    w = getattr(stats, "weight", None)
    if w is None:
        raise TypeError(f"{type(stats).__name__} has no total weight attribute `weight`.")
    return float(w)


# -- the stepwise update ------------------------------------------------------------------------


@dataclass
class StepwiseEM(Generic[P, S]):
    """Running state of stepwise EM; :meth:`update` consumes one batch.

    Attributes
    ----------
    alpha : float
        Step-size exponent, γ_t = (t + 2) ** −alpha, in (0.5, 1].
    n_steps : int
        Batches consumed so far.
    running : statistics or None
        Running statistics per unit weight (None before the first batch).
    weight_seen : float
        Σ w of all rows seen.
    """

    alpha: float = DEFAULT_ALPHA
    n_steps: int = 0
    running: S | None = None
    weight_seen: float = 0.0

    def __post_init__(self) -> None:
        self.alpha = _check_alpha(self.alpha)

    def update(self, family: EMFamily[P, S], params: P, batch: DataSource) -> tuple[P, float]:
        """One step on ``batch``: returns the new parameters and the batch's lower bound.

        The lower bound (average log-likelihood per unit weight for EM) is that of the
        batch under the parameters *before* the step: an honest held-out score for data
        seen once.
        """
        stats = batch.reduce(
            lambda X, w: family.estep_stats(X, w, params), width=family.chunk_width
        )
        bound = family.lower_bound(stats, params)
        w = _weight_of(stats)
        if w <= 0:
            raise ValueError("A batch with total sample weight 0 carries no information.")
        if self.running is None:
            self.running = scale_stats(stats, 1.0 / w)
        else:
            self.running = blend_stats(self.running, stats, step_size(self.n_steps, self.alpha))
        self.n_steps += 1
        self.weight_seen += w
        new = family.mstep(scale_stats(self.running, self.weight_seen), params)
        return new, float(bound)


# -- estimator-level helpers (wired into the estimators by their owners) ------------------------


def _validate_batch(
    est: Any, X: ArrayLike, first: bool, *, allow_nan: bool
) -> NDArray[np.floating[Any]]:
    from sklearn.utils.validation import validate_data

    from latentmix._validation import FLOAT_DTYPES, check_finite

    Xv = validate_data(
        est,
        X,
        reset=first,
        dtype=FLOAT_DTYPES,
        ensure_2d=True,
        ensure_all_finite=False,
        ensure_min_samples=1,
    )
    check_finite(Xv, allow_nan=allow_nan)
    return np.asarray(Xv)


def partial_fit_gaussian_mixture(
    est: Any,
    X: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    alpha: float | None = None,
) -> Any:
    """``GaussianMixture.partial_fit``: one stepwise-EM step on the batch ``X``.

    The first call initialises from ``weights_init``/``means_init``/``precisions_init``
    when all are given, else by the estimator's ``init_params`` on this first batch (which
    then needs at least ``n_components`` distinct rows), and then takes a step on it too.
    Later calls continue the same stream; ``fit`` starts it again. Fixed parameters
    (``fixed=``), sample weights and missing values (NaN) work as in ``fit``.

    Parameters
    ----------
    est : GaussianMixture
    X : array-like of shape (n_samples, n_features)
        One batch of the stream.
    sample_weight : array-like of shape (n_samples,), default=None
    alpha : float in (0.5, 1], default=None
        Step-size exponent; ``None`` uses the estimator's ``online_alpha`` attribute if
        it has one, else :data:`DEFAULT_ALPHA` (0.6). Fixed on the first call.

    Returns
    -------
    est : GaussianMixture
        Updated in place: the fitted attributes, ``n_steps_`` (batches seen),
        ``lower_bound_`` (the batch's average log-likelihood under the parameters before
        the step) and ``lower_bounds_`` (one entry per batch).
    """
    from latentmix._validation import check_random_state, check_sample_weight
    from latentmix.gaussian._missing import check_missing, has_missing
    from latentmix.mixture._gaussian_mixture import _GaussianFamily

    state: StepwiseEM[Any, Any] | None = getattr(est, "_stepwise", None)
    first = state is None
    Xv = _validate_batch(est, X, first, allow_nan=True)
    missing = has_missing(Xv)
    if missing:
        check_missing(Xv)
    w = check_sample_weight(sample_weight, Xv.shape[0])
    if getattr(est, "prior", None) is not None:
        raise ValueError(
            "partial_fit does not support prior= (the default prior depends on all the data); "
            "use fit, or prior=None."
        )
    batch = ArrayData(Xv, w)
    family = _GaussianFamily(est, Xv.shape[1], missing=missing)
    if first:
        est._check_initial_parameters(Xv.shape[1])
        if hasattr(est, "_check_fixed"):
            est._check_fixed()
        a = alpha if alpha is not None else getattr(est, "online_alpha", DEFAULT_ALPHA)
        state = StepwiseEM(alpha=a)
        if all(v is not None for v in (est.weights_init, est.means_init, est.precisions_init)):
            params = family._from_user(None)
        else:
            if Xv.shape[0] < est.n_components:
                raise ValueError(
                    f"The first batch passed to partial_fit has {Xv.shape[0]} rows, fewer than "
                    f"n_components={est.n_components}: it is used to initialise the mixture. "
                    "Pass a larger first batch, or weights_init, means_init and "
                    "precisions_init."
                )
            params = family.initialize(batch, check_random_state(est.random_state))
        est.lower_bounds_ = []
        est.n_reseeded_ = 0
    else:
        assert state is not None
        params = est._params()
    new, bound = state.update(family, params, batch)
    est._stepwise = state
    est._set_params(new)
    est.lower_bound_ = float(bound)
    est.lower_bounds_ = [*getattr(est, "lower_bounds_", []), float(bound)]
    est.n_steps_ = int(state.n_steps)
    est.n_iter_ = int(state.n_steps)
    est.converged_ = False  # a stream has no end to converge to
    est.n_reseeded_ = int(getattr(est, "n_reseeded_", 0) + family.n_reseeded)
    return est


def partial_fit_kmeans(est: Any, X: ArrayLike, sample_weight: ArrayLike | None = None) -> Any:
    """``KMeans.partial_fit``: one mini-batch k-means step (Sculley, 2010) on the batch.

    Each center moves to the running weighted mean of every row ever assigned to it:
    with n_k the weight assigned so far, ``c_k ← c_k + (Σ_B w x − W_k(B)·c_k) / (n_k +
    W_k(B))``, a per-center step size 1 / n_k. The first call seeds the centers by
    k-means++ on the first batch (unless ``init`` is an array), which then needs at least
    ``n_clusters`` rows.

    Returns
    -------
    est : KMeans
        Updated in place: ``cluster_centers_``, ``n_steps_``, ``counts_`` (weight assigned
        to each center so far) and ``inertia_`` (the batch's inertia under the centers
        before the step).
    """
    from latentmix._validation import check_random_state, check_sample_weight
    from latentmix.cluster import kmeans_plusplus

    first = not hasattr(est, "counts_")
    Xv = _validate_batch(est, X, first, allow_nan=False)
    w = check_sample_weight(sample_weight, Xv.shape[0])
    k = int(est.n_clusters)
    if first:
        init = getattr(est, "init", "k-means++")
        if isinstance(init, str):
            if Xv.shape[0] < k:
                raise ValueError(
                    f"The first batch passed to partial_fit has {Xv.shape[0]} rows, fewer "
                    f"than n_clusters={k}: it seeds the centers. Pass a larger first batch."
                )
            centers, _ = kmeans_plusplus(
                Xv, k, sample_weight=w, random_state=check_random_state(est.random_state)
            )
        else:
            centers = np.asarray(init, dtype=np.float64)
        C = np.asarray(centers, dtype=np.float64).copy()
        counts = np.zeros(k)
        est.n_steps_ = 0
    else:
        C = np.asarray(est.cluster_centers_, dtype=np.float64) + 0.0
        counts = np.asarray(est.counts_, dtype=np.float64).copy()
    Xd = Xv.astype(np.float64, copy=False)
    d2 = (
        np.einsum("ij,ij->i", Xd, Xd)[:, None]
        - 2.0 * Xd @ C.T
        + np.einsum("ij,ij->i", C, C)[None, :]
    )
    labels = np.argmin(d2, axis=1)
    ww = np.ones(Xd.shape[0]) if w is None else w
    inertia = float(np.dot(ww, np.maximum(d2[np.arange(Xd.shape[0]), labels], 0.0)))
    wk = np.bincount(labels, weights=ww, minlength=k)
    sums = np.zeros_like(C)
    np.add.at(sums, labels, ww[:, None] * Xd)
    seen = wk > 0
    counts[seen] += wk[seen]
    C[seen] += (sums[seen] - wk[seen, None] * C[seen]) / counts[seen, None]
    est.cluster_centers_ = C.astype(Xv.dtype, copy=False)
    est.counts_ = counts
    est.inertia_ = inertia
    est.n_steps_ = int(est.n_steps_) + 1
    est.n_iter_ = est.n_steps_
    return est
