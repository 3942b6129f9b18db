"""BernoulliMixture: EM monotonicity, additive statistics, weights, the API, and the digits baseline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats as scipy_stats

from latentmix.em import ArrayData
from latentmix.mixture._bernoulli import (
    BernoulliMixture,
    BernoulliParams,
    _BernoulliFamily,
)


def make_binary(n: int = 300, n_features: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    half = n_features // 2
    means = np.array(
        [
            np.full(n_features, 0.15),
            np.full(n_features, 0.85),
            np.r_[np.full(half, 0.85), np.full(n_features - half, 0.15)],
        ]
    )
    labels = rng.randint(0, 3, n)
    return (rng.rand(n, n_features) < means[labels]).astype(np.float64), labels


def random_params(n_components: int, n_features: int, seed: int = 1) -> BernoulliParams:
    rng = np.random.RandomState(seed)
    weights = rng.dirichlet(np.ones(n_components))
    return BernoulliParams(weights, rng.uniform(0.05, 0.95, (n_components, n_features)))


def test_score_samples_matches_scipy() -> None:
    X, _ = make_binary(20, 5)
    bm = BernoulliMixture(3, random_state=0).fit(X)
    per_component = np.stack(
        [
            scipy_stats.bernoulli(p).logpmf(X).sum(1) + np.log(w)
            for w, p in zip(bm.weights_, bm.means_)
        ]
    )
    expected = np.logaddexp.reduce(per_component, axis=0)
    np.testing.assert_allclose(bm.score_samples(X), expected, rtol=1e-10)
    np.testing.assert_allclose(bm.predict_proba(X).sum(1), 1.0)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 2.0])
def test_em_never_lowers_the_map_lower_bound(alpha: float) -> None:
    X, _ = make_binary()
    w = np.random.RandomState(3).uniform(0.2, 3.0, X.shape[0])
    bm = BernoulliMixture(4, alpha=alpha, max_iter=200, tol=1e-10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence at tol=1e-10 is not the point here
        bm.fit(X, sample_weight=w)
    bounds = np.array(bm.lower_bounds_)
    assert len(bounds) > 5
    assert np.all(np.diff(bounds) >= -1e-10 * np.abs(bounds[1:]))


def test_statistics_of_halves_add_up() -> None:
    X, _ = make_binary(101)
    w = np.random.RandomState(0).uniform(0.1, 2.0, 101)
    family = _BernoulliFamily(3, X.shape[1], alpha=0.5)
    params = random_params(3, X.shape[1])
    whole = family.estep_stats(X, w, params)
    parts = family.estep_stats(X[:37], w[:37], params) + family.estep_stats(X[37:], w[37:], params)
    for name in ("resp", "resp_x", "log_prob", "weight"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-12)
    # And the chunked reducer gives the same as one chunk.
    chunked = ArrayData(X, w, chunk_size=10).reduce(
        lambda Xc, wc: family.estep_stats(Xc, wc, params)
    )
    np.testing.assert_allclose(chunked.resp_x, whole.resp_x, rtol=1e-12)


def test_weight_two_equals_duplication() -> None:
    X, _ = make_binary(80)
    w = np.ones(80)
    w[:25] = 2.0
    X_dup = np.vstack([X, X[:25]])
    family = _BernoulliFamily(3, X.shape[1], alpha=0.1)
    params = random_params(3, X.shape[1])
    a = family.mstep(family.estep_stats(X, w, params), params)
    b = family.mstep(family.estep_stats(X_dup, None, params), params)
    np.testing.assert_allclose(a.means, b.means, rtol=1e-12)
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-12)
    # A weighted fit's optimum is an optimum of the duplicated data: one more EM step on
    # the duplicated rows leaves it where it is (up to EM's slow last steps), and the
    # scores agree exactly.
    bm = BernoulliMixture(3, tol=1e-9, max_iter=1000, random_state=0).fit(X, sample_weight=w)
    stepped = family.mstep(family.estep_stats(X_dup, None, bm._params()), bm._params())
    np.testing.assert_allclose(stepped.means, bm.means_, atol=1e-4)
    np.testing.assert_allclose(bm.score(X, sample_weight=w), bm.score(X_dup), rtol=1e-12)
    np.testing.assert_allclose(bm.bic(X, sample_weight=w), bm.bic(X_dup), rtol=1e-12)


def test_fit_predict_equals_fit_then_predict() -> None:
    X, _ = make_binary()
    a = BernoulliMixture(3, random_state=0).fit_predict(X)
    b = BernoulliMixture(3, random_state=0).fit(X).predict(X)
    np.testing.assert_array_equal(a, b)


def test_recovers_the_components() -> None:
    from sklearn.metrics import adjusted_rand_score

    X, labels = make_binary(600)
    bm = BernoulliMixture(3, n_init=3, random_state=0).fit(X)
    assert bm.converged_
    assert adjusted_rand_score(labels, bm.predict(X)) > 0.9
    assert bm.means_.shape == (3, 12) and bm.weights_.shape == (3,)
    assert np.all((bm.means_ > 0) & (bm.means_ < 1))
    # The lower bound is the MAP objective at the final parameters.
    family = _BernoulliFamily(3, 12, bm.alpha)
    stats = family.estep_stats(X, None, bm._params())
    assert bm.lower_bound_ == pytest.approx(family.lower_bound(stats, bm._params()))


def test_sample_bic_aic_and_determinism() -> None:
    X, _ = make_binary()
    bm = BernoulliMixture(3, random_state=0).fit(X)
    Xs, ys = bm.sample(2000, random_state=0)
    assert Xs.shape == (2000, 12) and ys.shape == (2000,)
    assert set(np.unique(Xs)) <= {0.0, 1.0}
    np.testing.assert_allclose(Xs[ys == 0].mean(0), bm.means_[0], atol=0.1)
    np.testing.assert_array_equal(bm.sample(5, random_state=1)[0], bm.sample(5, random_state=1)[0])
    n_params = 3 * 12 + 2
    total = bm.score(X) * X.shape[0]
    assert bm.bic(X) == pytest.approx(-2 * total + n_params * np.log(X.shape[0]))
    assert bm.aic(X) == pytest.approx(-2 * total + 2 * n_params)
    one = BernoulliMixture(1).fit(X)
    assert one.bic(X) > bm.bic(X)
    again = BernoulliMixture(3, random_state=0).fit(X)
    np.testing.assert_array_equal(again.means_, bm.means_)


def test_bad_inputs_raise() -> None:
    X, _ = make_binary(30)
    with pytest.raises(ValueError, match="binary"):
        BernoulliMixture(2).fit(X * 3)
    with pytest.raises(ValueError, match="NaN"):
        BernoulliMixture(2).fit(np.where(X > 0, np.nan, X))
    with pytest.raises(ValueError, match="alpha"):
        BernoulliMixture(2, alpha=-1.0).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        BernoulliMixture(31).fit(X)
    bm = BernoulliMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        bm.predict(X[:, :5])
    with pytest.raises(ValueError, match="binary"):
        bm.score_samples(X - 1)


def test_model_file_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    io = pytest.importorskip("latentmix.io", reason="latentmix.io (save/load) not available yet")
    X, _ = make_binary()
    bm = BernoulliMixture(3, random_state=0).fit(X)
    io.save(bm, tmp_path / "bm.lmx")
    loaded = io.load(tmp_path / "bm.lmx")
    np.testing.assert_array_equal(loaded.score_samples(X), bm.score_samples(X))
    assert loaded.get_params() == bm.get_params()


def digits_split() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X > 7).astype(np.float64)
    X_train, X_test, _, _ = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    return X_train, X_test


def test_digits_baseline() -> None:
    """The EM baseline for binarised digits (reported in docs/vae.md): about -18.65 nats."""
    X_train, X_test = digits_split()
    bm = BernoulliMixture(20, alpha=0.1, max_iter=500, tol=1e-5, random_state=0).fit(X_train)
    score = bm.score(X_test)
    assert -19.0 < score < -18.3
