"""Mixtures of independent Bernoullis fitted by EM: the classic baseline for binary images.

p(x) = Σ_k π_k Π_d μ_kd^x_d (1 − μ_kd)^(1 − x_d). The family plugs into the shared EM loop
(:func:`latentmix.em.run_em`) through additive statistics Σ w·r, Σ w·r·x, Σ w·log p(x), Σ w,
so it runs over any :class:`latentmix.em.DataSource` exactly as the Gaussian family does.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, ClusterMixin, DensityMixin

from latentmix._param_validation import Constraint, Interval, RandomStateLike, validate_params
from latentmix._validation import (
    check_random_state,
    check_sample_weight,
    check_X_fit,
    check_X_predict,
)
from latentmix.em import ArrayData, DataSource, EMFamily, run_em

__all__ = ["BernoulliMixture", "BernoulliParams", "BernoulliStats"]

# Keeps log μ and log(1 − μ) finite when alpha = 0 lets a probability reach 0 or 1.
_EPS = 1e-10


@dataclass(frozen=True)
class BernoulliParams:
    weights: NDArray[np.float64]  # (n_components,)
    means: NDArray[np.float64]  # (n_components, n_features), success probabilities


@dataclass(frozen=True)
class BernoulliStats:
    """Weighted sums over rows; ``a + b`` is the statistics of the union of the rows."""

    resp: NDArray[np.float64]  # Σ w·r, (n_components,)
    resp_x: NDArray[np.float64]  # Σ w·r·x, (n_components, n_features)
    log_prob: float  # Σ w·log p(x)
    weight: float  # Σ w

    def __add__(self, other: BernoulliStats) -> BernoulliStats:
        return BernoulliStats(
            self.resp + other.resp,
            self.resp_x + other.resp_x,
            self.log_prob + other.log_prob,
            self.weight + other.weight,
        )


def _log_prob_components(X: NDArray[Any], params: BernoulliParams) -> NDArray[np.float64]:
    """log π_k + log p(x | k) for every row and component: one matrix product."""
    means = np.clip(params.means, _EPS, 1.0 - _EPS)
    log_p, log_q = np.log(means), np.log1p(-means)
    log_weights = np.log(np.maximum(params.weights, np.finfo(np.float64).tiny))
    return np.asarray(X, dtype=np.float64) @ (log_p - log_q).T + (log_q.sum(axis=1) + log_weights)


def _estep(
    X: NDArray[Any], params: BernoulliParams
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(log p(x) per row, log responsibilities)."""
    weighted = _log_prob_components(X, params)
    log_norm = logsumexp(weighted, axis=1)
    return log_norm, weighted - log_norm[:, None]


class _BernoulliFamily(EMFamily[BernoulliParams, BernoulliStats]):
    """The four EM steps; MAP estimates under a symmetric Beta(α + 1, α + 1) prior on μ."""

    def __init__(self, n_components: int, n_features: int, alpha: float) -> None:
        self.n_components = n_components
        self.n_features = n_features
        self.alpha = alpha
        self.chunk_width = n_components + n_features

    def initialize(self, data: DataSource, random_state: np.random.RandomState) -> BernoulliParams:
        # Random responsibilities, then one M-step (scikit-learn's init_params="random").
        # The draws happen chunk by chunk in order, so an in-memory source is reproducible.
        def random_stats(Xc: NDArray[Any], wc: NDArray[np.float64] | None) -> BernoulliStats:
            resp = random_state.uniform(size=(Xc.shape[0], self.n_components))
            resp /= resp.sum(axis=1, keepdims=True)
            return self._stats(Xc, wc, resp, 0.0)

        stats = data.reduce(random_stats, width=self.chunk_width)
        return self.mstep(stats, None)  # type: ignore[arg-type]

    def _stats(
        self,
        X: NDArray[Any],
        w: NDArray[np.float64] | None,
        resp: NDArray[np.float64],
        log_prob: float,
    ) -> BernoulliStats:
        wr = resp if w is None else resp * w[:, None]
        return BernoulliStats(
            wr.sum(axis=0),
            wr.T @ np.asarray(X, dtype=np.float64),
            log_prob,
            float(X.shape[0] if w is None else w.sum()),
        )

    def estep_stats(
        self, X: NDArray[Any], w: NDArray[np.float64] | None, params: BernoulliParams
    ) -> BernoulliStats:
        log_norm, log_resp = _estep(X, params)
        log_prob = float(log_norm.sum() if w is None else log_norm @ w)
        return self._stats(X, w, np.exp(log_resp), log_prob)

    def mstep(self, stats: BernoulliStats, params: BernoulliParams) -> BernoulliParams:
        weights = stats.resp / stats.weight
        means = (stats.resp_x + self.alpha) / (stats.resp[:, None] + 2.0 * self.alpha)
        # A component with no weight and alpha = 0 has no defined mean: put it at ½.
        means = np.where(np.isfinite(means), means, 0.5)
        # Σ r·x and Σ r are summed in different orders: round-off may step past 0 or 1.
        return BernoulliParams(weights, np.clip(means, 0.0, 1.0))

    def log_prior(self, params: BernoulliParams) -> float:
        """α Σ (log μ + log(1 − μ)): the Beta prior's log-density up to a constant."""
        if self.alpha == 0:
            return 0.0
        means = np.clip(params.means, _EPS, 1.0 - _EPS)
        return float(self.alpha * np.sum(np.log(means) + np.log1p(-means)))

    def lower_bound(self, stats: BernoulliStats, params: BernoulliParams) -> float:
        # The MAP objective that EM increases: log-likelihood plus log prior, per unit weight.
        return (stats.log_prob + self.log_prior(params)) / stats.weight


