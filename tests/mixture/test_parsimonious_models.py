"""GaussianMixture with mclust's fourteen parsimonious covariance models (and E/V)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

import latentmix
from latentmix import GaussianMixture, select_mixture
from latentmix.gaussian._parsimonious import ALIASES, MODELS, n_parameters

FOURTEEN = tuple(m for m in MODELS if m not in ("E", "V"))
CONSTRAINED = tuple(m for m in FOURTEEN if m not in ALIASES.values())
MCLUST = Path(__file__).resolve().parents[1] / "data" / "mclust_models.csv"


@pytest.fixture(scope="module")
def iris() -> np.ndarray:
    return np.asarray(load_iris().data, dtype=np.float64)


@pytest.mark.parametrize("model", FOURTEEN)
def test_every_model_fits_iris_with_a_monotone_trace(iris, model):
    gm = GaussianMixture(
        3, covariance_type=model, reg_covar=0.0, tol=1e-8, max_iter=300, random_state=0
    ).fit(iris)
    assert gm.covariance_type == model
    trace = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(trace) >= -1e-10 * np.abs(trace[1:]))
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(gm, attr)))
    if model in CONSTRAINED:
        assert gm.covariances_.shape == (3, 4, 4)
    proba = gm.predict_proba(iris)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(gm.predict(iris), proba.argmax(axis=1))
    assert np.all(np.isfinite(gm.score_samples(iris)))
    for crit in (gm.bic(iris), gm.aic(iris), gm.icl(iris)):
        assert np.isfinite(crit)
    Xs, ys = gm.sample(20, random_state=0)
    assert Xs.shape == (20, 4) and ys.shape == (20,)


@pytest.mark.parametrize(("name", "alias"), [(m, a) for a, m in ALIASES.items()])
def test_mclust_aliases_are_bit_identical(iris, name, alias):
    kw = dict(n_components=3, random_state=1, n_init=2)
    a = GaussianMixture(covariance_type=name, **kw).fit(iris)
    b = GaussianMixture(covariance_type=alias, **kw).fit(iris)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr))
    assert a.lower_bounds_ == b.lower_bounds_
    assert a.bic(iris) == b.bic(iris)


def _mclust(dataset: str) -> pd.DataFrame:
    table = pd.read_csv(MCLUST, comment="#")
    return table[table["dataset"] == dataset]


@pytest.mark.parametrize("model", FOURTEEN)
def test_bic_uses_mclust_parameter_counts(iris, model):
    ref = _mclust("iris").set_index(["model", "G"])
    gm = GaussianMixture(2, covariance_type=model, reg_covar=0.0, random_state=0).fit(iris)
    df = n_parameters(model, 2, 4)
    assert gm._n_parameters() == df == int(ref.loc[(model, 2), "df"])
    ll = float(gm.score_samples(iris).sum())
    np.testing.assert_allclose(gm.bic(iris), -2 * ll + df * np.log(150), rtol=1e-12)
    np.testing.assert_allclose(gm.aic(iris), -2 * ll + 2 * df, rtol=1e-12)


@pytest.mark.parametrize("model", FOURTEEN)
def test_one_component_bic_equals_mclusts(iris, model):
    # One component: a unique optimum, so the same fit as mclust's (mclust's sign flipped).
    ref = _mclust("iris").set_index(["model", "G"])
    gm = GaussianMixture(1, covariance_type=model, reg_covar=0.0, tol=1e-10).fit(iris)
    np.testing.assert_allclose(gm.bic(iris), -float(ref.loc[(model, 1), "bic"]), rtol=1e-7)


def test_prior_with_a_constrained_model_is_a_clear_error(iris):
    # mclust defines no conjugate prior for VEE, EVE, VVE and EVV; the message says so.
    for model in ("VEE", "EVE", "VVE", "EVV"):
        with pytest.raises(ValueError, match="mclust does not define"):
            GaussianMixture(2, covariance_type=model, prior="default").fit(iris)
    # The aliases take the prior as their scikit-learn names do.
    a = GaussianMixture(2, covariance_type="VVI", prior="default", random_state=0).fit(iris)
    b = GaussianMixture(2, covariance_type="diag", prior="default", random_state=0).fit(iris)
    assert np.array_equal(a.covariances_, b.covariances_)


def test_one_dimensional_models_e_and_v(iris):
    x = iris[:, 2:3]
    e = GaussianMixture(2, covariance_type="E", reg_covar=0.0, random_state=0).fit(x)
    v = GaussianMixture(2, covariance_type="V", reg_covar=0.0, random_state=0).fit(x)
    assert e.covariances_.shape == v.covariances_.shape == (2, 1, 1)
    assert e.covariances_[0, 0, 0] == pytest.approx(e.covariances_[1, 0, 0], rel=1e-12)
    assert e._n_parameters() == 4 and v._n_parameters() == 5
    assert v.score(x) >= e.score(x) - 1e-9
    with pytest.raises(ValueError, match="one-dimensional"):
        GaussianMixture(2, covariance_type="E").fit(iris)


def test_model_file_round_trip(iris, tmp_path):
    gm = GaussianMixture(3, covariance_type="EVE", random_state=0).fit(iris)
    path = tmp_path / "eve.lmx"
    latentmix.save(gm, path)
    back = latentmix.load(path)
    assert back.covariance_type == "EVE"
    assert np.array_equal(back.predict_proba(iris), gm.predict_proba(iris))
    assert back.bic(iris) == gm.bic(iris)


@pytest.mark.parametrize("model", ["VEI", "EEV"])
def test_weight_two_equals_duplication(iris, model):
    w = np.ones(len(iris))
    w[::3] = 2.0
    dup = np.vstack([iris, iris[::3]])
    init = GaussianMixture(3, covariance_type=model, random_state=0).fit(iris)
    kw = dict(
        covariance_type=model,
        weights_init=init.weights_,
        means_init=init.means_,
        precisions_init=init.precisions_,
        tol=1e-10,
        max_iter=50,
    )
    a = GaussianMixture(3, **kw).fit(iris, sample_weight=w)
    b = GaussianMixture(3, **kw).fit(dup)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(a.bic(iris, sample_weight=w), b.bic(dup), rtol=1e-9)


def test_missing_values_with_a_constrained_model(iris):
    X = iris.copy()
    X[np.random.RandomState(0).rand(*X.shape) < 0.05] = np.nan
    gm = GaussianMixture(3, covariance_type="VEV", reg_covar=0.0, random_state=0).fit(X)
    trace = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(trace) >= -1e-10 * np.abs(trace[1:]))
    filled = gm.impute(X)
    assert not np.isnan(filled).any()
    assert np.isfinite(gm.bic(X))


def test_fixed_means_and_covariances(iris):
    ref = GaussianMixture(3, covariance_type="EVI", random_state=0).fit(iris)
    init = dict(weights_init=ref.weights_, means_init=ref.means_, precisions_init=ref.precisions_)
    means = GaussianMixture(3, covariance_type="EVI", fixed=("means",), **init).fit(iris)
    assert np.array_equal(means.means_, ref.means_)
    assert np.all(np.diff(means.lower_bounds_) >= -1e-12)
    assert means._n_parameters() == n_parameters("EVI", 3, 4) - 12
    covs = GaussianMixture(3, covariance_type="EVI", fixed=("covariances",), **init).fit(iris)
    np.testing.assert_allclose(covs.covariances_, ref.covariances_, rtol=1e-10)


def test_warm_start_and_partial_fit(iris):
    gm = GaussianMixture(3, covariance_type="VVE", random_state=0, max_iter=5, reg_covar=0.0)
    with pytest.warns(latentmix.ConvergenceWarning):
        gm.fit(iris)
    first = gm.lower_bound_
    gm.set_params(warm_start=True, max_iter=50)
    gm.fit(iris)
    assert gm.lower_bounds_[0] >= first - 1e-9
    stream = GaussianMixture(2, covariance_type="VEE", random_state=0)
    for chunk in np.array_split(iris, 3):
        stream.partial_fit(chunk)
    assert stream.covariances_.shape == (2, 4, 4)


def test_select_mixture_all_fourteen(iris):
    sel = select_mixture(iris, n_components=[1, 2], covariance_types="all", random_state=0)
    assert list(dict.fromkeys(sel.table_["covariance_type"])) == list(FOURTEEN)
    assert sel.best_params_ == {"n_components": 2, "covariance_type": "VEV"}  # as mclust
    default = select_mixture(iris, n_components=[2], random_state=0)
    assert set(default.table_["covariance_type"]) == {"full", "tied", "diag", "spherical"}
    with pytest.raises(ValueError, match="covariance_types"):
        select_mixture(iris, n_components=[2], covariance_types=["XYZ"])
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from latentmix.plot import plot_criterion

    ax = plot_criterion(sel)
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= set(FOURTEEN)


# -- log-likelihoods against mclust's, on the path users get ------------------------------------
def _load(name: str) -> np.ndarray:
    from sklearn.datasets import load_wine

    if name == "iris":
        return np.asarray(load_iris().data, dtype=np.float64)
    if name == "wine":
        return np.asarray(load_wine().data, dtype=np.float64)
    faithful = pd.read_csv(MCLUST.parent / "faithful.csv", comment="#")
    return faithful[["eruptions", "waiting"]].to_numpy(dtype=np.float64)


def _check_against_mclust(name: str, ks: range) -> None:
    """Every (model, K) cell of select_mixture is at least mclust's log-likelihood.

    The options of benchmarks/compare_mclust_models.py (no ridge to speak of, as mclust);
    cells where mclust has no fit are skipped (see benchmarks/PARSIMONIOUS.md).
    """
    ref = _mclust(name)
    ref = ref[ref["G"].isin(ks) & ref["loglik"].notna()]
    sel = select_mixture(
        _load(name),
        ks,
        covariance_types="all",
        tol=1e-6,
        max_iter=1000,
        reg_covar=1e-10,
        n_init=2,
        random_state=0,
    )
    ours = sel.table_.set_index(["n_components", "covariance_type"])["log_likelihood"]
    below = []
    for r in ref.itertuples():
        got = float(ours[(r.G, r.model)])
        if not got >= r.loglik - 1e-6 * abs(r.loglik):
            below.append((r.model, r.G, r.loglik, got))
    assert len(ref) > 0
    assert not below, f"{name}: cells below mclust (model, K, mclust, ours): {below}"


@pytest.mark.parametrize(("name", "ks"), [("faithful", range(1, 4)), ("iris", range(1, 3))])
def test_loglik_at_least_mclusts_fast_cases(name, ks):
    _check_against_mclust(name, ks)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["iris", "wine", "faithful"])
def test_loglik_at_least_mclusts_full_grid(name):
    _check_against_mclust(name, range(1, 10))


def test_dask_path_with_a_constrained_model(iris):
    da = pytest.importorskip("dask.array")
    gm = GaussianMixture(3, covariance_type="VEV", random_state=0, reg_covar=0.0)
    gm.fit(da.from_array(iris, chunks=50))
    assert gm.covariances_.shape == (3, 4, 4)
    trace = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(trace) >= -1e-10 * np.abs(trace[1:]))
    assert np.isfinite(gm.bic(iris))
