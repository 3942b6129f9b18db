"""Ctrl-C during a fit: the estimator keeps the best state so far, then the interrupt goes on.

The interrupt is simulated without signals or sleeps: the in-memory data source's
``reduce`` (one pass over the rows) raises KeyboardInterrupt on its n-th call.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from latentmix import (
    BayesianGaussianMixture,
    CollapseWarning,
    ConvergenceWarning,
    GaussianMixture,
    KMeans,
)
from latentmix.em import ArrayData, EMFamily, run_em
from latentmix.em._loop import FitInterrupted


@pytest.fixture
def interrupt_on_pass(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``interrupt_on_pass(n)``: the n-th pass over any in-memory data raises KeyboardInterrupt."""
    state = {"n": 0, "at": -1}
    original = ArrayData.reduce

    def reduce(self: ArrayData, fn: Any, **kwargs: Any) -> Any:
        state["n"] += 1
        if state["n"] == state["at"]:
            raise KeyboardInterrupt
        return original(self, fn, **kwargs)

    monkeypatch.setattr(ArrayData, "reduce", reduce)

    def arm(n: int) -> dict[str, int]:
        state["n"], state["at"] = 0, n
        return state

    yield arm


def blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    return np.vstack([rng.randn(60, 2), rng.randn(60, 2) + 6, rng.randn(60, 2) - 6])


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", CollapseWarning)
        yield


# -- the loop ----------------------------------------------------------------------------------


class _Counting(EMFamily[float, float]):
    """A toy family: the parameter is the iteration count, the bound its negative reciprocal."""

    def initialize(self, data: Any, random_state: np.random.RandomState) -> float:
        return 1.0

    def estep_stats(self, X: Any, w: Any, params: float) -> float:
        return params

    def mstep(self, stats: float, params: float) -> float:
        return params + 1.0

    def lower_bound(self, stats: float, params: float) -> float:
        return -1.0 / params


def test_run_em_interrupt_hands_back_latest_parameters(interrupt_on_pass: Any) -> None:
    interrupt_on_pass(4)
    data = ArrayData(np.zeros((3, 1)), None)
    with pytest.raises(FitInterrupted) as info:
        run_em(
            _Counting(), data, n_init=1, max_iter=50, tol=0.0, random_state=np.random.RandomState(0)
        )
    result = info.value.result
    assert isinstance(info.value, KeyboardInterrupt)
    assert result.interrupted and not result.converged
    assert result.params == 4.0  # three M-steps done, the fourth pass interrupted
    assert result.lower_bounds == [-1.0, -0.5, -1.0 / 3.0]
    assert result.n_iter == 3


def test_run_em_interrupt_keeps_an_earlier_better_restart(interrupt_on_pass: Any) -> None:
    # Restart 0 runs 5 passes (max_iter); restart 1 is interrupted on its first pass.
    interrupt_on_pass(6)
    data = ArrayData(np.zeros((3, 1)), None)
    with pytest.raises(FitInterrupted) as info:
        run_em(
            _Counting(), data, n_init=3, max_iter=5, tol=0.0, random_state=np.random.RandomState(0)
        )
    assert info.value.result.best_init == 0
    assert info.value.result.params == 6.0


def test_run_em_interrupt_before_anything_is_a_plain_keyboard_interrupt() -> None:
    class Broken(_Counting):
        def initialize(self, data: Any, random_state: np.random.RandomState) -> float:
            raise KeyboardInterrupt

    data = ArrayData(np.zeros((3, 1)), None)
    with pytest.raises(KeyboardInterrupt) as info:
        run_em(Broken(), data, n_init=2, max_iter=5, tol=0.0, random_state=np.random.RandomState(0))
    assert not isinstance(info.value, FitInterrupted)


# -- the estimators ----------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_gaussian_mixture_interrupted_fit_is_usable(
    interrupt_on_pass: Any, covariance_type: str
) -> None:
    X = blobs()
    interrupt_on_pass(4)
    gm = GaussianMixture(
        3,
        covariance_type=covariance_type,
        init_params="random_from_data",
        tol=0.0,
        max_iter=200,
        random_state=0,
    )
    with pytest.raises(KeyboardInterrupt):
        gm.fit(X)
    assert gm.interrupted_ is True and gm.converged_ is False
    assert gm.n_iter_ == 3 and len(gm.lower_bounds_) == 3
    assert np.all(np.isfinite(gm.score_samples(X)))
    np.testing.assert_allclose(gm.predict_proba(X).sum(axis=1), 1.0)
    # EM never lowers the bound: the kept parameters are at least as good as the last bound.
    assert gm.score(X) >= gm.lower_bounds_[-1] - 1e-9
    with quiet():
        gm.fit(X)
    assert gm.interrupted_ is False