class BernoulliMixture(DensityMixin, ClusterMixin, BaseEstimator):
    """Mixture of multivariate Bernoulli distributions (independent binary features), by EM.

    p(x) = Σ_k π_k Π_d μ_kd^x_d (1 − μ_kd)^(1 − x_d), the classic latent-class model for
    binary data and the EM baseline for binarised images. With ``alpha > 0`` the M-step
    takes the MAP estimate under a Beta(α + 1, α + 1) prior on every μ_kd, i.e. adds α
    pseudo-successes and α pseudo-failures per component and pixel:
    μ_kd = (Σ w·r·x_d + α) / (Σ w·r + 2α). This keeps probabilities off 0 and 1, so an
    unseen pixel value in new data does not get probability 0.

    Parameters
    ----------
    n_components : int, default=1
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (per unit weight).
    max_iter : int, default=100
    n_init : int, default=1
        Restarts; the one with the best lower bound is kept.
    alpha : float, default=0.1
        Beta prior pseudo-count (0 gives maximum likelihood).
    random_state : int, RandomState or None
        Seeds the random initial responsibilities.
    verbose : int, default=0
    verbose_interval : int, default=10

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Success probabilities μ_kd.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        MAP objective per unit weight at the final parameters' E-step.
    lower_bounds_ : list of float
        The objective at every iteration of the best restart.
    n_features_in_ : int

    See Also
    --------
    latentmix.vae.VAE : a VAE with a Bernoulli likelihood, the deep-model comparison.

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix.mixture._bernoulli import BernoulliMixture
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.rand(50, 6) < 0.9, rng.rand(50, 6) < 0.1]).astype(float)
    >>> bm = BernoulliMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(bm.means_.mean(axis=1)), 1)
    array([0.1, 0.9])
    >>> bm.predict(X[:3]).tolist() == [bm.predict(X[:1])[0]] * 3
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "n_components": [Interval(int, 1, None)],
        "tol": [Interval(float, 0.0, None)],
        "max_iter": [Interval(int, 0, None)],
        "n_init": [Interval(int, 1, None)],
        "alpha": [Interval(float, 0.0, None)],
        "random_state": [RandomStateLike],
        "verbose": [Interval(int, 0, None)],
        "verbose_interval": [Interval(int, 1, None)],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        alpha: float = 0.1,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        verbose_interval: int = 10,
    ) -> None:
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.alpha = alpha
        self.random_state = random_state
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    @staticmethod
    def _check_range(X: NDArray[np.floating[Any]]) -> None:
        if X.size and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                f"BernoulliMixture needs binary data (values in [0, 1]), but X ranges over "
                f"[{X.min():g}, {X.max():g}]. Binarise X first, e.g. X > threshold."
            )

    def _params(self) -> BernoulliParams:
        return BernoulliParams(self.weights_, self.means_)

    def fit(
        self, X: ArrayLike, y: None = None, sample_weight: ArrayLike | None = None
    ) -> BernoulliMixture:
        """Estimate the parameters by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Binary rows (values in [0, 1]; fractional values act as expected counts).
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), optional
            Row weights; weight 2 is the same as including the row twice.

        Returns
        -------
        self
        """
        self.fit_predict(X, y, sample_weight)
        return self

    def fit_predict(
        self, X: ArrayLike, y: None = None, sample_weight: ArrayLike | None = None
    ) -> NDArray[np.intp]:
        """Fit, then return the most likely component of each row (== ``fit(X).predict(X)``)."""
        validate_params(self, self._parameter_constraints)
        Xv = check_X_fit(self, X, min_samples=int(self.n_components))
        self._check_range(Xv)
        w = check_sample_weight(sample_weight, Xv.shape[0])
        family = _BernoulliFamily(int(self.n_components), Xv.shape[1], float(self.alpha))
        result = run_em(
            family,
            ArrayData(Xv, w),
            n_init=int(self.n_init),
            max_iter=int(self.max_iter),
            tol=float(self.tol),
            random_state=check_random_state(self.random_state),
            verbose=int(self.verbose),
            verbose_interval=int(self.verbose_interval),
            name="BernoulliMixture",
        )
        self.weights_ = result.params.weights
        self.means_ = result.params.means
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.n_iter)
        self.lower_bounds_ = [float(v) for v in result.lower_bounds]
        # A final E-step so that the labels match predict (the loop ends on an M-step).
        stats = ArrayData(Xv, w).reduce(
            lambda Xc, wc: family.estep_stats(Xc, wc, self._params()), width=family.chunk_width
        )
        self.lower_bound_ = float(family.lower_bound(stats, self._params()))
        return np.argmax(_estep(Xv, self._params())[1], axis=1)

    def _validate_predict(self, X: ArrayLike) -> NDArray[np.floating[Any]]:
        Xv = check_X_predict(self, X)
        self._check_range(Xv)
        return Xv

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """log p(x) of each row, of shape (n_samples,)."""
        return _estep(self._validate_predict(X), self._params())[0]

    def score(self, X: ArrayLike, y: None = None, sample_weight: ArrayLike | None = None) -> float:
        """Weighted mean log-likelihood per row."""
        log_prob = self.score_samples(X)
        w = check_sample_weight(sample_weight, log_prob.shape[0])
        return float(np.average(log_prob, weights=w))

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Responsibilities p(k | x), of shape (n_samples, n_components)."""
        return np.exp(_estep(self._validate_predict(X), self._params())[1])

    def predict(self, X: ArrayLike) -> NDArray[np.intp]:
        """Most likely component of each row."""
        return np.argmax(_estep(self._validate_predict(X), self._params())[1], axis=1)

    def sample(
        self, n_samples: int = 1, random_state: int | np.random.RandomState | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
        """Draw binary rows and their components.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState or None
            None uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        labels = rng.choice(self.n_components, size=int(n_samples), p=self.weights_)
        X = rng.uniform(size=(int(n_samples), self.means_.shape[1])) < self.means_[labels]
        return X.astype(np.float64), labels.astype(np.intp)

    def _n_parameters(self) -> int:
        n_components, n_features = self.means_.shape
        return int(n_components * n_features + n_components - 1)

    def _total_log_likelihood(
        self, X: ArrayLike, sample_weight: ArrayLike | None
    ) -> tuple[float, float]:
        log_prob = self.score_samples(X)
        w = check_sample_weight(sample_weight, log_prob.shape[0])
        if w is None:
            return float(log_prob.sum()), float(log_prob.shape[0])
        return float(log_prob @ w), float(w.sum())

    def bic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Bayesian information criterion on X (lower is better); n is the total weight."""
        total, n = self._total_log_likelihood(X, sample_weight)
        return float(-2.0 * total + self._n_parameters() * np.log(n))

    def aic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Akaike information criterion on X (lower is better)."""
        total, _ = self._total_log_likelihood(X, sample_weight)
        return float(-2.0 * total + 2.0 * self._n_parameters())
