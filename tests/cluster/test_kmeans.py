"""KMeans and k-means++ against scikit-learn from the same start, properties, bad input."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

import latentmix.cluster._kernels as kernels_module
import latentmix.cluster._kmeans as kmeans_module
from latentmix.cluster import KMeans, kmeans_plusplus
from latentmix.cluster._kmeans import KMeansParams, LloydFamily
from latentmix.em import ArrayData, run_em

RTOL = 1e-10


def _dataset(kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    if kind == "blobs":  # tight clusters far from the origin: a precision test
        centers = rng.uniform(-100, 100, size=(6, 4))
        return np.repeat(centers, 80, axis=0) + 0.05 * rng.randn(480, 4)
    if kind == "anisotropic":
        return rng.randn(700, 5) * np.array([10.0, 1.0, 0.1, 3.0, 0.01]) + 7.0
    return rng.rand(400, 2)  # "uniform": no cluster structure, many iterations


@pytest.fixture(params=["numpy", "numba"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once with the NumPy kernel and once with the Numba kernel."""
    if request.param == "numba":
        if not kmeans_module.HAVE_NUMBA:
            pytest.skip("numba is not installed")
        monkeypatch.setattr(kmeans_module, "NUMBA_MIN_WORK", 0)
    else:
        monkeypatch.setattr(kmeans_module, "NUMBA_MIN_WORK", 1 << 62)
    return str(request.param)


def _assert_same_as_sklearn(ours: KMeans, ref: SkKMeans) -> None:
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=RTOL, atol=1e-12)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=RTOL)
    assert ours.n_iter_ == ref.n_iter_


@pytest.mark.parametrize("kind", ["blobs", "anisotropic", "uniform"])
@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_matches_sklearn_from_same_start(kind: str, weighted: bool, kernel: str) -> None:
    X = _dataset(kind)
    rng = np.random.RandomState(1)
    w = rng.uniform(0.1, 3.0, size=X.shape[0]) if weighted else None
    init = X[rng.choice(X.shape[0], 6, replace=False)]
    ours = KMeans(6, init=init, n_init=1).fit(X, sample_weight=w)
    ref = SkKMeans(6, init=init, n_init=1, algorithm="lloyd").fit(X, sample_weight=w)
    _assert_same_as_sklearn(ours, ref)


def test_unconverged_run_relabels_like_sklearn(kernel: str) -> None:
    # max_iter=2 stops before convergence: labels must follow the final centers.
    X = _dataset("uniform")
    init = X[:5]
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        ours = KMeans(5, init=init, n_init=1, max_iter=2, tol=0.0).fit(X)
    ref = SkKMeans(5, init=init, n_init=1, max_iter=2, tol=0.0, algorithm="lloyd").fit(X)
    _assert_same_as_sklearn(ours, ref)


def test_tol_uses_mean_variance_like_sklearn(kernel: str) -> None:
    X = _dataset("anisotropic")
    init = X[:4]
    ours = KMeans(4, init=init, tol=1e-2).fit(X)
    ref = SkKMeans(4, init=init, n_init=1, tol=1e-2, algorithm="lloyd").fit(X)
    _assert_same_as_sklearn(ours, ref)
    assert ours.n_iter_ < KMeans(4, init=init, tol=0.0).fit(X).n_iter_


def test_empty_cluster_is_reseeded_like_sklearn(kernel: str) -> None:
    # The third initial center is far from every row: it gets no row on the first
    # assignment and must be re-seeded from the row farthest from its center.
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(50, 2), rng.randn(50, 2) + 8.0])
    init = np.array([[0.0, 0.0], [8.0, 8.0], [1000.0, -1000.0]])
    ours = KMeans(3, init=init).fit(X)
    ref = SkKMeans(3, init=init, n_init=1, algorithm="lloyd").fit(X)
    _assert_same_as_sklearn(ours, ref)
    assert ours.n_reseeded_ == 1
    assert len(np.unique(ours.labels_)) == 3
    assert KMeans(2, init=init[:2]).fit(X).n_reseeded_ == 0


