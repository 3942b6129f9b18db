"""Variational Bayesian Gaussian mixtures: mean-field inference on the EM engine."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import validate_data

from latentmix._param_validation import ArrayLike as ArrayLikeC
from latentmix._param_validation import (
    Boolean,
    Interval,
    NoneOr,
    Options,
    RandomStateLike,
    validate_params,
)
from latentmix._validation import (
    FLOAT_DTYPES,
    check_finite,
    check_sample_weight,
    check_X_fit,
    check_X_predict,
)
from latentmix.em._data import ArrayData, DataSource, chunk_rows
from latentmix.em._fit_source import is_out_of_core
from latentmix.em._loop import EMFamily, EMResult, FitInterrupted, run_em
from latentmix.gaussian._params import COVARIANCE_TYPES
from latentmix.gaussian._stats import GaussianStats
from latentmix.mixture._base import _BaseGaussianMixture
from latentmix.mixture._vb_steps import (
    PRIOR_TYPES,
    Moments,
    VBParams,
    VBPriors,
    VBStats,
    estep_width,
    lower_bound,
    moments_from_stats,
    resp_stats,
    score_rows,
    vb_estep_stats,
    vb_update,
)

__all__ = ["BayesianGaussianMixture"]

logger = logging.getLogger("latentmix")

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
EPS = float(np.finfo(np.float64).eps)


class _ColumnMoments:
    """Σ w, Σ w (x − s), Σ w (x − s)(x − s)ᵀ of the rows about a fixed s (additive)."""

    def __init__(self, weight: float, s1: NDArray[np.float64], s2: NDArray[np.float64]) -> None:
        self.weight, self.s1, self.s2 = weight, s1, s2

    def __add__(self, other: _ColumnMoments) -> _ColumnMoments:
        return _ColumnMoments(self.weight + other.weight, self.s1 + other.s1, self.s2 + other.s2)


def _data_mean_cov(
    data: DataSource, shift: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weighted mean and covariance (frequency weights, divisor Σw − 1) of all rows."""

    def part(Xc: NDArray[Any], wc: NDArray[np.float64] | None) -> _ColumnMoments:
        Z = Xc.astype(np.float64) - shift
        Zw = Z if wc is None else Z * wc[:, None]
        weight = float(Xc.shape[0]) if wc is None else float(wc.sum())
        return _ColumnMoments(weight, Zw.sum(axis=0), Zw.T @ Z)

    m = data.reduce(part, width=data.n_features)
    rel = m.s1 / m.weight
    scatter = m.s2 - np.outer(m.s1, rel)
    # As np.cov (ddof=1) for integer weights; weights summing to one or less fall back to Σw.
    divisor = m.weight - 1.0 if m.weight > 1.0 else m.weight
    cov = 0.5 * (scatter + scatter.T) / divisor
    return np.asarray(shift + rel), np.asarray(cov)


