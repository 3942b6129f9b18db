"""Throw everything at the estimators: every case ends in finite outputs or a clear ValueError.

Generated inputs: shapes from N=1, D=1 to N < K and D > N; duplicated rows; constant and
near-constant columns; overall scales from 1e-150 to 1e150; float32 and float64; lists
and pandas frames; sample weights with zeros. A case may end in (a) a fitted model whose
outputs are all finite, or (b) a ValueError whose message is one of the documented ones.
Anything else (another exception, a NaN output, a warning other than the documented
convergence/collapse ones) fails. Failing examples found while writing this are kept as
explicit regression tests at the bottom.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentmix import CollapseWarning, ConvergenceWarning, GaussianMixture
from latentmix.gaussian import COVARIANCE_TYPES

# Every ValueError the estimators may raise on valid-typed but awkward data.
DOCUMENTED = re.compile(
    "|".join(
        [
            r"n_samples=\d+ and n_components=\d+",
            r"distinct rows",
            r"ill-defined empirical covariance",
            r"kept collapsing",
            r"contains NaN",
            r"contains infinity",
            r"All sample weights are zero",
            r"overflow|too large|out of range",
        ]
    )
)


@st.composite
def datasets(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 6))
    k = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.RandomState(seed)
    kind = draw(st.sampled_from(["normal", "duplicates", "constant_col", "near_constant", "grid"]))
    X = rng.randn(n, d)
    if kind == "duplicates":
        X = X[rng.randint(0, max(1, n // 3), size=n)]
    elif kind == "constant_col":
        X[:, rng.randint(d)] = draw(st.floats(-1e3, 1e3))
    elif kind == "near_constant":
        X[:, rng.randint(d)] = 5.0 + 1e-12 * rng.randn(n)
    elif kind == "grid":
        X = np.round(X)
    scale = 10.0 ** draw(st.sampled_from([-150, -20, -5, 0, 5, 20, 150]))
    offset = draw(st.sampled_from([0.0, 1e6, -1e8]))
    X = X * scale + offset
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    with np.errstate(over="ignore", under="ignore"):
        X = X.astype(dtype)
    container = draw(st.sampled_from(["array", "list", "pandas"]))
    weights = None
    if draw(st.booleans()):
        weights = rng.randint(0, 3, size=n).astype(float)
    return {
        "X": X,
        "k": k,
        "ct": draw(st.sampled_from(COVARIANCE_TYPES)),
        "container": container,
        "weights": weights,
        "init": draw(st.sampled_from(["kmeans", "k-means++", "random", "random_from_data"])),
    }


def as_container(X: np.ndarray, container: str) -> Any:
    if container == "list":
        return X.tolist()
    if container == "pandas":
        import pandas as pd

        return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    return X


def check_case(case: dict[str, Any]) -> None:
    X = case["X"]
    Xin = as_container(X, case["container"])
    gm = GaussianMixture(
        case["k"], covariance_type=case["ct"], init_params=case["init"], random_state=0, max_iter=30
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", CollapseWarning)
        try:
            gm.fit(Xin, sample_weight=case["weights"])
        except ValueError as exc:
            assert DOCUMENTED.search(str(exc)), f"undocumented error: {exc}"
            return
        outputs = {
            "score_samples": gm.score_samples(Xin),
            "predict_proba": gm.predict_proba(Xin),
            "means_": gm.means_,
            "covariances_": gm.covariances_,
            "weights_": gm.weights_,
            "bic": np.array(gm.bic(Xin)),
        }
    for name, value in outputs.items():
        assert np.all(np.isfinite(value)), f"{name} is not finite"
    np.testing.assert_allclose(outputs["predict_proba"].sum(axis=1), 1.0, rtol=1e-4)
    labels = gm.predict(Xin)
    assert labels.min() >= 0 and labels.max() < case["k"]


@settings(
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    deadline=None,
)
@given(datasets())
def test_gaussian_mixture_fuzz(case: dict[str, Any]) -> None:
    check_case(case)


# -- regression cases kept from the fuzzer -----------------------------------------------------


def test_single_row_single_component() -> None:
    gm = GaussianMixture(1).fit([[3.0, 4.0]])
    assert np.all(np.isfinite(gm.score_samples([[3.0, 4.0]])))


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_extreme_scales_do_not_produce_nan(scale: float) -> None:
    rng = np.random.RandomState(0)
    X = rng.randn(30, 2) * scale
    gm = GaussianMixture(2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", CollapseWarning)
        try:
            gm.fit(X)
        except ValueError as exc:
            assert DOCUMENTED.search(str(exc))
            return
    assert np.all(np.isfinite(gm.score_samples(X)))