def test_reseeding_two_empty_clusters_keeps_all_clusters(kernel: str) -> None:
    rng = np.random.RandomState(3)
    X = rng.randn(200, 3)
    init = np.vstack([X[:2], np.full((2, 3), 1e6)])
    km = KMeans(4, init=init).fit(X)
    assert km.n_reseeded_ == 2
    assert len(np.unique(km.labels_)) == 4
    assert np.all(np.isfinite(km.cluster_centers_))


def test_duplicate_points_cannot_fill_all_clusters() -> None:
    X = np.repeat([[0.0, 0.0], [1.0, 1.0]], 10, axis=0)
    with pytest.warns(ConvergenceWarning, match="distinct clusters"):
        km = KMeans(3, init=np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])).fit(X)
    assert km.inertia_ == 0.0


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_matches_sklearn(weighted: bool) -> None:
    X = _dataset("anisotropic")
    w = np.random.RandomState(5).uniform(0.0, 2.0, size=X.shape[0]) if weighted else None
    centers, indices = kmeans_plusplus(X, 7, sample_weight=w, random_state=42)
    ref_centers, ref_indices = sk_kmeans_plusplus(X, 7, sample_weight=w, random_state=42)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(centers, ref_centers)
    np.testing.assert_array_equal(X[indices], centers)