class _VBFamily(EMFamily[VBParams, VBStats]):
    """Variational inference as an EM family: the M-step updates the variational factors.

    The bound of an iteration is scikit-learn's: the factors *after* the update, scored with
    the entropy of the responsibilities that produced them. The loop asks for the bound
    before the M-step, so the update is computed once in ``lower_bound`` and reused.
    """

    def __init__(
        self,
        est: BayesianGaussianMixture,
        priors: VBPriors,
        n_features: int,
        data_mean: NDArray[np.float64],
        initial_resp: NDArray[Any] | None = None,
    ) -> None:
        self.est = est
        self.priors = priors
        self.data_mean = data_mean
        self.n_components = int(est.n_components)
        self.covariance_type = str(est.covariance_type)
        self.reg_covar = float(est.reg_covar)
        self.n_features = n_features
        self.initial_resp = initial_resp
        self.chunk_width = estep_width(self.n_components, n_features, self.covariance_type)
        self._last: tuple[VBStats, VBParams] | None = None

    def update(self, moments: Moments) -> VBParams:
        return vb_update(moments, self.priors, self.covariance_type, self.reg_covar)

    # -- initialisation ------------------------------------------------------------------
    def initialize(self, data: DataSource, random_state: np.random.RandomState) -> VBParams:
        if not isinstance(data, ArrayData):
            # Dask, files, chunk factories: k-means|| seeds, every row to its nearest seed.
            from latentmix.em._init_scalable import _hard_stats, kmeans_parallel

            centers = kmeans_parallel(data, self.n_components, random_state)
            stats = _hard_stats(data, centers, self.covariance_type, None)
            return self.update(moments_from_stats(stats))
        X, w = data.X, data.sample_weight
        n, k = X.shape[0], self.n_components
        method = self.est.init_params
        if self.initial_resp is not None:
            given = self.initial_resp

            def resp_fn(start: int, stop: int) -> NDArray[Any]:
                return np.asarray(given[start:stop])

        elif method in ("k-means++", "random_from_data"):
            if method == "k-means++":
                from latentmix.cluster import kmeans_plusplus

                _, idx = kmeans_plusplus(X, k, random_state=random_state, sample_weight=w)
            else:
                idx = random_state.choice(n, size=k, replace=False)
            return self.update(moments_from_stats(self._seed_stats(data, np.asarray(idx))))
        elif method == "kmeans":
            from latentmix.cluster import KMeans

            labels = (
                KMeans(n_clusters=k, n_init=1, random_state=random_state)
                .fit(X, sample_weight=w)
                .labels_
            )

            def resp_fn(start: int, stop: int) -> NDArray[Any]:
                r = np.zeros((stop - start, k))
                r[np.arange(stop - start), labels[start:stop]] = 1.0
                return r

        else:  # random: one draw of the whole (n, K) matrix, taken in row chunks
            rng = random_state

            def resp_fn(start: int, stop: int) -> NDArray[Any]:
                r = rng.uniform(size=(stop - start, k))
                return np.asarray(r / r.sum(axis=1)[:, None])

        stats = self._resp_pass(data, resp_fn)
        return self.update(moments_from_stats(stats))

    def _seed_stats(self, data: ArrayData, seeds: NDArray[np.intp]) -> GaussianStats:
        """Statistics of one-hot responsibilities on the seed rows (seed j → component j).

        Every other row has zero responsibility and adds nothing, so only the K seed rows
        are read; a seed row counts once, whatever its weight (a duplicate would be picked
        once). The weight and row count are those of all the rows, as a full pass gives.
        """
        k = self.n_components
        X, w = data.X, data.sample_weight
        stats = resp_stats(
            X[seeds],
            np.eye(k),
            None if w is None else w[seeds],
            self.data_mean,
            np.zeros((k, X.shape[1])),
            self.covariance_type,
            weight_resp=False,
        )
        return dataclasses.replace(stats, weight=data.total_weight(), n_rows=int(X.shape[0]))

    def _resp_pass(self, data: ArrayData, resp_fn: Any) -> GaussianStats:
        """Statistics for given responsibilities, about the data mean (one pass over rows).

        The responsibilities are generated once per chunk, in row order, so a random draw
        equals one draw of the whole matrix. For ``full`` the pass keeps per-component
        second moments about the data mean; ``moments_from_stats`` recentres them exactly.
        """
        X, w = data.X, data.sample_weight
        n, k = X.shape[0], self.n_components
        shift = self.data_mean
        zeros = np.zeros((k, X.shape[1]))
        step = chunk_rows(self.chunk_width, n)
        total: GaussianStats | None = None
        for start in range(0, n, step):
            stop = min(start + step, n)
            wc = None if w is None else w[start:stop]
            part = resp_stats(
                X[start:stop], resp_fn(start, stop), wc, shift, zeros, self.covariance_type
            )
            total = part if total is None else total + part
        assert total is not None
        return total

    # -- the variational steps -----------------------------------------------------------
    def estep_stats(
        self, X: NDArray[Any], w: NDArray[np.float64] | None, params: VBParams
    ) -> VBStats:
        return vb_estep_stats(X, w, params)

    def _updated(self, stats: VBStats) -> VBParams:
        if self._last is not None and self._last[0] is stats:
            return self._last[1]
        new = self.update(moments_from_stats(stats.gaussian))
        self._last = (stats, new)
        return new

    def mstep(self, stats: VBStats, params: VBParams) -> VBParams:
        return self._updated(stats)

    def lower_bound(self, stats: VBStats, params: VBParams) -> float:
        return lower_bound(self._updated(stats), stats.resp_log_resp, self.n_features)


