"""Fitting for the command line: restarts with a progress bar, model selection, scaling."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from latentmix.cli._common import CLIError, Ui, unavailable
from latentmix.gaussian._parsimonious import MODELS, canonical_model, kernel_covariance_type

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COVARIANCE_TYPES",
    "MULTIVARIATE_MODELS",
    "Scaling",
    "covariance_grid",
    "fit_kmeans",
    "fit_mixture",
    "parse_covariance_types",
    "rescaled_model",
    "select",
    "summarize_mixture",
    "table_in_data_units",
    "unscale",
]

#: scikit-learn's names (mclust's VVV, EEE, VVI and VII)
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: ``all``: mclust's fourteen models for two or more features, in mclust's order
MULTIVARIATE_MODELS = tuple(m for m in MODELS if m not in ("E", "V"))
#: ``all`` for one feature: mclust's two univariate models
UNIVARIATE_MODELS = ("E", "V")

#: Where the per-feature rescaling Σ ↦ S Σ S (S diagonal, positive) takes the models it does
#: not preserve, for two or more features: the tightest mclust model holding every image.
#: It keeps diagonal matrices diagonal, multiplies every determinant by the same |S|², and
#: keeps matrices that are multiples of one another so; it breaks sphericity, common
#: eigenvectors (unless the matrices are diagonal) and common eigenvalues. So EEI, VEI, EVI,
#: VVI, EEE, VEE, EVV and VVV are kept, and
#:
#: - EII λI → λS², one diagonal matrix for all components: EEI;
#: - VII λ_k I → λ_k S², one diagonal shape with variable volumes: VEI;
#: - EVE and EEV keep only the equal volumes: EVV;
#: - VVE and VEV keep nothing: VVV.
RESCALED_MODELS = {
    "EII": "EEI",
    "VII": "VEI",
    "spherical": "VEI",
    "EVE": "EVV",
    "EEV": "EVV",
    "VVE": "VVV",
    "VEV": "VVV",
}

_NAMES_HELP = (
    "full, tied, diag, spherical, mclust's EII, VII, EEI, VEI, EVI, VVI, EEE, VEE, EVE, "
    "VVE, EEV, VEV, EVV, VVV (E or V for one feature), or all"
)


def parse_covariance_types(values: list[str] | None) -> list[str]:
    """The names given to ``--covariance-type`` (repeated or comma-separated), checked.

    Case does not matter; scikit-learn's names come back in lower case, mclust's in upper
    case, and ``all`` is kept as it is until the number of features is known.
    """
    names: list[str] = []
    for item in values or []:
        for raw in item.split(","):
            value = raw.strip()
            if not value:
                continue
            if value.lower() in (*COVARIANCE_TYPES, "all"):
                names.append(value.lower())
            elif value.upper() in MODELS:
                names.append(value.upper())
            else:
                raise CLIError(
                    f"--covariance-type {value!r} is not a covariance model; use {_NAMES_HELP}"
                )
    return names


def covariance_grid(names: list[str], n_features: int, default: tuple[str, ...]) -> list[str]:
    """The covariance models to fit for data with ``n_features`` columns.

    ``all`` is mclust's fourteen models (E and V for one feature, as mclust does); a model
    listed twice under two names (full and VVV) is fitted once, under the first name.
    """
    models: list[str] = []
    for name in names or default:
        if name == "all":
            models += UNIVARIATE_MODELS if n_features == 1 else MULTIVARIATE_MODELS
        else:
            models.append(name)
    if n_features > 1:
        for name in models:
            if name in UNIVARIATE_MODELS:
                raise CLIError(
                    f"--covariance-type {name} is for one feature column, and the data have "
                    f"{n_features}; use one of EII ... VVV, full, tied, diag, spherical or all"
                )
    first: dict[str, str] = {}
    for name in models:
        first.setdefault(canonical_model(name, n_features), name)
    return list(first.values())


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


def rescaled_model(covariance_type: str, n_features: int) -> str:
    """The model that holds S Σ S for every Σ of ``covariance_type`` (see RESCALED_MODELS).

    With one feature every model is kept: a rescaled variance is still a variance.
    """
    if n_features == 1:
        return covariance_type
    return RESCALED_MODELS.get(covariance_type, covariance_type)


def _full_covariances(cov: NDArray[np.float64], kernel: str, k: int, d: int) -> Any:
    """(K, D, D) covariances from ``covariances_`` stored as kernel type ``kernel``."""
    if kernel == "full":
        return cov
    if kernel == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if kernel == "diag":
        return cov[:, :, None] * np.eye(d)
    return cov[:, None, None] * np.eye(d)  # spherical


def unscale(model: Any, scaling: Scaling) -> tuple[Any, str | None]:
    """Express a GaussianMixture fitted on z-scores in the data's own units, exactly.

    With x = mean + scale·z, component means become mean + scale·μ and covariances
    S Σ S (S = diag(scale)). Models that this rescaling does not preserve (EII, VII,
    spherical, EVE, VVE, EEV, VEV; see :data:`RESCALED_MODELS`) are saved as the tightest
    model that holds the rescaled covariances, and the returned note says so. Either way
    the saved model gives the same responsibilities on the data as the fitted one on the
    z-scores, and log-densities lower by the log-Jacobian Σ_j log scale_j.
    """
    from latentmix.gaussian._params import (
        precisions_cholesky_from_covariances,
        precisions_from_cholesky,
    )

    s = scaling.scale
    k, d = int(model.n_components), int(s.shape[0])
    fitted = str(model.covariance_type)
    saved = rescaled_model(fitted, d)
    cov = np.asarray(model.covariances_, dtype=np.float64)
    kernel_in, kernel_out = kernel_covariance_type(fitted), kernel_covariance_type(saved)
    full = _full_covariances(cov, kernel_in, k, d) * s[None, :, None] * s[None, None, :]
    if kernel_out == "full":
        cov = np.ascontiguousarray(full)
    elif kernel_out == "tied":
        cov = np.ascontiguousarray(full[0])
    elif kernel_out == "diag":
        cov = np.ascontiguousarray(np.diagonal(full, axis1=1, axis2=2))
    else:  # spherical: kept only for one feature, where a variance stays a variance
        cov = np.ascontiguousarray(full[:, 0, 0])
    prec_chol, bad = precisions_cholesky_from_covariances(cov, kernel_out)
    if bad:  # pragma: no cover - scaling a positive definite matrix keeps it so
        raise CLIError("cannot express the standardised model in data units", 1)
    model.covariance_type = saved
    model.means_ = scaling.mean + np.asarray(model.means_) * s
    model.covariances_ = cov
    model.precisions_cholesky_ = prec_chol
    model.precisions_ = precisions_from_cholesky(prec_chol, kernel_out)
    note = None
    if saved != fitted:
        note = (
            f"{fitted} fitted on z-scores is not {fitted} in the data's units: saved as "
            f"{saved}, which holds it exactly (same predictions); log-likelihood, "
            f"parameters and criteria are the fitted {fitted} model's"
        )
    return model, note


def jacobian(scaling: Scaling, X: NDArray[np.float64], w: NDArray[np.float64] | None) -> float:
    """Σ_i w_i Σ_(j observed in row i) log scale_j: log L in data units = log L(z) − this."""
    per_row = (~np.isnan(X)).astype(np.float64) @ np.log(scaling.scale)
    return float(per_row.sum() if w is None else np.dot(w, per_row))


def table_in_data_units(
    table: pd.DataFrame, scaling: Scaling, X: NDArray[np.float64], w: NDArray[np.float64] | None
) -> pd.DataFrame:
    """A selection table computed on z-scores, with log-likelihoods of the data in its units.

    Every cell's log-likelihood drops by the same Jacobian term, so BIC, AIC and ICL all
    rise by twice it and the ranking does not change; the numbers then agree with the
    summary of the saved model.
    """
    shift = jacobian(scaling, X, w)
    frame = table.copy()
    frame["log_likelihood"] = frame["log_likelihood"] - shift
    for column in ("bic", "aic", "icl"):
        frame[column] = frame[column] + 2.0 * shift
    return frame


def summarize_mixture(
    model: Any,
    X: Any,
    w: NDArray[np.float64] | None,
    *,
    fitted_covariance_type: str | None = None,
    fitted_n_parameters: int | None = None,
) -> dict[str, Any]:
    """The numbers ``fit`` and ``info`` report for a fitted GaussianMixture on data X.

    ``fitted_*``: the covariance model that was fitted and its free-parameter count, when
    the saved model holds it in a larger one (``--standardize`` with EII, VII, ...): the
    criteria then count the fitted model's parameters.
    """
    lp = np.asarray(model.score_samples(X), dtype=np.float64)
    weight = np.ones_like(lp) if w is None else w
    labels = np.asarray(model.predict(X))
    n_saved = int(model._n_parameters())
    n_parameters = n_saved if fitted_n_parameters is None else int(fitted_n_parameters)
    extra = n_parameters - n_saved
    log_n = 0.0
    if extra:
        # n as the criteria count it: the weight of the rows with an observed entry.
        seen = ~np.isnan(np.asarray(X, dtype=np.float64)).all(axis=1)
        log_n = float(np.log(weight[seen].sum()))
    summary: dict[str, Any] = {
        "class": type(model).__name__,
        "n_components": int(model.n_components),
        "covariance_type": str(fitted_covariance_type or model.covariance_type),
        "saved_covariance_type": str(model.covariance_type),
        "n_samples": int(lp.shape[0]),
        "n_features": int(model.n_features_in_),
        "log_likelihood": float(np.dot(weight, lp)),
        "n_parameters": n_parameters,
        "bic": float(model.bic(X, sample_weight=w)) + extra * log_n,
        "aic": float(model.aic(X, sample_weight=w)) + 2.0 * extra,
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
            summary["icl"] = float(model.icl(X, sample_weight=w)) + extra * log_n
    return summary


def selection_table(selection: Any) -> pd.DataFrame:
    """The selection's criterion table as a DataFrame."""
    return selection.table_
