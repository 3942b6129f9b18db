"""Gaussian mixture models fitted by Expectation-Maximization."""

from __future__ import annotations

import logging
import warnings
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_is_fitted, validate_data

from latentmix._exceptions import CollapseWarning
from latentmix._param_validation import (
    ArrayLike as ArrayLikeC,
)
from latentmix._param_validation import (
    Boolean,
    Constraint,
    Interval,
    NoneOr,
    Options,
    RandomStateLike,
    validate_params,
)
from latentmix._validation import (
    FLOAT_DTYPES,
    check_finite,
    check_magnitude,
    check_n_rows,
    check_random_state,
    check_sample_weight,
    weighted_total,
)
from latentmix.em._data import ArrayData, DataSource, chunk_rows
from latentmix.em._fit_source import is_out_of_core
from latentmix.em._loop import EMFamily, EMResult, FitInterrupted, run_em
from latentmix.gaussian._kernels import chunk_width as _chunk_width
from latentmix.gaussian._kernels import estep_stats, predict_rows, score_rows
from latentmix.gaussian._missing import (
    check_missing,
    estep_stats_missing,
    impute_rows,
    sample_conditional_rows,
    score_rows_missing,
)
from latentmix.gaussian._mstep import mstep, parsimonious_mstep, stats_from_resp
from latentmix.gaussian._params import (
    COVARIANCE_TYPES,
    GaussianParams,
    IllConditionedError,
    covariances_from_precisions,
    precisions_cholesky_from_covariances,
    precisions_cholesky_from_precisions,
)
from latentmix.gaussian._parsimonious import (
    MODELS,
    ParsimoniousState,
    canonical_model,
    is_constrained,
    kernel_covariance_type,
)
from latentmix.gaussian._parsimonious import n_parameters as mclust_n_parameters
from latentmix.gaussian._prior import (
    ConjugatePrior,
    log_prior,
    make_prior,
    prior_covariance_type,
)
from latentmix.gaussian._stats import GaussianStats
from latentmix.mixture._base import _BaseGaussianMixture

__all__ = ["GaussianMixture"]

logger = logging.getLogger("latentmix")

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
FIXABLE = ("weights", "means", "covariances")