class BayesianGaussianMixture(_BaseGaussianMixture):
    """Gaussian mixture fitted by mean-field variational inference.

    The weights get a Dirichlet-process (stick-breaking) or a Dirichlet prior and each
    component a Gaussian-Wishart prior on its mean and precision; ``fit`` maximises the
    evidence lower bound (ELBO) over factorised posteriors (Bishop, PRML ch. 10; Blei and
    Jordan, 2006). With a small ``weight_concentration_prior`` the components the data does
    not need get weights near zero, so ``n_components`` is an upper bound. The E-step runs
    on the same additive statistics as :class:`~latentmix.GaussianMixture`, chunk by chunk,
    and ``partial_fit`` learns from batches by stochastic variational inference.

    Parameters, attributes and results follow scikit-learn's ``BayesianGaussianMixture``
    (from the same initial responsibilities, the iterates agree to rounding).

    Parameters
    ----------
    n_components : int, default=1
        Maximum number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Form of each component's precision: its own full matrix, one shared matrix, its own
        diagonal, or its own single value.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound.
    reg_covar : float, default=1e-6
        Non-negative value added to the diagonal of each component's empirical covariance.
    max_iter : int, default=100
        Number of iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the largest lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        How the initial responsibilities are chosen: hard K-means labels, one k-means++ or
        one random row per component, or uniform random soft responsibilities.
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}, \
default="dirichlet_process"
        Prior on the weights: a truncated stick-breaking (Dirichlet-process) prior or a
        finite Dirichlet distribution.
    weight_concentration_prior : float, default=None
        Concentration γ of the weight prior (> 0); None means ``1 / n_components``. Smaller
        values put more weight on few components.
    mean_precision_prior : float, default=None
        Precision β₀ of the prior on the means (> 0); None means 1.
    mean_prior : array-like of shape (n_features,), default=None
        Prior mean m₀; None means the (weighted) mean of X.
    degrees_of_freedom_prior : float, default=None
        Degrees of freedom ν₀ of the Wishart prior (> n_features − 1); None means
        n_features.
    covariance_prior : float or array-like, default=None
        Prior on the covariance (the inverse of the Wishart scale): (n_features, n_features)
        for ``full`` and ``tied``, (n_features,) for ``diag``, a float for ``spherical``.
        None means the (weighted, divisor Σw − 1) empirical covariance of X.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation (and ``sample`` when it is given no generator).
    warm_start : bool, default=False
        If True, ``fit`` continues from the previous solution and ``n_init`` is ignored.
    verbose : int, default=0
        Log progress (logger ``"latentmix"``) when positive.
    verbose_interval : int, default=10
        Iterations between progress messages.
    learning_offset : float, default=10.0
        τ ≥ 0 of the ``partial_fit`` step size ρ_t = (t + τ) ** −κ; larger values slow
        down the early steps.
    learning_decay : float, default=0.7
        κ in (0.5, 1] of the ``partial_fit`` step size (the range in which stochastic
        variational inference converges).
    total_samples : float, default=None
        Size N of the whole data set that ``partial_fit`` batches come from: each batch's
        statistics are scaled by N / (its total weight). None means the total weight seen
        so far, which suits an open-ended stream.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Posterior mean weights.
    means_ : ndarray of shape (n_components, n_features)
        Posterior means m_k of the component means.
    covariances_ : ndarray
        Inverse of the expected precision, (ν_k W_k)⁻¹; shape depends on
        ``covariance_type``, as in :class:`~latentmix.GaussianMixture`.
    precisions_ : ndarray
        Expected precisions ν_k W_k, same shape as ``covariances_``.
    precisions_cholesky_ : ndarray
        Cholesky factors of ``precisions_``.
    weight_concentration_prior_ : float
        The γ used.
    weight_concentration_ : ndarray of shape (n_components,) or tuple of two of them
        Dirichlet parameters of q(π), or for the Dirichlet process the two Beta parameters
        of each stick.
    mean_precision_prior_ : float
        The β₀ used.
    mean_precision_ : ndarray of shape (n_components,)
        Precisions β_k of q(μ_k).
    mean_prior_ : ndarray of shape (n_features,)
        The m₀ used.
    degrees_of_freedom_prior_ : float
        The ν₀ used.
    degrees_of_freedom_ : ndarray of shape (n_components,) or float
        Degrees of freedom ν_k of q(Λ_k) (one float for ``tied``).
    covariance_prior_ : float or ndarray
        The covariance prior used.
    converged_ : bool
        Whether the best initialisation converged (``fit`` only).
    interrupted_ : bool
        Whether ``fit`` was stopped by a KeyboardInterrupt (see Notes; ``fit`` only).
    n_iter_ : int
        Iterations of the best initialisation (``fit`` only).
    lower_bound_ : float
        Lower bound at the last iteration of the best initialisation: the ELBO up to a
        constant that depends only on the priors and the total weight, exactly as
        scikit-learn reports it (``fit`` only).
    lower_bounds_ : list of float
        The trace of the lower bound for the best initialisation (``fit`` only).
    n_batch_iter_ : int
        Batches absorbed by ``partial_fit`` since the last ``fit`` or first batch.
    n_samples_seen_ : float
        Total sample weight seen by ``fit`` and ``partial_fit``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen during ``fit``, when X had string column names.

    See Also
    --------
    GaussianMixture : Maximum-likelihood mixture fitted by EM.

    Notes
    -----
    ``score_samples``, ``predict`` and ``predict_proba`` use E_q[log π_k + log p(x | k)],
    as scikit-learn does; ``sample`` draws from the Gaussians with ``weights_``, ``means_``
    and ``covariances_``.

    A ``tied`` start from seed rows (``k-means++``, ``random_from_data``) keeps the second
    moment about the seeds; scikit-learn sums x xᵀ over all rows about the origin there, so
    that one case differs from it (and depends on the origin); all other starts agree.

    For ``diag`` and ``spherical`` the expected log-determinant uses the Wishart formula
    with ν_k degrees of freedom, and ``tied`` shares one Wishart factor with the average
    count per component: these are scikit-learn's conventions, kept for agreement.

    **Starting from given responsibilities.** To reproduce another implementation's
    iterates, the private ``_fit(X, sample_weight=None, initial_resp=R)`` replaces the
    initialisation by the factors computed from responsibilities ``R`` of shape
    (n_samples, n_components); it is meant for tests and is not a stable API.

    **partial_fit** (stochastic variational inference, Hoffman et al., 2013). The first
    batch is fitted as by ``fit`` (``init_params``, ``max_iter``, ``tol``; priors left as
    None are taken from it and kept). Each batch then runs one E-step under the current
    factors, its
    moments are scaled to ``total_samples`` and blended into the running moments with step
    ρ = 1 for the first batch and ρ_t = (t + learning_offset) ** −learning_decay for the
    batch t = 1, 2, … after it; the factors are updated from the running moments. Blending
    moments equals blending the factors' natural parameters. On a model fitted by ``fit``,
    ``partial_fit`` starts a stream from the fitted factors.

    **Interrupting fit** (Ctrl-C, KeyboardInterrupt): the estimator keeps the best
    factors seen so far (of the current or an earlier initialisation), sets
    ``converged_ = False`` and ``interrupted_ = True``, then re-raises the
    KeyboardInterrupt so that a script still stops; catch it around ``fit`` to keep the
    model. An interrupt before the first initialisation is complete leaves the estimator
    as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix import BayesianGaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [12, 4], [10, 7]])
    >>> bgm = BayesianGaussianMixture(n_components=2, random_state=42).fit(X)
    >>> np.round(np.sort(bgm.means_[:, 0]))
    array([2., 8.])
    >>> bool(bgm.predict([[0, 0]])[0] != bgm.predict([[9, 3]])[0])
    True

    Learning from batches:

    >>> rng = np.random.RandomState(0)
    >>> stream = BayesianGaussianMixture(n_components=4, init_params="k-means++", random_state=0)
    >>> for _ in range(20):
    ...     batch = np.vstack([rng.randn(50, 2), rng.randn(50, 2) + 10])
    ...     stream = stream.partial_fit(batch)
    >>> int((stream.weights_ > 0.1).sum())
    2
    """

    _em_name = "BayesianGaussianMixture"

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_components": [Interval(int, 1, None)],
        "covariance_type": [Options(COVARIANCE_TYPES)],
        "tol": [Interval(float, 0.0, None)],
        "reg_covar": [Interval(float, 0.0, None)],
        "max_iter": [Interval(int, 0, None)],
        "n_init": [Interval(int, 1, None)],
        "init_params": [Options(INIT_PARAMS)],
        "weight_concentration_prior_type": [Options(PRIOR_TYPES)],
        "weight_concentration_prior": [NoneOr(Interval(float, 0.0, None, closed="neither"))],
        "mean_precision_prior": [NoneOr(Interval(float, 0.0, None, closed="neither"))],
        "mean_prior": [NoneOr(ArrayLikeC)],
        "degrees_of_freedom_prior": [NoneOr(Interval(float, 0.0, None, closed="neither"))],
        "covariance_prior": [
            NoneOr(ArrayLikeC),
            Interval(float, 0.0, None, closed="neither"),
        ],
        "random_state": [RandomStateLike],
        "warm_start": [Boolean],
        "verbose": [Interval(int, 0, None)],
        "verbose_interval": [Interval(int, 1, None)],
        "learning_offset": [Interval(float, 0.0, None)],
        "learning_decay": [Interval(float, 0.5, 1.0, closed="right")],
        "total_samples": [NoneOr(Interval(float, 0.0, None, closed="neither"))],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float | None = None,
        mean_prior: ArrayLike | None = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior: float | ArrayLike | None = None,
        random_state: int | np.random.RandomState | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        learning_offset: float = 10.0,
        learning_decay: float = 0.7,
        total_samples: float | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.learning_offset = learning_offset
        self.learning_decay = learning_decay
        self.total_samples = total_samples

    # -- priors ----------------------------------------------------------------------------
    def _priors(
        self, data: DataSource, shift: NDArray[np.float64]
    ) -> tuple[VBPriors, NDArray[np.float64]]:
        """The hyper-parameters, defaults filled in from the data; and the data mean."""
        d = data.n_features
        gamma = (
            1.0 / self.n_components
            if self.weight_concentration_prior is None
            else float(self.weight_concentration_prior)
        )
        beta0 = 1.0 if self.mean_precision_prior is None else float(self.mean_precision_prior)
        if self.degrees_of_freedom_prior is None:
            nu0 = float(d)
        elif self.degrees_of_freedom_prior > d - 1.0:
            nu0 = float(self.degrees_of_freedom_prior)
        else:
            raise ValueError(
                f"The parameter 'degrees_of_freedom_prior' should be greater than {d - 1}, but "
                f"got {self.degrees_of_freedom_prior:.3f}: the Wishart prior needs more degrees "
                "of freedom than n_features - 1. Leave it as None to use n_features."
            )
        mean_x, cov_x = _data_mean_cov(data, shift)
        if self.mean_prior is None:
            m0 = mean_x
        else:
            m0 = np.asarray(self.mean_prior, dtype=np.float64)
            if m0.shape != (d,):
                raise ValueError(
                    f"The parameter 'means' should have the shape of ({d},), but got "
                    f"{m0.shape}: mean_prior needs one value per feature."
                )
            if not np.all(np.isfinite(m0)):
                raise ValueError("mean_prior contains NaN or infinity.")
        psi0 = self._covariance_prior(d, cov_x)
        priors = VBPriors(self.weight_concentration_prior_type, gamma, beta0, m0, nu0, psi0)
        return priors, mean_x

    def _covariance_prior(self, d: int, cov_x: Any) -> NDArray[np.float64]:
        ct = self.covariance_type
        if self.covariance_prior is None:
            cov = np.atleast_2d(np.asarray(cov_x, dtype=np.float64))
            if ct in ("full", "tied"):
                return cov
            var = np.diag(cov).copy()
            return var if ct == "diag" else np.asarray(var.mean())
        prior = np.asarray(self.covariance_prior, dtype=np.float64)
        shape = {"full": (d, d), "tied": (d, d), "diag": (d,), "spherical": ()}[ct]
        if prior.shape != shape:
            raise ValueError(
                f"The parameter '{ct} covariance_prior' should have the shape of {shape}, but "
                f"got {prior.shape}."
            )
        if ct in ("full", "tied"):
            if not np.allclose(prior, prior.T) or np.any(np.linalg.eigvalsh(prior) <= 0.0):
                raise ValueError(
                    f"'{ct} covariance_prior' should be symmetric, positive-definite: pass a "
                    "covariance matrix (for instance np.cov(X.T))."
                )
        elif np.any(prior <= 0.0) or not np.all(np.isfinite(prior)):
            raise ValueError(f"'{ct} covariance_prior' should be positive.")
        return prior

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None
    ) -> BayesianGaussianMixture:
        """Fit the variational factors to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : Ignored
            Present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of 2 counts a row twice.

        Returns
        -------
        self : BayesianGaussianMixture
            The fitted model.
        """
        return self._fit(X, sample_weight=sample_weight)

    def _fit(
        self,
        X: ArrayLike,
        sample_weight: ArrayLike | None = None,
        initial_resp: ArrayLike | None = None,
    ) -> BayesianGaussianMixture:
        """``fit``, optionally from given initial responsibilities (see Notes)."""
        validate_params(self, self._parameter_constraints)
        if is_out_of_core(X):
            if initial_resp is not None:
                raise ValueError("initial_resp needs in-memory X.")
            return self._fit_source(X, sample_weight)
        Xv = check_X_fit(self, X, min_samples=self.n_components)
        w = check_sample_weight(sample_weight, Xv.shape[0])
        resp = None
        if initial_resp is not None:
            resp = np.asarray(initial_resp, dtype=np.float64)
            if resp.shape != (Xv.shape[0], self.n_components):
                raise ValueError(
                    f"initial_resp should have the shape {(Xv.shape[0], self.n_components)} "
                    f"(n_samples, n_components), but got {resp.shape}."
                )
        data = ArrayData(Xv, w)
        priors, data_mean = self._priors(data, Xv[0].astype(np.float64))
        family = _VBFamily(self, priors, Xv.shape[1], data_mean, resp)
        warm = self.warm_start and hasattr(self, "converged_")
        try:
            result = run_em(family, data, **self._em_options(self._vb_params() if warm else None))
        except FitInterrupted as exc:
            # Keep the best factors so far, then let the interrupt stop the caller.
            self._set_fit_result(exc.result, priors, data)
            raise
        self._set_fit_result(result, priors, data)
        return self

    def _fit_source(self, X: Any, sample_weight: Any) -> BayesianGaussianMixture:
        """``fit`` on a Dask collection, a ``.npy``/Parquet path or a chunk factory.

        The same variational loop over the source; the start is k-means|| seeds with every
        row given to its nearest seed (whatever ``init_params``), and the default priors
        come from two passes (mean, then covariance about it).
        """
        from latentmix.em._fit_source import _scan_chunk, as_source

        data = as_source(X, sample_weight)
        scan = data.reduce(_scan_chunk, width=1)
        if scan.n_inf or scan.n_nan:
            raise ValueError(
                f"Input X contains {scan.n_inf} infinite and {scan.n_nan} NaN entries: the "
                "variational mixture needs finite values; drop or impute those rows first."
            )
        if scan.n_observed < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components, but got {scan.n_observed} rows with "
                f"positive weight and n_components={self.n_components}."
            )
        rough_mean, _ = _data_mean_cov(data, np.zeros(data.n_features))
        priors, data_mean = self._priors(data, rough_mean)
        family = _VBFamily(self, priors, data.n_features, data_mean, None)
        warm = self.warm_start and hasattr(self, "converged_")
        result = run_em(family, data, **self._em_options(self._vb_params() if warm else None))
        self._set_fit_result(result, priors, data)
        self.n_features_in_ = data.n_features
        return self

    def _set_fit_result(self, result: EMResult[Any], priors: VBPriors, data: DataSource) -> None:
        self._set_priors(priors)
        self._set_em_result(result)
        self.n_samples_seen_ = data.total_weight()
        self.n_batch_iter_ = 0
        self._svi_moments: Moments | None = None

    def partial_fit(
        self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None
    ) -> BayesianGaussianMixture:
        """Update the factors from one batch (stochastic variational inference).

        See the class Notes for the step-size schedule and the scaling by
        ``total_samples``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One batch of rows (the first batch needs at least ``n_components`` rows and is
            fitted to convergence).
        y : Ignored
            Present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the batch's rows.

        Returns
        -------
        self : BayesianGaussianMixture
            The updated model.
        """
        validate_params(self, self._parameter_constraints)
        if not hasattr(self, "n_batch_iter_"):
            # The first batch: a full variational fit on it gives the stream its start.
            self._fit(X, sample_weight=sample_weight)
            self.n_samples_seen_ = 0.0
        Xv = np.asarray(
            validate_data(self, X, reset=False, dtype=FLOAT_DTYPES, ensure_all_finite=False)
        )
        check_finite(Xv)
        w = check_sample_weight(sample_weight, Xv.shape[0])
        data = ArrayData(Xv, w)
        batch_weight = data.total_weight()
        params = self._vb_params()
        family = _VBFamily(self, self._get_priors(), Xv.shape[1], self.mean_prior_)
        self.n_samples_seen_ = float(self.n_samples_seen_ + batch_weight)
        total = self.n_samples_seen_ if self.total_samples is None else float(self.total_samples)
        stats = data.reduce(
            lambda Xc, wc: family.estep_stats(Xc, wc, params), width=family.chunk_width
        )
        batch = moments_from_stats(stats.gaussian).scaled(total / batch_weight)
        running = getattr(self, "_svi_moments", None)
        if running is None:
            running = batch
        else:
            rho = float((self.n_batch_iter_ + self.learning_offset) ** -self.learning_decay)
            running = running.blend(batch, rho)
        self._set_params(family.update(running))
        self._svi_moments = running
        self.n_batch_iter_ += 1
        return self

    # -- parameters <-> attributes -----------------------------------------------------------
    def _set_priors(self, priors: VBPriors) -> None:
        self.weight_concentration_prior_ = priors.weight_concentration
        self.mean_precision_prior_ = priors.mean_precision
        self.mean_prior_ = priors.mean
        self.degrees_of_freedom_prior_ = priors.degrees_of_freedom
        cov = priors.covariance
        self.covariance_prior_ = float(cov) if cov.ndim == 0 else cov

    def _get_priors(self) -> VBPriors:
        return VBPriors(
            self.weight_concentration_prior_type,
            float(self.weight_concentration_prior_),
            float(self.mean_precision_prior_),
            np.asarray(self.mean_prior_, dtype=np.float64),
            float(self.degrees_of_freedom_prior_),
            np.asarray(self.covariance_prior_, dtype=np.float64),
        )

    def _set_params(self, params: VBParams) -> None:
        wc = params.weight_concentration
        if params.weight_concentration_prior_type == "dirichlet_process":
            self.weight_concentration_: Any = (wc[0].copy(), wc[1].copy())
        else:
            self.weight_concentration_ = wc
        self.mean_precision_ = params.mean_precision
        self.means_ = params.means
        nu = params.degrees_of_freedom
        self.degrees_of_freedom_: Any = float(nu) if nu.ndim == 0 else nu
        self._set_covariance_attributes(params)
        self.weights_ = params.weights()

    def _vb_params(self) -> VBParams:
        wc = self.weight_concentration_
        return VBParams(
            self.covariance_type,
            self.weight_concentration_prior_type,
            np.asarray(np.stack(wc) if isinstance(wc, tuple) else wc, dtype=np.float64),
            np.asarray(self.mean_precision_, dtype=np.float64),
            np.asarray(self.means_, dtype=np.float64),
            np.asarray(self.degrees_of_freedom_, dtype=np.float64),
            np.asarray(self.covariances_, dtype=np.float64),
            np.asarray(self.precisions_cholesky_, dtype=np.float64),
        )

    # -- prediction ----------------------------------------------------------------------------
    @property
    def _kernel_type(self) -> str:
        return str(self.covariance_type)

    def _check_predict_X(self, X: ArrayLike) -> tuple[NDArray[np.floating[Any]], bool]:
        return check_X_predict(self, X), False  # NaN is an error here, never missing

    def _estimate_log_resp(
        self, X: NDArray[Any], want_resp: bool, *, missing: bool
    ) -> tuple[NDArray[Any] | None, NDArray[Any]]:
        return score_rows(X, self._vb_params(), want_resp=want_resp)

    def score_samples(self, X: ArrayLike) -> NDArray[Any]:
        """log Σ_k exp(E_q[log π_k + log p(x | k)]) of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        return self._score_samples(X)

    def score(self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None) -> float:
        """Average of ``score_samples`` (weighted by ``sample_weight`` when given)."""
        return self._score(X, sample_weight)

    def predict_proba(self, X: ArrayLike) -> NDArray[Any]:
        """Variational responsibilities q(k | x) of each component; rows sum to one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        """
        return self._predict_proba(X)

    def predict(self, X: ArrayLike) -> NDArray[np.intp]:
        """Most responsible component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self._predict(X)

    def sample(
        self, n_samples: int = 1, random_state: int | np.random.RandomState | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
        """Draw rows from the Gaussians with ``weights_``, ``means_`` and ``covariances_``.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState or None, default=None
            Generator for this draw; falls back to the estimator's ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component each row was drawn from.
        """
        return self._sample(n_samples, random_state)
