"""The estimator layer that Gaussian mixtures share: prediction, sampling, the EM call.

:class:`~latentmix.GaussianMixture` and :class:`~latentmix.BayesianGaussianMixture` differ
in their parameters, their fit and how they score a row; given that, predicting, scoring,
sampling and running the EM loop read the same. Each estimator keeps its public methods
(their docstrings are its own) and delegates their bodies here.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils.validation import check_is_fitted

from latentmix._validation import check_random_state, check_sample_weight, weighted_total
from latentmix.em._dask import is_dask_collection
from latentmix.em._loop import EMResult
from latentmix.gaussian._params import precisions_from_cholesky
from latentmix.gaussian._sample import check_n_samples, sample_gaussian_mixture

__all__: list[str] = []


class _BaseGaussianMixture(DensityMixin, BaseEstimator, metaclass=ABCMeta):  # type: ignore[misc]
    """Base of the Gaussian mixture estimators (abstract; not a public API).

    A subclass supplies its fit, its validation of rows to predict on, the log
    responsibilities and log-densities of validated rows, how its parameters become
    fitted attributes, and the storage type of its covariances.
    """

    #: The name the EM loop gives the estimator in its log messages and warnings.
    _em_name: ClassVar[str]

    lower_bound_: float

    # -- what a subclass supplies ------------------------------------------------------------
    @abstractmethod
    def fit(
        self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None
    ) -> _BaseGaussianMixture:
        """Fit the mixture to X."""

    @abstractmethod
    def _check_predict_X(self, X: ArrayLike) -> tuple[NDArray[np.floating[Any]], bool]:
        """X validated against the fitted model, and whether it holds NaN (missing values)."""

    @abstractmethod
    def _estimate_log_resp(
        self, X: NDArray[Any], want_resp: bool, *, missing: bool
    ) -> tuple[NDArray[Any] | None, NDArray[Any]]:
        """Log responsibilities (None unless ``want_resp``) and log-densities of rows X."""

    @abstractmethod
    def _set_params(self, params: Any) -> None:
        """Store a parameter object as the fitted attributes."""

    @property
    @abstractmethod
    def _kernel_type(self) -> str:
        """How the covariances are stored: full, tied, diag or spherical."""

    # -- fitting --------------------------------------------------------------------------------
    def fit_predict(
        self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None
    ) -> NDArray[np.intp]:
        """Fit, then label each row with its most responsible component (a final E-step)."""
        return self.fit(X, y, sample_weight=sample_weight).predict(X)

    def _em_options(self, init: Any) -> dict[str, Any]:
        """``run_em``'s options from the estimator's; ``init`` is a warm start, or None.

        Options rather than a wrapper around ``run_em``: a call frame more would move the
        place its warnings point at (their ``stacklevel``).
        """
        return {
            "n_init": self.n_init,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "random_state": check_random_state(self.random_state),
            "init_params": init,
            "init_lower_bound": -np.inf if init is None else self.lower_bound_,
            "verbose": self.verbose,
            "verbose_interval": self.verbose_interval,
            "name": self._em_name,
        }

    def _set_em_result(self, result: EMResult[Any]) -> None:
        """The fitted attributes that every EM result sets, parameters first."""
        self._set_params(result.params)
        self.converged_ = bool(result.converged)
        self.interrupted_ = bool(result.interrupted)
        self.n_iter_ = int(result.n_iter)
        self.lower_bound_ = float(result.lower_bound)
        self.lower_bounds_ = [float(v) for v in result.lower_bounds]

    def _set_covariance_attributes(self, params: Any) -> None:
        """``covariances_``, ``precisions_cholesky_`` and ``precisions_`` from ``params``."""
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = precisions_from_cholesky(
            params.precisions_cholesky, params.covariance_type
        )

    # -- prediction -------------------------------------------------------------------------------
    def _score_samples(self, X: ArrayLike) -> NDArray[Any]:
        if is_dask_collection(X):
            from latentmix.em._fit_source import dask_score_samples

            return dask_score_samples(self, X)  # type: ignore[no-any-return]
        Xv, missing = self._check_predict_X(X)
        return self._estimate_log_resp(Xv, want_resp=False, missing=missing)[1]

    def _score(self, X: ArrayLike, sample_weight: ArrayLike | None) -> float:
        lp = self.score_samples(X)
        total, weight = weighted_total(lp, check_sample_weight(sample_weight, lp.shape[0]))
        return total / weight

    def _predict_proba(self, X: ArrayLike) -> NDArray[Any]:
        if is_dask_collection(X):
            from latentmix.em._fit_source import dask_predict_proba

            return dask_predict_proba(self, X)  # type: ignore[no-any-return]
        Xv, missing = self._check_predict_X(X)
        log_resp = self._estimate_log_resp(Xv, want_resp=True, missing=missing)[0]
        assert log_resp is not None
        return np.exp(log_resp, out=log_resp)

    def _predict(self, X: ArrayLike) -> NDArray[np.intp]:
        if is_dask_collection(X):
            from latentmix.em._fit_source import dask_predict

            return dask_predict(self, X)  # type: ignore[no-any-return]
        Xv, missing = self._check_predict_X(X)
        return self._labels(Xv, missing)

    def _labels(self, X: NDArray[Any], missing: bool) -> NDArray[np.intp]:
        """Most responsible component of each validated row."""
        log_resp = self._estimate_log_resp(X, want_resp=True, missing=missing)[0]
        assert log_resp is not None
        return np.asarray(log_resp.argmax(axis=1), dtype=np.intp)

    def _sample(
        self, n_samples: int, random_state: int | np.random.RandomState | None
    ) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
        check_is_fitted(self)
        n = check_n_samples(n_samples)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        return sample_gaussian_mixture(
            self.weights_,
            self.means_,
            self.covariances_,
            self._kernel_type,
            n,
            rng,
        )