class _PriorSpec(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value == "default" or isinstance(value, dict)

    def describe(self) -> str:
        return "'default' or a dict of prior hyperparameters"


class _GaussianFamily(EMFamily[GaussianParams, GaussianStats]):
    """The Gaussian family's steps for the EM loop, configured by a GaussianMixture."""

    def __init__(
        self,
        est: GaussianMixture,
        n_features: int,
        *,
        prior: ConjugatePrior | None = None,
        missing: bool = False,
    ) -> None:
        self.est = est
        self.prior = prior
        self.missing = missing
        self.fixed = est._fixed_values()
        self.n_components = int(est.n_components)
        # The storage and kernels: the four names (and VVV/EEE/VVI/VII) their own, the
        # other mclust models "full", with a constrained M-step (``self.model``).
        self.covariance_type = kernel_covariance_type(str(est.covariance_type))
        self.model: str | None = None
        if is_constrained(str(est.covariance_type)):
            self.model = canonical_model(str(est.covariance_type), n_features)
        # The last constrained M-step's state: the next one's warm start.
        self._mstate: ParsimoniousState | NDArray[Any] | None = None
        self.reg_covar = float(est.reg_covar)
        self.n_features = n_features
        self.chunk_width = _chunk_width(self.n_components, n_features, self.covariance_type)
        self.n_reseeded = 0
        self._run_reseeded = 0

    # -- initialisation ------------------------------------------------------------------
    def initialize(self, data: DataSource, random_state: np.random.RandomState) -> GaussianParams:
        est = self.est
        self._run_reseeded = 0
        self._mstate = None
        given = (est.weights_init, est.means_init, est.precisions_init)
        if all(v is not None for v in given):
            params = self._from_user(None)
        else:
            if not isinstance(data, ArrayData):
                # Dask, files, chunk factories: starts made of passes over the source.
                from latentmix.em._init_scalable import initialize_gaussian

                return initialize_gaussian(self, data, random_state)  # type: ignore[no-any-return]
            if self.missing:
                # Starts need complete rows; column means are good enough for a start.
                X = data.X
                filled = np.where(np.isnan(X), np.nanmean(X, axis=0).astype(X.dtype), X)
                data = ArrayData(filled, data.sample_weight)
            params = self._from_user(self._from_responsibilities(data, random_state))
        return params

    def _from_responsibilities(
        self, data: ArrayData, random_state: np.random.RandomState
    ) -> GaussianParams:
        X, w = data.X, data.sample_weight
        n, k = X.shape[0], self.n_components
        ct = self.covariance_type
        method = self.est.init_params
        shift = np.asarray(X[0], dtype=np.float64)
        zeros = np.zeros((k, X.shape[1]))
        if method in ("k-means++", "random_from_data"):
            if method == "k-means++":
                from latentmix.cluster import kmeans_plusplus

                _, indices = kmeans_plusplus(X, k, random_state=random_state, sample_weight=w)
            else:
                indices = random_state.choice(n, size=k, replace=False)
            # One point per component, weighted equally, as scikit-learn does.
            rows = X[np.asarray(indices)]
            eye = np.eye(k, dtype=X.dtype)
            stats = stats_from_resp(rows, eye, None, shift, zeros, ct)
            means = shift + stats.s1 / (stats.nk[:, None] + 10 * np.finfo(float).eps)
            stats = stats_from_resp(rows, eye, None, shift, means - shift, ct)
        else:
            if method == "kmeans":
                from latentmix.cluster import KMeans

                labels = (
                    KMeans(n_clusters=k, n_init=1, random_state=random_state)
                    .fit(X, sample_weight=w)
                    .labels_
                )

                def resp_fn(start: int, stop: int, _state: Any) -> NDArray[Any]:
                    r = np.zeros((stop - start, k), dtype=np.float64)
                    r[np.arange(stop - start), labels[start:stop]] = 1.0
                    return r

                state: Any = None
            else:  # random
                state = random_state.get_state()

                def resp_fn(start: int, stop: int, _state: Any) -> NDArray[Any]:
                    r = _state.uniform(size=(stop - start, k))
                    r /= r.sum(axis=1)[:, None]
                    return np.asarray(r)

            def resp_pass(centers: NDArray[np.float64]) -> GaussianStats:
                rng = None
                if state is not None:
                    rng = np.random.RandomState()
                    rng.set_state(state)
                step = chunk_rows(self.chunk_width, n)
                total: GaussianStats | None = None
                for start in range(0, n, step):
                    stop = min(start + step, n)
                    wc = None if w is None else w[start:stop]
                    part = stats_from_resp(
                        X[start:stop], resp_fn(start, stop, rng), wc, shift, centers, ct
                    )
                    total = part if total is None else total + part
                assert total is not None
                return total

            stats = resp_pass(zeros)
            if ct == "full":
                # Second pass about the initial means, so covariances do not cancel.
                means = shift + stats.s1 / (stats.nk[:, None] + 10 * np.finfo(float).eps)
                stats = resp_pass(means - shift)
            if method == "random":
                # Advance the caller's generator exactly as one draw of the whole matrix would.
                random_state.uniform(size=(n, k))
        params, bad = self.initial_mstep(stats)
        if bad:
            raise IllConditionedError(bad)
        return params

    def _from_user(self, base: GaussianParams | None) -> GaussianParams:
        est, ct = self.est, self.covariance_type
        if est.weights_init is None or est.means_init is None or est.precisions_init is None:
            assert base is not None, "initial responsibilities are needed"
        weights = base.weights if est.weights_init is None else np.asarray(est.weights_init, float)  # type: ignore[union-attr]
        means = base.means if est.means_init is None else np.asarray(est.means_init, float)  # type: ignore[union-attr]
        if est.precisions_init is None:
            assert base is not None
            covariances, prec_chol = base.covariances, base.precisions_cholesky
        else:
            prec = np.asarray(est.precisions_init, float)
            prec_chol = precisions_cholesky_from_precisions(prec, ct)
            covariances = covariances_from_precisions(prec, ct)
        return GaussianParams(ct, weights.copy(), means.copy(), covariances, prec_chol)

    # -- the EM steps ----------------------------------------------------------------------
    def estep_stats(
        self, X: NDArray[Any], w: NDArray[np.float64] | None, params: GaussianParams
    ) -> GaussianStats:
        if self.missing:
            return estep_stats_missing(X, w, params)
        return estep_stats(X, w, params)

    def initial_mstep(self, stats: GaussianStats) -> tuple[GaussianParams, list[int]]:
        """The M-step of a start (no prior, nothing fixed), under the model's constraint."""
        if self.model is None:
            return mstep(stats, self.reg_covar)
        params, bad, self._mstate = parsimonious_mstep(stats, self.model, self.reg_covar)
        return params, bad

    def mstep(self, stats: GaussianStats, params: GaussianParams) -> GaussianParams:
        fixed = self.fixed
        if self.model is not None:
            # Warm start: the previous M-step's state, else the current covariances (a
            # warm-started fit or partial_fit), so the constrained fit never loses ground.
            previous = self._mstate
            if previous is None:
                previous = params.covariances
            new, bad, self._mstate = parsimonious_mstep(
                stats,
                self.model,
                self.reg_covar,
                previous=previous,
                prior=self.prior,
                fixed_weights=fixed.get("weights"),
                fixed_means=fixed.get("means"),
                fixed_covariances=fixed.get("covariances"),
            )
        else:
            new, bad = mstep(
                stats,
                self.reg_covar,
                prior=self.prior,
                fixed_weights=fixed.get("weights"),
                fixed_means=fixed.get("means"),
                fixed_covariances=fixed.get("covariances"),
            )
        if bad:
            new = self._reseed(new, bad, stats)
            if fixed:
                # Re-seeding moves only what is free to move.
                new = GaussianParams(
                    new.covariance_type,
                    fixed.get("weights", new.weights),
                    fixed.get("means", new.means),
                    new.covariances,
                    new.precisions_cholesky,
                )
        return new

    def lower_bound(self, stats: GaussianStats, params: GaussianParams) -> float:
        if self.prior is None:
            return stats.log_likelihood / stats.weight
        return (stats.log_likelihood + log_prior(self.prior, params)) / stats.weight

    # -- recovery from collapse -----------------------------------------------------------
    def _reseed(
        self, params: GaussianParams, bad: list[int], stats: GaussianStats
    ) -> GaussianParams:
        """Restart collapsed components at the rows the model explains worst.

        A re-seeded component takes one of the worst-explained rows as its mean, the
        weighted average covariance of the healthy components, and weight 1/K (then all
        weights are renormalised). It may lower the log-likelihood of that iteration.
        More than K re-seedings in one run mean the data itself lets components shrink
        onto points (isolated or duplicated rows with no regularisation): then it raises.
        """
        ct = self.covariance_type
        k = self.n_components
        if self._run_reseeded + len(bad) > k:
            raise ValueError(
                f"Mixture components kept collapsing: {self._run_reseeded + len(bad)} "
                f"re-seedings in one run, more than n_components={k}. The data has isolated "
                "or duplicated points that a component can shrink onto: increase reg_covar "
                "(for instance to 1e-6 times the data's variance) or use fewer components."
            )
        self._run_reseeded += len(bad)
        good = [j for j in range(k) if j not in bad]
        if ct == "tied" or not good or stats.worst_rows.shape[0] < len(bad):
            raise IllConditionedError(bad)
        weights = params.weights.copy()
        means = params.means.copy()
        cov = params.covariances.copy()
        prec_chol = params.precisions_cholesky.copy()
        wg = weights[good] / weights[good].sum()
        pooled = np.tensordot(wg, cov[good], axes=1)
        pooled_chol, failed = precisions_cholesky_from_covariances(
            pooled[None] if ct == "full" else pooled[None, ...], ct
        )
        if failed:
            raise IllConditionedError(bad)
        for i, j in enumerate(bad):
            means[j] = stats.worst_rows[i]
            cov[j] = pooled
            prec_chol[j] = pooled_chol[0]
            weights[j] = 1.0 / k
        weights /= weights.sum()
        self.n_reseeded += len(bad)
        warnings.warn(
            f"{len(bad)} mixture component(s) {bad} collapsed (no weight, or a covariance "
            "that is not positive definite) and were re-seeded at the worst-explained rows. "
            "If this repeats, use fewer components or a larger reg_covar.",
            CollapseWarning,
            stacklevel=6,
        )
        return GaussianParams(ct, weights, means, cov, prec_chol)


class GaussianMixture(_BaseGaussianMixture):
    """Gaussian mixture model fitted by Expectation-Maximization.

    The parameters and attributes have scikit-learn's names and meaning. Besides, it takes
    ``sample_weight`` everywhere (a weight of 2 equals duplicating the row), keeps float32
    input in float32 on the hot path while accumulating statistics in float64 about a
    shifted origin, never holds the responsibilities of all rows at once during ``fit``,
    and re-seeds a component that collapses instead of failing.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : str, default="full"
        ``full``: each component has its own covariance matrix; ``tied``: one shared
        matrix; ``diag``: each its own diagonal matrix; ``spherical``: each its own single
        variance. Or one of mclust's fourteen parsimonious models ``EII``, ``VII``,
        ``EEI``, ``VEI``, ``EVI``, ``VVI``, ``EEE``, ``VEE``, ``EVE``, ``VVE``, ``EEV``,
        ``VEV``, ``EVV``, ``VVV`` (volume, shape and orientation Equal, Variable or the
        Identity; see :mod:`latentmix.gaussian._parsimonious`), and for one-dimensional
        data ``E`` and ``V`` (equal or variable variance). ``VVV``, ``EEE``, ``VVI`` and
        ``VII`` are ``full``, ``tied``, ``diag`` and ``spherical`` (identical results and
        attribute shapes); the other models store ``covariances_`` and
        ``precisions_cholesky_`` as (n_components, n_features, n_features) arrays, and
        their M-step maximises the expected complete-data log-likelihood under the
        model's constraint (warm-started from the previous iteration). ``bic``, ``aic``
        and ``icl`` count free parameters as mclust does. ``prior`` works with the ten
        models mclust defines a prior for (all but VEE, EVE, VVE and EVV).
    tol : float, default=1e-3
        Convergence threshold: EM stops when the per-sample (per unit weight) average
        log-likelihood improves by less than ``tol``.
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of covariances.
    max_iter : int, default=100
        Number of EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the best result is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        How the initial responsibilities are chosen.
    weights_init : array-like of shape (n_components,), default=None
        User-provided initial weights.
    means_init : array-like of shape (n_components, n_features), default=None
        User-provided initial means.
    precisions_init : array-like, default=None
        User-provided initial precisions (inverse covariances); shape as ``precisions_``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation (and ``sample`` when it is given no generator).
    warm_start : bool, default=False
        If True, ``fit`` starts from the previous solution and ``n_init`` is ignored.
    verbose : int, default=0
        Log progress (logger ``"latentmix"``) when positive.
    verbose_interval : int, default=10
        Iterations between progress messages.
    fixed : sequence of {"weights", "means", "covariances"}, default=None
        Parameters kept at their initial values while EM fits the others: ``"weights"``
        keeps ``weights_init``, ``"means"`` keeps ``means_init`` (for instance known
        cluster centres), ``"covariances"`` keeps the inverse of ``precisions_init``; each
        needs its ``*_init``. The other parameters maximise the likelihood (or posterior)
        given the fixed ones, so the objective still never decreases. Fixed parameters do
        not count in ``bic``/``aic``.
    prior : None, "default" or dict, default=None
        Conjugate prior for MAP EM (Fraley and Raftery 2007, mclust's ``priorControl``):
        means ~ N(mean, Σ/shrinkage), covariances ~ inverse-Wishart(dof, scale) (inverse
        gamma for ``diag`` and ``spherical``), flat on the weights. ``"default"`` uses
        mclust's defaults: ``shrinkage=0.01``, ``mean`` the data mean, ``dof =
        n_features + 2``, ``scale = var(X) / n_components^(2/n_features)`` (the
        covariance matrix for full and tied, the per-feature variances for diag, their
        mean for spherical). A dict overrides any of these four keys. Small or empty
        components then get finite fits; ``reg_covar`` is not added (the prior
        regularises); ``lower_bound_`` is the log-posterior per unit weight, and
        ``bic``/``aic``/``icl`` use the log-likelihood at the MAP estimate, as mclust
        does. None (the default) is plain maximum-likelihood EM.

    online_alpha : float in (0.5, 1], default=0.6
        Step-size exponent of ``partial_fit`` (stepwise EM): batch t is blended in with
        weight ``(t + 2) ** -online_alpha``. Values near 0.5 adapt fast, 1 averages all
        batches equally.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Mixing weights.
    means_ : ndarray of shape (n_components, n_features)
        Component means.
    covariances_ : ndarray
        Component covariances; shape depends on ``covariance_type``.
    precisions_ : ndarray
        Inverse covariances, same shape as ``covariances_``.
    precisions_cholesky_ : ndarray
        Cholesky factors of the precisions (upper triangular when computed by EM).
    converged_ : bool
        Whether the best initialisation converged.
    interrupted_ : bool
        Whether ``fit`` was stopped by a KeyboardInterrupt (see Notes).
    n_iter_ : int
        EM iterations of the best initialisation.
    lower_bound_ : float
        Average log-likelihood (per unit sample weight) at the last iteration of the best
        initialisation, as scikit-learn records it.
    lower_bounds_ : list of float
        The whole trace of ``lower_bound_`` for the best initialisation.
    n_reseeded_ : int
        Number of component re-seedings after a collapse, over all initialisations.
    prior_ : dict or None
        The prior's hyperparameters as used (``shrinkage``, ``mean``, ``dof``, ``scale``),
        or None without a prior.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen during ``fit``, when X had string column names.

    Notes
    -----
    Fitted parameters are float64 whatever the input dtype; the outputs of
    ``predict_proba``, ``score_samples`` and ``sample`` follow the input dtype (float32
    stays float32).

    Missing values: NaN marks a missing entry in ``fit``, ``predict``, ``predict_proba``,
    ``score_samples``, ``score``, ``bic``, ``aic`` and ``icl``, for every covariance
    type. Missing entries are treated as latent, missing at random (Ghahramani and
    Jordan, 1994): the E-step uses each row's marginal over its observed features and the
    M-step the conditional expectations of the missing entries and their outer products.
    ``score_samples`` is then the log-density of the observed entries. A row with no
    observed value contributes nothing to the fit, has ``score_samples`` 0 and gets the
    mixing weights from ``predict_proba``. A column with no observed value is an error.
    :meth:`impute` fills in conditional means; :meth:`sample_conditional` draws the
    missing entries for multiple imputation.

    Degenerate data: fewer distinct rows (with positive weight) than ``n_components``
    raises a ValueError; a covariance that cannot be made positive definite for any
    component (for instance identical points with ``reg_covar=0``) raises a ValueError
    that says to increase ``reg_covar``.

    Interrupting ``fit`` (Ctrl-C, KeyboardInterrupt): the estimator keeps the best
    parameters seen so far, from the current initialisation or an earlier one, sets
    ``converged_ = False`` and ``interrupted_ = True``, then re-raises the
    KeyboardInterrupt so that a script still stops. To keep the model, catch it::

        try:
            gm.fit(X)
        except KeyboardInterrupt:
            pass  # gm.interrupted_ is True: gm holds the best state so far

    An interrupt before the first initialisation is complete leaves the estimator as it
    was. A fit that ends normally has ``interrupted_ = False``.

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(gm.means_[:, 0]), 3)
    array([ 1., 10.])
    >>> gm.predict([[0, 0], [12, 3]]).tolist() == [gm.predict([[1, 2]])[0], gm.predict([[10, 2]])[0]]
    True
    """

    _em_name = "GaussianMixture"

    n_reseeded_: int

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_components": [Interval(int, 1, None)],
        "covariance_type": [Options(COVARIANCE_TYPES + MODELS)],
        "tol": [Interval(float, 0.0, None)],
        "reg_covar": [Interval(float, 0.0, None)],
        "max_iter": [Interval(int, 0, None)],
        "n_init": [Interval(int, 1, None)],
        "init_params": [Options(INIT_PARAMS)],
        "weights_init": [NoneOr(ArrayLikeC)],
        "means_init": [NoneOr(ArrayLikeC)],
        "precisions_init": [NoneOr(ArrayLikeC)],
        "random_state": [RandomStateLike],
        "warm_start": [Boolean],
        "verbose": [Interval(int, 0, None)],
        "verbose_interval": [Interval(int, 1, None)],
        "fixed": [NoneOr(ArrayLikeC)],
        "prior": [NoneOr(_PriorSpec())],
        "online_alpha": [Interval(float, 0.5, 1.0, closed="right")],
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
        weights_init: ArrayLike | None = None,
        means_init: ArrayLike | None = None,
        precisions_init: ArrayLike | None = None,
        random_state: int | np.random.RandomState | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        fixed: tuple[str, ...] | list[str] | None = None,
        prior: str | dict[str, Any] | None = None,
        online_alpha: float = 0.6,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.fixed = fixed
        self.prior = prior
        self.online_alpha = online_alpha

    # -- fitting ----------------------------------------------------------------------------
    def fit(
        self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None
    ) -> GaussianMixture:
        """Estimate the parameters with EM.

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
        self : GaussianMixture
            The fitted model.
        """
        validate_params(self, self._parameter_constraints)
        self.__dict__.pop("_stepwise", None)  # fit starts a new stream for partial_fit
        if is_out_of_core(X):
            from latentmix.em._fit_source import as_source, fit_gaussian_mixture_on

            return fit_gaussian_mixture_on(self, as_source(X, sample_weight))  # type: ignore[no-any-return]
        Xv, missing = self._check_X(X, reset=True)
        if missing:
            check_missing(Xv)
        observed = ~np.isnan(Xv).all(axis=1) if missing else None
        check_n_rows(Xv if observed is None else Xv[observed], self.n_components)
        w = check_sample_weight(sample_weight, Xv.shape[0])
        if missing and w is not None:
            # Rows of weight zero observe nothing either.
            check_missing(Xv[w > 0])
        self._check_model(Xv.shape[1])
        self._check_initial_parameters(Xv.shape[1])
        self._check_fixed()
        self._check_distinct_rows(Xv, w, observed)
        prior = None
        if self.prior is not None:
            prior = make_prior(self.prior, Xv, w, self.n_components, str(self.covariance_type))
        data = ArrayData(Xv, w)
        family = _GaussianFamily(self, Xv.shape[1], prior=prior, missing=missing)
        warm = self.warm_start and hasattr(self, "converged_")
        try:
            result = run_em(family, data, **self._em_options(self._params() if warm else None))
        except FitInterrupted as exc:
            # Keep the best parameters so far, then let the interrupt stop the caller.
            self._set_fit_result(exc.result, family, prior, warm)
            raise
        self._set_fit_result(result, family, prior, warm)
        return self

    def _set_fit_result(
        self,
        result: EMResult[GaussianParams],
        family: _GaussianFamily,
        prior: ConjugatePrior | None,
        warm: bool,
    ) -> None:
        self._set_em_result(result)
        self.n_reseeded_ = int(family.n_reseeded + (self.n_reseeded_ if warm else 0))
        self.prior_: dict[str, Any] | None = None
        if prior is not None:
            self.prior_ = {
                "shrinkage": prior.shrinkage,
                "mean": prior.mean,
                "dof": prior.dof,
                "scale": prior.scale,
            }

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are fitted by EM
        return tags

    def _check_X(self, X: ArrayLike, *, reset: bool) -> tuple[NDArray[np.floating[Any]], bool]:
        """2-D, float32/float64, no infinity; NaN marks a missing entry.

        Returns the validated X and whether it holds NaN: found by the finiteness check's
        single pass, and passed down so that no later step scans X for it again.
        """
        if not reset:
            check_is_fitted(self)
        Xv = validate_data(
            self,
            X,
            reset=reset,
            dtype=FLOAT_DTYPES,
            ensure_2d=True,
            ensure_all_finite=False,
            ensure_min_samples=1,
        )
        missing = check_finite(Xv, allow_nan=True)
        return check_magnitude(np.asarray(Xv)), missing

    def _check_fixed(self) -> None:
        if self.fixed is None:
            return
        names = [self.fixed] if isinstance(self.fixed, str) else list(self.fixed)
        unknown = [n for n in names if n not in FIXABLE]
        if unknown:
            raise ValueError(
                f"fixed must name parameters among {FIXABLE}, got {unknown!r}: for instance "
                "fixed=('means',) with means_init=known_centres."
            )
        needs = {"weights": "weights_init", "means": "means_init", "covariances": "precisions_init"}
        for name in names:
            if getattr(self, needs[name]) is None:
                raise ValueError(
                    f"fixed={tuple(names)!r} keeps the {name} at {needs[name]}, but "
                    f"{needs[name]} is None: pass the values to keep as {needs[name]}."
                )

    @property
    def _kernel_type(self) -> str:
        """How the covariances are stored: full, tied, diag or spherical (see fit)."""
        return kernel_covariance_type(str(self.covariance_type))

    def _check_model(self, n_features: int) -> None:
        """The covariance model fits ``n_features`` and the options it supports."""
        ct = str(self.covariance_type)
        canonical_model(ct, n_features)  # E and V need one feature
        if self.prior is not None and is_constrained(ct):
            # VEE, EVE, VVE, EVV (and E, V): mclust defines no prior for them either.
            prior_covariance_type(canonical_model(ct, n_features))

    def _fixed_values(self) -> dict[str, NDArray[np.float64]]:
        """The fixed parameters, as float64 arrays (``covariances`` from precisions_init)."""
        if self.fixed is None:
            return {}
        names = [self.fixed] if isinstance(self.fixed, str) else list(self.fixed)
        out: dict[str, NDArray[np.float64]] = {}
        if "weights" in names:
            out["weights"] = np.asarray(self.weights_init, dtype=np.float64).copy()
        if "means" in names:
            out["means"] = np.asarray(self.means_init, dtype=np.float64).copy()
        if "covariances" in names:
            prec = np.asarray(self.precisions_init, dtype=np.float64)
            out["covariances"] = covariances_from_precisions(prec, self._kernel_type)
        return out

    def partial_fit(
        self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None
    ) -> GaussianMixture:
        """One step of online (stepwise) EM on a batch of rows, for streams.

        Stepwise EM (Cappé and Moulines, 2009): the batch's statistics are blended into
        running statistics with step size ``(t + 2) ** -online_alpha`` for batch t, then
        the M-step runs on them. The first call initialises from ``*_init`` when all are
        given, else by ``init_params`` on the first batch. ``fit`` starts a new stream.
        Sample weights, missing values and ``fixed`` work as in ``fit``; ``prior`` does
        not. The running statistics are not saved in model files: after ``load``,
        ``partial_fit`` starts a new stream.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One batch of the stream.
        y : Ignored
            Present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the batch's rows.

        Returns
        -------
        self : GaussianMixture
            The updated model (``n_steps_`` counts the batches seen).
        """
        from latentmix.em._online import partial_fit_gaussian_mixture

        validate_params(self, self._parameter_constraints)
        return partial_fit_gaussian_mixture(self, X, sample_weight, alpha=self.online_alpha)  # type: ignore[no-any-return]

    def _check_distinct_rows(
        self,
        X: NDArray[Any],
        w: NDArray[np.float64] | None,
        observed: NDArray[np.bool_] | None,
    ) -> None:
        """Raise unless X has n_components distinct rows of positive weight.

        ``observed`` marks the rows with an observed entry; it is None when X has no NaN.
        """
        if self.n_components == 1:
            return
        # Distinct rows have distinct projections on a random direction (almost surely),
        # and equal rows equal ones: a sort of n numbers instead of n rows.
        direction = np.random.default_rng(0).standard_normal(X.shape[1])
        if observed is not None:
            # Entirely missing rows are no points; a missing entry differs from any value.
            rows = X[observed if w is None else observed & (w > 0)]
            rows = np.where(np.isnan(rows), np.nanmax(np.abs(rows), axis=0) * 3 + 1, rows)
            proj = rows.astype(np.float64) @ direction
        else:
            # Project chunk by chunk: no copy of X (the memory bound of a fit is N numbers).
            proj = np.empty(X.shape[0])
            step = 1 << 16
            for start in range(0, X.shape[0], step):
                chunk = X[start : start + step].astype(np.float64, copy=False)
                proj[start : start + step] = chunk @ direction
            if w is not None:
                proj = proj[w > 0]
        n_distinct = int(np.unique(proj).size)
        if n_distinct < self.n_components:
            raise ValueError(
                f"X has only {n_distinct} distinct rows (with positive weight), fewer than "
                f"n_components={self.n_components}: a mixture cannot place more components "
                f"than there are distinct points. Use n_components <= {n_distinct}."
            )

    def _check_initial_parameters(self, n_features: int) -> None:
        k, d, ct = self.n_components, n_features, self._kernel_type
        if self.weights_init is not None:
            wi = np.asarray(self.weights_init, dtype=float)
            if wi.shape != (k,):
                raise ValueError(
                    f"weights_init should have the shape ({k},), but got {wi.shape}: one "
                    "weight per component."
                )
            if np.any(wi < 0) or np.any(wi > 1) or not np.all(np.isfinite(wi)):
                raise ValueError("weights_init should be in the range [0, 1].")
            if not np.isclose(wi.sum(), 1.0, rtol=0, atol=1e-6):
                raise ValueError(
                    f"weights_init should be normalized: they sum to {wi.sum():.6g}, not 1. "
                    "Divide them by their sum."
                )
        if self.means_init is not None:
            mi = np.asarray(self.means_init, dtype=float)
            if mi.shape != (k, d):
                raise ValueError(
                    f"means_init should have the shape ({k}, {d}) (n_components, "
                    f"n_features), but got {mi.shape}."
                )
            if not np.all(np.isfinite(mi)):
                raise ValueError("means_init contains NaN or infinity.")
        if self.precisions_init is not None:
            pi = np.asarray(self.precisions_init, dtype=float)
            shape = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[ct]
            if pi.shape != shape:
                raise ValueError(
                    f"precisions_init for covariance_type={ct!r} should have the shape "
                    f"{shape}, but got {pi.shape}."
                )
            mats = pi if ct == "full" else (pi[None] if ct == "tied" else None)
            if mats is not None:
                for m in mats:
                    if not np.allclose(m, m.T) or np.any(np.linalg.eigvalsh(m) <= 0):
                        raise ValueError(
                            f"precisions_init for covariance_type={ct!r} must be symmetric, "
                            "positive-definite matrices."
                        )
            elif np.any(pi <= 0) or not np.all(np.isfinite(pi)):
                raise ValueError(
                    f"precisions_init for covariance_type={ct!r} must be positive numbers."
                )

    # -- parameters <-> attributes -----------------------------------------------------------
    def _set_params(self, params: GaussianParams) -> None:
        self.weights_ = params.weights
        self.means_ = params.means
        self._set_covariance_attributes(params)

    def _params(self) -> GaussianParams:
        return GaussianParams(
            self._kernel_type,
            np.asarray(self.weights_, dtype=np.float64),
            np.asarray(self.means_, dtype=np.float64),
            np.asarray(self.covariances_, dtype=np.float64),
            np.asarray(self.precisions_cholesky_, dtype=np.float64),
        )

    # -- prediction ----------------------------------------------------------------------------
    def _estimate_log_resp(
        self, X: NDArray[Any], want_resp: bool, *, missing: bool
    ) -> tuple[NDArray[Any] | None, NDArray[Any]]:
        if missing:
            log_resp, norm = score_rows_missing(X, self._params())
            return (log_resp.astype(X.dtype) if want_resp else None), norm.astype(X.dtype)
        return score_rows(X, self._params(), want_resp=want_resp)

    def _check_predict_X(self, X: ArrayLike) -> tuple[NDArray[np.floating[Any]], bool]:
        return self._check_X(X, reset=False)

    def _labels(self, X: NDArray[Any], missing: bool) -> NDArray[np.intp]:
        if missing:
            return super()._labels(X, missing)
        return predict_rows(X, self._params())

    def score_samples(self, X: ArrayLike) -> NDArray[Any]:
        """Log-density log p(x) of each row under the mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        return self._score_samples(X)

    def score(self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None) -> float:
        """Average log-likelihood per row (weighted by ``sample_weight`` when given)."""
        return self._score(X, sample_weight)

    def predict_proba(self, X: ArrayLike) -> NDArray[Any]:
        """Responsibilities p(k | x) of each component for each row; rows sum to one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        """
        return self._predict_proba(X)

    def predict(self, X: ArrayLike) -> NDArray[np.intp]:
        """Most responsible component of each row."""
        return self._predict(X)

    def sample(
        self, n_samples: int = 1, random_state: int | np.random.RandomState | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
        """Draw rows from the fitted mixture.

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

    # -- information criteria ---------------------------------------------------------------
    def _n_parameters(self) -> int:
        k, d, ct = self.n_components, self.means_.shape[1], str(self.covariance_type)
        # mclust's counts (nMclustParams); equal to n_parameters for the four common types.
        total = mclust_n_parameters(ct, k, d)
        fixed = self._fixed_values()
        if "weights" in fixed:
            total -= k - 1
        if "means" in fixed:
            total -= k * d
        if "covariances" in fixed:
            total -= mclust_n_parameters(ct, k, d) - (k * d + k - 1)
        return total

    def _total_loglik(self, X: ArrayLike, sample_weight: ArrayLike | None) -> tuple[float, float]:
        Xv, missing = self._check_X(X, reset=False)
        lp = self._estimate_log_resp(Xv, want_resp=False, missing=missing)[1].astype(np.float64)
        w = check_sample_weight(sample_weight, lp.shape[0])
        # Rows with no observed entry carry no information: they do not count in n.
        seen = ~np.isnan(Xv).all(axis=1) if missing else np.ones(lp.shape[0], bool)
        total, _ = weighted_total(lp, w)
        return total, float(seen.sum() if w is None else w[seen].sum())

    def bic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Bayesian information criterion on X (lower is better): −2 log L + p log n.

        With ``sample_weight``, log L is the weighted log-likelihood and n = Σ w.
        """
        ll, n = self._total_loglik(X, sample_weight)
        return float(-2.0 * ll + self._n_parameters() * np.log(n))

    def aic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Akaike information criterion on X (lower is better): −2 log L + 2p."""
        ll, _ = self._total_loglik(X, sample_weight)
        return float(-2.0 * ll + 2.0 * self._n_parameters())

    def icl(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Integrated completed likelihood criterion on X (lower is better).

        ICL = BIC + 2·EN, where EN = −Σ_i w_i Σ_k r_ik log r_ik is the entropy of the
        responsibilities (McLachlan and Peel's ICL-BIC; Biernacki, Celeux and Govaert,
        2000). It adds to BIC a penalty for overlapping components, so it prefers
        well-separated clusters.

        Sign convention: like :meth:`bic`, lower is better. mclust reports
        ``2 log L − p log n − 2·EN'`` (higher is better), with EN' computed from the hard
        (MAP) classification, −Σ_i log r_i,MAP(i); the two agree when the
        responsibilities are close to 0 or 1.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        icl : float

        Examples
        --------
        >>> import numpy as np
        >>> from latentmix import GaussianMixture
        >>> X = np.r_[np.random.RandomState(0).randn(50, 1), np.random.RandomState(1).randn(50, 1) + 8]
        >>> gm = GaussianMixture(2, init_params="random_from_data", random_state=0).fit(X)
        >>> bool(gm.icl(X) >= gm.bic(X))
        True
        """
        Xv, missing = self._check_X(X, reset=False)
        log_resp = self._estimate_log_resp(Xv, want_resp=True, missing=missing)[0]
        assert log_resp is not None
        log_resp = log_resp.astype(np.float64)
        resp = np.exp(log_resp)
        row_entropy = -np.sum(np.where(resp > 0, resp * log_resp, 0.0), axis=1)
        w = check_sample_weight(sample_weight, Xv.shape[0])
        entropy = float(row_entropy.sum() if w is None else np.dot(w, row_entropy))
        # X, not the validated array: a model fitted on a frame checks its column names.
        return self.bic(X, sample_weight=w) + 2.0 * entropy

    def _objective(self, X: ArrayLike, sample_weight: ArrayLike | None) -> float:
        """What EM maximises, in total: the log-likelihood (plus the log-prior under MAP)."""
        total = self._total_loglik(X, sample_weight)[0]
        if self.prior_ is not None:
            prior = ConjugatePrior(prior_covariance_type(str(self.covariance_type)), **self.prior_)
            total += log_prior(prior, self._params())
        return total

    # -- missing values ------------------------------------------------------------------
    def impute(self, X: ArrayLike) -> NDArray[Any]:
        """Fill in missing entries (NaN) with their conditional means under the mixture.

        For a row with observed entries x_O, the imputed x_M is
        Σ_k p(k | x_O) E[x_M | x_O, k]; a row with no observed entry gets the mixture
        mean. Observed entries are returned unchanged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with NaN marking missing entries.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
            A copy of X without NaN, in X's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from latentmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], size=500)
        >>> gm = GaussianMixture(1).fit(X)
        >>> filled = gm.impute([[2.0, np.nan]])
        >>> bool(1.5 < filled[0, 1] < 2.0)
        True
        """
        Xv, _ = self._check_X(X, reset=False)
        return impute_rows(Xv, self._params())

    def sample_conditional(
        self,
        X: ArrayLike,
        n_samples: int = 1,
        random_state: int | np.random.RandomState | None = None,
    ) -> NDArray[Any]:
        """Draw the missing entries of X given its observed ones (multiple imputation).

        Each draw picks a component from the row's responsibilities p(k | x_O), then the
        missing entries from that component's conditional Gaussian p(x_M | x_O, k).

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
            Rows with NaN marking missing entries.
        n_samples : int, default=1
            Number of completed copies of X to draw.
        random_state : int, RandomState instance or None, default=None
            Generator for the draws; falls back to the estimator's ``random_state``.

        Returns
        -------
        X_completed : ndarray of shape (n_samples, n_rows, n_features)
            ``n_samples`` copies of X with the missing entries drawn.

        Examples
        --------
        >>> import numpy as np
        >>> from latentmix import GaussianMixture
        >>> X = np.random.RandomState(0).randn(200, 2)
        >>> gm = GaussianMixture(1).fit(X)
        >>> draws = gm.sample_conditional([[0.5, np.nan]], n_samples=3, random_state=0)
        >>> draws.shape, bool(np.all(draws[:, 0, 0] == 0.5))
        ((3, 1, 2), True)
        """
        Xv, _ = self._check_X(X, reset=False)
        if (
            not isinstance(n_samples, int | np.integer)
            or isinstance(n_samples, bool)
            or n_samples < 1
        ):
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        return sample_conditional_rows(Xv, self._params(), int(n_samples), rng)