def test_gaussian_mixture_interrupt_keeps_the_better_restart(interrupt_on_pass: Any) -> None:
    X = blobs()
    with quiet():
        ref = GaussianMixture(
            3, init_params="random_from_data", n_init=1, max_iter=5, tol=0.0, random_state=0
        ).fit(X)
    interrupt_on_pass(7)  # restart 0: 5 passes, restart 1: interrupted on its second pass
    gm = GaussianMixture(
        3, init_params="random_from_data", n_init=4, max_iter=5, tol=0.0, random_state=0
    )
    with quiet(), pytest.raises(KeyboardInterrupt):
        gm.fit(X)
    assert gm.interrupted_ and not gm.converged_
    assert gm.lower_bound_ >= ref.lower_bound_ - 1e-12


def test_gaussian_mixture_interrupt_in_kmeans_start_leaves_it_unfitted(
    interrupt_on_pass: Any,
) -> None:
    # The first pass belongs to the KMeans start inside the first initialisation.
    interrupt_on_pass(1)
    gm = GaussianMixture(3, random_state=0)
    with pytest.raises(KeyboardInterrupt) as info:
        gm.fit(blobs())
    assert not isinstance(info.value, FitInterrupted)
    assert not hasattr(gm, "means_")


def test_gaussian_mixture_interrupt_with_missing_values(interrupt_on_pass: Any) -> None:
    X = blobs()
    X[::7, 1] = np.nan
    interrupt_on_pass(3)
    gm = GaussianMixture(3, init_params="random_from_data", random_state=0)
    with pytest.raises(KeyboardInterrupt):
        gm.fit(X)
    assert gm.interrupted_
    assert np.all(np.isfinite(gm.score_samples(X)))
    assert not np.isnan(gm.impute(X)).any()


def test_bayesian_mixture_interrupted_fit_is_usable(interrupt_on_pass: Any) -> None:
    X = blobs()
    interrupt_on_pass(5)
    bgm = BayesianGaussianMixture(
        n_components=4, init_params="random_from_data", tol=0.0, random_state=0
    )
    with pytest.raises(KeyboardInterrupt):
        bgm.fit(X)
    assert bgm.interrupted_ is True and bgm.converged_ is False
    assert np.all(np.isfinite(bgm.score_samples(X)))
    assert np.all(np.isfinite(bgm.weights_)) and np.isclose(bgm.weights_.sum(), 1.0)


def test_kmeans_interrupted_fit_is_usable(interrupt_on_pass: Any) -> None:
    X = blobs()
    interrupt_on_pass(2)
    km = KMeans(3, init="random", n_init=1, tol=0.0, max_iter=100, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        km.fit(X)
    assert km.interrupted_ is True
    assert km.labels_.shape == (X.shape[0],)
    assert np.all(np.isfinite(km.cluster_centers_))
    assert np.isfinite(km.inertia_)
    np.testing.assert_array_equal(km.predict(X), km.labels_)


def test_kmeans_interrupt_keeps_the_best_earlier_run(interrupt_on_pass: Any) -> None:
    X = blobs()
    counter = interrupt_on_pass(-1)  # count the passes of two complete runs
    with quiet():
        two = KMeans(3, init="random", n_init=2, random_state=0).fit(X)
    passes = counter["n"]
    interrupt_on_pass(passes + 1)  # the third run's first pass
    km = KMeans(3, init="random", n_init=10, random_state=0)
    with quiet(), pytest.raises(KeyboardInterrupt):
        km.fit(X)
    assert km.interrupted_
    assert km.inertia_ <= two.inertia_ * (1 + 1e-12)


def test_kmeans_interrupt_before_centers_leaves_it_unfitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(KMeans, "_initial_centers", boom)
    km = KMeans(3, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        km.fit(blobs())
    assert not hasattr(km, "cluster_centers_")
