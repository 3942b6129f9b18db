"""Fitting for the command line: restarts with a progress bar, model selection, scaling."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from latentmix.cli._common import CLIError, Ui, unavailable

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Scaling", "fit_kmeans", "fit_mixture", "select", "summarize_mixture", "unscale"]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@dataclass(frozen=True)
class Scaling:
    """Column means and standard deviations used by ``--standardize``."""

    mean: NDArray[np.float64]
    scale: NDArray[np.float64]

    @classmethod
    def of(cls, X: NDArray[np.float64], w: NDArray[np.float64] | None) -> Scaling:
        # Weighted moments over the observed entries of each column (NaN = missing).
        seen = ~np.isnan(X)
        weight = (np.ones(X.shape[0]) if w is None else w)[:, None] * seen
        total = weight.sum(axis=0)
        total[total == 0] = 1.0
        Xz = np.where(seen, X, 0.0)
        mean = (weight * Xz).sum(axis=0) / total
        scale = np.sqrt((weight * np.where(seen, X - mean, 0.0) ** 2).sum(axis=0) / total)
        scale[scale == 0] = 1.0
        return cls(mean, scale)

    def apply(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        return (X - self.mean) / self.scale


def seeds(random_state: int | None, n: int) -> list[int]:
    """``n`` restart seeds drawn from ``random_state`` (reproducible when it is given)."""
    rng = np.random.RandomState(random_state)
    return [int(s) for s in rng.randint(0, 2**31 - 1, size=n)]


def _library_error(exc: Exception, what: str) -> CLIError:
    return CLIError(f"{what} failed: {str(exc).strip().splitlines()[0]}")


def fit_mixture(
    X: Any,
    w: NDArray[np.float64] | None,
    *,
    n_components: int,
    covariance_type: str,
    n_init: int,
    random_state: int | None,
    max_iter: int,
    tol: float,
    reg_covar: float,
    ui: Ui,
) -> Any:
    """Fit one GaussianMixture, one restart at a time so a bar can show them.

    Each restart is a ``GaussianMixture(n_init=1)`` with its own seed; the best (highest
    lower bound) is returned, and refitting its saved parameters reproduces it exactly.
    """
    from latentmix import GaussianMixture

    best: Any = None
    with ui.progress(f"fitting K={n_components} {covariance_type}", n_init) as bar:
        for seed in seeds(random_state, n_init):
            model = GaussianMixture(
                n_components,
                covariance_type=covariance_type,
                n_init=1,
                random_state=seed,
                max_iter=max_iter,
                tol=tol,
                reg_covar=reg_covar,
            )
            try:
                model.fit(X, sample_weight=w)
            except ValueError as exc:
                raise _library_error(exc, f"fitting {n_components} components") from exc
            if best is None or model.lower_bound_ > best.lower_bound_:
                best = model
            bar.advance()
    return best


def fit_kmeans(
    X: Any,
    w: NDArray[np.float64] | None,
    *,
    n_clusters: int,
    n_init: int,
    random_state: int | None,
    max_iter: int,
    ui: Ui,
) -> Any:
    """Fit KMeans, one restart at a time; keep the lowest inertia."""
    from latentmix.cluster import KMeans

    best: Any = None
    with ui.progress(f"k-means K={n_clusters}", n_init) as bar:
        for seed in seeds(random_state, n_init):
            model = KMeans(n_clusters, n_init=1, random_state=seed, max_iter=max_iter)
            try:
                model.fit(X, sample_weight=w)
            except ValueError as exc:
                raise _library_error(exc, f"k-means with {n_clusters} clusters") from exc
            if best is None or model.inertia_ < best.inertia_:
                best = model
            bar.advance()
    return best


def select(
    X: Any,
    w: NDArray[np.float64] | None,
    *,
    components: list[int],
    covariance_types: list[str],
    criterion: str,
    n_init: int,
    random_state: int | None,
    n_jobs: int | None,
    ui: Ui,
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
) -> Any:
    """Run ``latentmix.select_mixture`` over components × covariance types."""
    try:
        from latentmix.mixture._selection import select_mixture
    except ImportError:
        raise unavailable(
            "model selection (select_mixture)", "fit a single number of components, e.g. -k 3"
        ) from None
    n_models = len(components) * len(covariance_types)
    with ui.progress(f"model selection over {n_models} models", None):
        try:
            return select_mixture(
                X,
                n_components=components,
                covariance_types=tuple(covariance_types),
                criterion=criterion,
                n_init=n_init,
                random_state=random_state,
                n_jobs=n_jobs,
                sample_weight=w,
                max_iter=max_iter,
                tol=tol,
                reg_covar=reg_covar,
            )
        except ValueError as exc:
            raise _library_error(exc, "model selection") from exc


def unscale(model: Any, scaling: Scaling) -> tuple[Any, str | None]:
    """Express a GaussianMixture fitted on z-scores in the data's own units, exactly.

    With x = mean + scale·z, component means become mean + scale·μ and covariances
    S Σ S (S = diag(scale)). A spherical covariance is not spherical in data units, so it
    becomes diagonal; the returned note says so.
    """
    from latentmix.gaussian._params import (
        precisions_cholesky_from_covariances,
        precisions_from_cholesky,
    )

    s, ct = scaling.scale, model.covariance_type
    cov = np.asarray(model.covariances_, dtype=np.float64)
    note = None
    if ct in ("full", "tied"):
        cov = cov * s[:, None] * s[None, :]
    elif ct == "diag":
        cov = cov * s**2
    else:
        cov = cov[:, None] * s[None, :] ** 2
        ct = "diag"
        note = "spherical in standardised units is stored as diag in the data's units"
        model.covariance_type = "diag"
    prec_chol, bad = precisions_cholesky_from_covariances(cov, ct)
    if bad:  # pragma: no cover - scaling a positive definite matrix keeps it so
        raise CLIError("cannot express the standardised model in data units", 1)
    model.means_ = scaling.mean + np.asarray(model.means_) * s
    model.covariances_ = cov
    model.precisions_cholesky_ = prec_chol
    model.precisions_ = precisions_from_cholesky(prec_chol, ct)
    return model, note


def summarize_mixture(model: Any, X: Any, w: NDArray[np.float64] | None) -> dict[str, Any]:
    """The numbers ``fit`` and ``info`` report for a fitted GaussianMixture on data X."""
    lp = np.asarray(model.score_samples(X), dtype=np.float64)
    weight = np.ones_like(lp) if w is None else w
    labels = np.asarray(model.predict(X))
    summary: dict[str, Any] = {
        "class": type(model).__name__,
        "n_components": int(model.n_components),
        "covariance_type": str(model.covariance_type),
        "n_samples": int(lp.shape[0]),
        "n_features": int(model.n_features_in_),
        "log_likelihood": float(np.dot(weight, lp)),
        "n_parameters": int(model._n_parameters()),
        "bic": float(model.bic(X, sample_weight=w)),
        "aic": float(model.aic(X, sample_weight=w)),
        "converged": bool(model.converged_),
        "n_iter": int(model.n_iter_),
        "weights": np.asarray(model.weights_).tolist(),
        "means": np.asarray(model.means_).tolist(),
        "counts": np.bincount(labels, minlength=int(model.n_components)).tolist(),
    }
    if hasattr(model, "icl"):
        with warnings.catch_warnings():
            # GaussianMixture.icl re-checks an already validated array, which loses the
            # column names of a DataFrame; the values are the same.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            summary["icl"] = float(model.icl(X, sample_weight=w))
    return summary


def selection_table(selection: Any) -> pd.DataFrame:
    """The selection's criterion table as a DataFrame."""
    return selection.table_
