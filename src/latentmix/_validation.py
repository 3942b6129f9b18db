"""Input checks shared by every estimator: normalise once at the edge, then one code path."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "check_X_fit",
    "check_X_predict",
    "check_finite",
    "check_n_rows",
    "check_random_state",
    "check_sample_weight",
    "weighted_total",
]

FLOAT_DTYPES = (np.float64, np.float32)


def check_random_state(seed: Any) -> np.random.RandomState:
    """Turn ``None``, an int or a RandomState into a RandomState (scikit-learn's rule)."""
    from sklearn.utils import check_random_state as _check

    return _check(seed)


def check_finite(X: NDArray[np.floating[Any]], *, name: str = "X", allow_nan: bool = False) -> bool:
    """Raise a ValueError naming the count of NaN or infinite entries and what to do.

    Returns whether X holds NaN (only possible with ``allow_nan=True``), so that a caller
    that treats NaN as missing need not look for it again.
    """
    if X.size == 0:
        return False
    # One reduction first: in the common case (all finite) the check costs a single pass.
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.sum(X, dtype=np.float64)
    if np.isfinite(total):
        return False
    n_inf = int(np.count_nonzero(np.isinf(X)))
    if n_inf:
        raise ValueError(
            f"Input {name} contains infinity in {n_inf} entries. The models need finite "
            "values: remove those rows or replace the values before fitting."
        )
    n_nan = int(np.count_nonzero(np.isnan(X)))
    if n_nan and not allow_nan:
        raise ValueError(
            f"Input {name} contains NaN (missing values) in {n_nan} entries. This estimator "
            "needs complete rows: drop those rows or impute them first "
            "(latentmix.GaussianMixture fits data with missing values by EM, and its "
            "impute() fills them in)."
        )
    # Here NaN is allowed, or else only the float64 sum of finite values overflowed.
    return n_nan > 0


# Squares of |x| above these overflow: float32's max is 3.4e38, float64's 1.8e308.
FLOAT32_SAFE = 1e18
FLOAT64_SAFE = 1e150


def check_magnitude(X: NDArray[np.floating[Any]], *, name: str = "X") -> NDArray[np.floating[Any]]:
    """Guard the squares the kernels take: float32 too large for them is computed in float64.

    float64 values beyond 1e150 in magnitude raise a ValueError (their squares overflow).
    """
    if X.size == 0:
        return X
    # fmax/fmin skip NaN (missing entries) and make no copy of X.
    top = max(float(np.fmax.reduce(X, axis=None)), -float(np.fmin.reduce(X, axis=None)))
    if np.isnan(top):
        return X
    if top > FLOAT64_SAFE:
        raise ValueError(
            f"Input {name} has values up to {top:.3g} in magnitude: their squares overflow "
            "float64, which is out of range for Gaussian densities. Rescale the data (for "
            "instance divide by its standard deviation) before fitting."
        )
    if X.dtype == np.float32 and top > FLOAT32_SAFE:
        return X.astype(np.float64)
    return X


def check_X_fit(estimator: Any, X: ArrayLike, *, min_samples: int = 1) -> NDArray[np.floating[Any]]:
    """Validate X in ``fit``: 2-D, numeric, finite, float32 or float64; sets n_features_in_."""
    Xv = validate_data(
        estimator,
        X,
        reset=True,
        dtype=FLOAT_DTYPES,
        ensure_2d=True,
        ensure_all_finite=False,
        ensure_min_samples=1,
    )
    check_finite(Xv)
    check_n_rows(Xv, min_samples)
    return check_magnitude(np.asarray(Xv))


def check_n_rows(X: NDArray[Any], min_samples: int, what: str = "n_components") -> None:
    if X.shape[0] < min_samples:
        raise ValueError(
            f"Expected n_samples >= {what}, but got n_samples={X.shape[0]} and "
            f"{what}={min_samples}. Use fewer components or provide more samples."
        )


def check_X_predict(estimator: Any, X: ArrayLike) -> NDArray[np.floating[Any]]:
    """Validate X after ``fit``: fitted estimator, same features, finite values."""
    check_is_fitted(estimator)
    Xv = validate_data(
        estimator,
        X,
        reset=False,
        dtype=FLOAT_DTYPES,
        ensure_2d=True,
        ensure_all_finite=False,
    )
    check_finite(Xv)
    return check_magnitude(np.asarray(Xv))


def check_sample_weight(
    sample_weight: ArrayLike | None, n_samples: int, dtype: Any = np.float64
) -> NDArray[np.float64] | None:
    """Validate sample weights: 1-D, one per row, finite, non-negative, not all zero.

    Returns None when no weights are given (every row weighs 1), so the fast path can skip
    the multiplication.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        return np.full(n_samples, float(sample_weight), dtype=np.float64)  # type: ignore[arg-type]
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise ValueError(
            f"sample_weight must be numeric, got dtype {w.dtype}. Pass an array of "
            "non-negative numbers, one per row of X."
        )
    w = w.astype(np.float64, copy=False)
    if w.ndim != 1:
        raise ValueError(
            f"Sample weights must be 1D array or scalar, got an array of shape {w.shape}. "
            "Pass one non-negative weight per row of X."
        )
    if w.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight.shape == ({w.shape[0]},), expected ({n_samples},): pass one "
            "weight per row of X."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinity: every weight must be finite.")
    if np.any(w < 0):
        raise ValueError(
            "Negative values in data passed to sample_weight: weights must be non-negative."
        )
    if not np.any(w > 0):
        raise ValueError("All sample weights are zero: at least one row must have positive weight.")
    return w


def weighted_total(values: NDArray[Any], w: NDArray[np.float64] | None) -> tuple[float, float]:
    """Σ w·v over the rows and Σ w (the row count when ``w`` is None), in float64.

    A row of weight zero adds nothing, even where its value is -inf (a density that
    underflowed): weights are frequencies, and a row seen zero times is not data.
    """
    if w is None:
        return float(np.sum(values, dtype=np.float64)), float(values.shape[0])
    v = np.asarray(values, dtype=np.float64)
    return float(np.dot(w, np.where(w > 0, v, 0.0))), float(w.sum())