def test_kmeans_plusplus_n_local_trials_and_float32() -> None:
    X = _dataset("blobs").astype(np.float32)
    centers, indices = kmeans_plusplus(X, 6, random_state=0, n_local_trials=1)
    assert centers.dtype == np.float32
    assert len(set(indices.tolist())) == 6
    # With well separated blobs, greedy k-means++ finds one seed per blob.
    assert len(set((indices // 80).tolist())) == 6


def test_default_init_and_mixture_init_call(kernel: str) -> None:
    # The call GaussianMixture uses for its initial responsibilities.
    X = _dataset("blobs")
    w = np.random.RandomState(0).uniform(0.5, 1.5, size=X.shape[0])
    labels = KMeans(n_clusters=6, n_init=1, random_state=0).fit(X, sample_weight=w).labels_
    assert labels.shape == (X.shape[0],)
    assert sorted(np.bincount(labels).tolist()) == [80] * 6
    # "random" runs 10 restarts by default and keeps the best.
    km = KMeans(6, init="random", random_state=0).fit(X)
    best_single = min(
        KMeans(6, init="random", n_init=1, random_state=s).fit(X).inertia_ for s in range(3)
    )
    assert km.inertia_ <= best_single * (1 + 1e-12) or km.inertia_ < 0.05**2 * 4 * 480 * 1.5


def test_transform_score_predict(kernel: str) -> None:
    X = _dataset("anisotropic")
    km = KMeans(4, random_state=0).fit(X)
    ref = SkKMeans(4, init=km.cluster_centers_, n_init=1, max_iter=1).fit(X)
    Xn = X[:50] + 0.5
    D = km.transform(Xn)
    expected = np.sqrt(((Xn[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(D, expected, rtol=1e-8)
    np.testing.assert_array_equal(km.predict(Xn), D.argmin(axis=1))
    np.testing.assert_allclose(km.score(X), -km.inertia_, rtol=RTOL)
    w = np.arange(X.shape[0], dtype=float) % 3
    np.testing.assert_allclose(
        km.score(X, sample_weight=w), ref.score(X, sample_weight=w), rtol=1e-9
    )
    np.testing.assert_allclose(km.fit_transform(X), km.transform(X))


@pytest.mark.skipif(not kernels_module.HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("shape", [(16, 16), (19, 21), (8, 8), (3, 9), (17, 5), (2, 40)])
@pytest.mark.parametrize("weighted", [False, True])
def test_numba_kernel_equals_numpy_kernel(shape: tuple, weighted: bool) -> None:
    # Sizes around the 8-lane steps of the row-major kernel (its vector part and scalar
    # remainder over features and clusters). Small integers everywhere make every
    # product exact in any summation order, so the many exact ties (and two duplicated
    # centers) must go to the first center, as NumPy's argmin (and scikit-learn) decide.
    d, k = shape
    rng = np.random.RandomState(d * 100 + k)
    X = rng.randint(-4, 5, size=(700, d)).astype(float) + 30.0
    w = rng.uniform(0.1, 3.0, size=len(X)) if weighted else None
    shift = np.full(d, 30.0)
    C = rng.randint(-3, 4, size=(k, d)).astype(float)
    if k > 6:
        C[k - 1] = C[1]  # a tie across 8-lane steps when k > 9, within one otherwise
        C[5] = C[2]
        X[:20] = C[2] + shift  # rows exactly on the duplicated center
    kw = {"n_top": k - 1, "want_labels": True}
    ref = kernels_module.assign_chunk(X, w, shift, C, use_numba=False, **kw)
    got = kernels_module.assign_chunk(X, w, shift, C, use_numba=True, **kw)
    assert got.labels is not None and ref.labels is not None
    np.testing.assert_array_equal(got.labels, ref.labels)
    if k > 6:
        assert not np.any(got.labels == 5) and not np.any(got.labels == k - 1)
        assert np.all(got.labels[:20] == 2) and np.all(got.min_dist[:20] == 0.0)
    np.testing.assert_allclose(got.sums, ref.sums, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(got.weights, ref.weights, rtol=1e-13)
    np.testing.assert_allclose(got.min_dist, ref.min_dist, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(got.inertia, ref.inertia, rtol=1e-12)
    # The farthest distances agree; which of equally far rows are kept may differ.
    np.testing.assert_allclose(np.sort(got.top_dist), np.sort(ref.top_dist), rtol=1e-12)
    np.testing.assert_array_equal(got.min_dist[got.top_rows], got.top_dist)
    np.testing.assert_array_equal(got.labels[got.top_rows], got.top_labels)


def test_float32_input_keeps_dtype() -> None:
    X = _dataset("blobs").astype(np.float32)
    km = KMeans(6, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == np.float32
    assert km.transform(X).dtype == np.float32


# ---------------------------------------------------------------------------------- props


@st.composite
def _data(
    draw: st.DrawFn, max_d: int = 4, max_k: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    seed = draw(st.integers(0, 2**31 - 1))
    n = draw(st.integers(4, 60))
    d = draw(st.integers(1, max_d))
    k = draw(st.integers(1, min(max_k, n)))
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * draw(st.sampled_from([1e-3, 1.0, 1e3])) + draw(
        st.sampled_from([0.0, 50.0])
    )
    w = rng.uniform(0.0, 3.0, size=n)
    C = X[rng.choice(n, k, replace=False)]
    return X, w, C, draw(st.integers(1, n - 1))


@pytest.mark.parametrize("use_numba", [False, True])
@settings(max_examples=40)
@given(data=_data(max_d=20, max_k=20))  # past the Numba kernel's 8-lane steps
def test_statistics_of_halves_add_up(data: tuple, use_numba: bool) -> None:
    X, w, C, a = data
    shift = X.mean(axis=0)
    family = LloydFamily(C.shape[0], X.shape[1], shift, use_numba=use_numba)
    params = KMeansParams(C - shift)
    whole = family.estep_stats(X, w, params)
    halves = family.estep_stats(X[:a], w[:a], params) + family.estep_stats(X[a:], w[a:], params)
    np.testing.assert_allclose(halves.sums, whole.sums, rtol=1e-9, atol=1e-9 * np.abs(X).max())
    np.testing.assert_allclose(halves.weights, whole.weights, rtol=1e-12)
    np.testing.assert_allclose(halves.inertia, whole.inertia, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(np.sort(halves.far_dist), np.sort(whole.far_dist), rtol=1e-12)
    assert len(whole.far_dist) == min(C.shape[0] - 1, X.shape[0])


@settings(max_examples=25)
@given(data=_data())
def test_weight_two_equals_duplicating_the_row(data: tuple) -> None:
    X, _, C, a = data
    w = np.ones(X.shape[0])
    w[a] = 2.0
    weighted = KMeans(C.shape[0], init=C).fit(X, sample_weight=w)
    duplicated = KMeans(C.shape[0], init=C).fit(np.vstack([X, X[a : a + 1]]))
    np.testing.assert_allclose(
        weighted.cluster_centers_,
        duplicated.cluster_centers_,
        rtol=1e-9,
        atol=1e-9 * np.abs(X).max(),
    )
    np.testing.assert_allclose(weighted.inertia_, duplicated.inertia_, rtol=1e-9, atol=1e-300)
    np.testing.assert_array_equal(weighted.labels_, duplicated.labels_[:-1])


@settings(max_examples=15)
@given(data=_data())
def test_inertia_never_increases_over_lloyd_iterations(data: tuple) -> None:
    X, w, C, _ = data
    shift = X.mean(axis=0)
    family = LloydFamily(C.shape[0], X.shape[1], shift)
    result = run_em(
        family,
        ArrayData(X, w, chunk_size=7),
        n_init=1,
        max_iter=30,
        tol=0.0,
        random_state=np.random.RandomState(0),
        init_params=KMeansParams(C - shift),
    )
    bounds = np.array(result.lower_bounds)  # minus inertia per unit weight
    spread = float(np.mean(np.sum((X - shift) ** 2, axis=1)))  # rounding scale of the bound
    assert np.all(np.diff(bounds) >= -1e-12 * spread)


@settings(max_examples=20)
@given(data=_data(), seed=st.integers(0, 100))
def test_fit_predict_equals_fit_then_predict(data: tuple, seed: int) -> None:
    X, w, C, _ = data
    labels = KMeans(C.shape[0], random_state=seed).fit_predict(X, sample_weight=w)
    km = KMeans(C.shape[0], random_state=seed).fit(X, sample_weight=w)
    np.testing.assert_array_equal(labels, km.predict(X))
    np.testing.assert_array_equal(labels, km.labels_)


# ------------------------------------------------------------------------------ bad input


def test_bad_input_messages() -> None:
    X = _dataset("uniform")
    with pytest.raises(ValueError, match=r"n_samples >= n_clusters.*n_samples=3"):
        KMeans(4).fit(X[:3])
    with pytest.raises(ValueError, match=r"shape of the initial centers \(2, 2\).*\(3, 2\)"):
        KMeans(3, init=X[:2]).fit(X)
    with pytest.raises(ValueError, match="init contains NaN"):
        KMeans(2, init=np.array([[0.0, np.nan], [1.0, 1.0]])).fit(X)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        KMeans(2).fit(bad)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        KMeans(2).fit(bad)
    km = KMeans(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        km.predict(np.ones((3, 5)))
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(0).fit(X)
    with pytest.raises(ValueError, match="init"):
        KMeans(2, init="kmeans").fit(X)
    with pytest.raises(ValueError, match="sample_weight"):
        KMeans(2).fit(X, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="n_samples >= n_clusters"):
        kmeans_plusplus(X[:2], 3)
    with pytest.warns(RuntimeWarning, match="only one init"):
        KMeans(2, init=X[:2], n_init=3).fit(X)


# Each bad value, and a phrase of what the message must say is allowed.
INVALID_PARAMETERS = [
    ("n_clusters", 0, r"an int in the range \[1, inf\)"),
    ("n_clusters", 2.0, r"an int in the range \[1, inf\)"),
    ("n_clusters", "3", r"an int in the range \[1, inf\)"),
    ("n_clusters", True, r"an int in the range \[1, inf\)"),
    ("init", "kmeans", r"a str among \{'k-means\+\+', 'random'\} or an array-like"),
    ("init", None, r"a str among \{'k-means\+\+', 'random'\} or an array-like"),
    ("n_init", 0, r"a str among \{'auto'\} or an int in the range \[1, inf\)"),
    ("n_init", "one", r"a str among \{'auto'\} or an int in the range \[1, inf\)"),
    ("max_iter", 0, r"an int in the range \[1, inf\)"),
    ("max_iter", 10.5, r"an int in the range \[1, inf\)"),
    ("tol", -1e-4, r"a float in the range \[0, inf\)"),
    ("tol", float("nan"), r"a float in the range \[0, inf\)"),
    ("tol", "small", r"a float in the range \[0, inf\)"),
    ("verbose", -1, r"an int in the range \[0, inf\) or a bool"),
    ("random_state", -1, r"None, an int in the range \[0, 2\*\*32 - 1\] or a numpy RandomState"),
    ("random_state", 2**32, r"an int in the range \[0, 2\*\*32 - 1\]"),
    ("random_state", np.random.default_rng(0), r"or a numpy RandomState"),
]


@pytest.mark.parametrize(("name", "value", "allowed"), INVALID_PARAMETERS)
def test_invalid_parameter_is_named_with_its_value_and_what_is_allowed(
    name: str, value: object, allowed: str
) -> None:
    X = _dataset("uniform")
    km = KMeans(2).set_params(**{name: value})
    # Both a ValueError and a TypeError, as scikit-learn's InvalidParameterError was.
    with pytest.raises(ValueError, match=rf"^The '{name}' parameter of KMeans must be ") as info:
        km.fit(X)
    assert isinstance(info.value, TypeError)
    message = str(info.value)
    assert re.search(allowed, message), message
    assert message.endswith(f"Got {value!r} instead.")
    assert not hasattr(km, "cluster_centers_")


def test_parameters_are_checked_before_the_data_on_every_path(tmp_path: Path) -> None:
    X = _dataset("uniform")
    bad_X = X.copy()
    bad_X[0, 0] = np.nan
    # The parameter error comes first, whatever is wrong with X.
    with pytest.raises(ValueError, match="'n_clusters' parameter of KMeans"):
        KMeans(0).fit(bad_X)
    # Out-of-core data (a .npy path) goes through the same check ...
    path = tmp_path / "X.npy"
    np.save(path, X)
    with pytest.raises(ValueError, match="'tol' parameter of KMeans"):
        KMeans(2, tol=-1.0).fit(str(path))
    # ... and so does a mini-batch step, which leaves the estimator unfitted.
    km = KMeans(2, random_state=-3)
    with pytest.raises(ValueError, match="'random_state' parameter of KMeans"):
        km.partial_fit(X)
    assert not hasattr(km, "cluster_centers_") and not hasattr(km, "counts_")


@pytest.mark.parametrize(
    "params",
    [
        {"n_clusters": np.int64(3)},
        {"init": "random", "n_init": 2},
        {"init": [[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]]},
        {"n_init": np.int32(2)},
        {"max_iter": 1},
        {"tol": 0},
        {"tol": np.float32(1e-3)},
        {"verbose": True},
        {"verbose": np.int64(0)},
        {"random_state": 2**32 - 1},
        {"random_state": np.int64(5)},
        {"random_state": np.random.RandomState(0)},
    ],
)
def test_edge_of_the_allowed_values_fits(params: dict[str, object]) -> None:
    # What scikit-learn's KMeans accepts for these parameters is accepted here too.
    X = _dataset("uniform")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=1
        km = KMeans(**{"n_clusters": 3, "random_state": 0, **params}).fit(X)  # type: ignore[arg-type]
    assert km.cluster_centers_.shape == (3, 2)
    SkKMeans(**{"n_clusters": 3, "random_state": 0, **params}).fit(X)  # type: ignore[arg-type]


def _expected_failed_checks(estimator: KMeans) -> dict[str, str]:
    # The same exemption scikit-learn makes for its own KMeans: k-means++ draws its seeds
    # from the rows, so weighting a row and repeating it give different (equally valid)
    # random seeds. With fixed initial centers the equivalence is exact and tested above
    # (test_weight_two_equals_duplicating_the_row).
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "random seeding depends on the row layout; tested with fixed centers instead"
        )
    }


@parametrize_with_checks(
    [KMeans(n_clusters=3, random_state=0)], expected_failed_checks=_expected_failed_checks
)
def test_sklearn_estimator_contract(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)


def test_works_without_numba() -> None:
    # Numba is optional: with it hidden, the NumPy kernel gives scikit-learn's answer.
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "import latentmix.cluster._kmeans as m\n"
        "from sklearn.cluster import KMeans as Sk\n"
        "assert not m.HAVE_NUMBA\n"
        "m.NUMBA_MIN_WORK = 0\n"
        "X = np.random.RandomState(0).randn(300, 3)\n"
        "a = m.KMeans(4, init=X[:4]).fit(X)\n"
        "b = Sk(4, init=X[:4], n_init=1).fit(X)\n"
        "assert (a.labels_ == b.labels_).all() and a.n_iter_ == b.n_iter_\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_verbose_logs_instead_of_printing(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    X = _dataset("blobs")
    with caplog.at_level(logging.INFO, logger="latentmix"):
        KMeans(6, random_state=0, verbose=1).fit(X)
    assert any("KMeans: run 0, inertia" in r.getMessage() for r in caplog.records)
    assert capsys.readouterr().out == ""
