"""Every plot draws what it should: checked on the artists, and rendered to a real PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.patches import Ellipse
from PIL import Image
from sklearn.datasets import load_digits, load_iris

from latentmix import GaussianMixture
from latentmix import plot as lp
from latentmix.plot._base import Projection, full_covariances


@pytest.fixture(scope="module")
def iris() -> np.ndarray:
    return load_iris().data


@pytest.fixture(scope="module")
def gm(iris: np.ndarray) -> GaussianMixture:
    return GaussianMixture(3, random_state=0).fit(iris)


def _png_ok(obj: object, size: tuple[int, int] | None = None) -> None:
    fig = getattr(obj, "figure", obj)
    picture = Image.open(io.BytesIO(lp.to_png(fig)))  # type: ignore[arg-type]
    expected = tuple(int(np.rint(v)) for v in fig.get_size_inches() * fig.dpi)  # type: ignore[attr-defined]
    assert picture.size == (size or expected)
    assert np.asarray(picture.convert("L")).std() > 5


@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_ellipses_match_the_covariances_in_2d(iris: np.ndarray, ct: str) -> None:
    X = iris[:, 2:]
    model = GaussianMixture(2, covariance_type=ct, random_state=0).fit(X)
    ax = lp.plot_clusters(model, X, sigmas=(1.0, 2.0))
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(ellipses) == 4
    cov = full_covariances(model)
    for k in range(2):
        e1, e2 = ellipses[2 * k], ellipses[2 * k + 1]
        np.testing.assert_allclose(e1.center, model.means_[k])
        vals = np.linalg.eigvalsh(cov[k])
        np.testing.assert_allclose(sorted([e1.width, e1.height]), 2 * np.sqrt(vals), rtol=1e-9)
        np.testing.assert_allclose(e2.width, 2 * e1.width)
    if ct == "full":  # one render is enough: the artists above are what differs
        _png_ok(ax, (640, 480))


def test_projection_is_pca_and_projects_covariances(iris: np.ndarray, gm: GaussianMixture) -> None:
    proj = Projection(iris)
    P = proj.points(iris)
    np.testing.assert_allclose(P.mean(axis=0), 0, atol=1e-12)
    assert P[:, 0].var() > P[:, 1].var()
    assert abs(np.corrcoef(P.T)[0, 1]) < 1e-10
    c = full_covariances(gm)[0]
    np.testing.assert_allclose(proj.covariance(c), np.cov(
        np.random.default_rng(0).multivariate_normal(np.zeros(4), c, 200_000) @ proj.basis,
        rowvar=False), rtol=0.05, atol=1e-3)  # fmt: skip
    ax = lp.plot_clusters(gm, iris)
    assert "principal axis 1" in ax.get_xlabel()
    _png_ok(ax)


def test_pairs_uncertainty_trace_criterion_silhouette(
    iris: np.ndarray, gm: GaussianMixture
) -> None:
    import pandas as pd

    fig = lp.plot_pairs(gm, iris, max_features=3)
    assert len(fig.axes) == 9
    _png_ok(fig)

    ax = lp.plot_uncertainty(gm, iris)
    unc = 1 - gm.predict_proba(iris).max(axis=1)
    np.testing.assert_allclose(np.sort(ax.collections[0].get_array()), np.sort(unc))
    _png_ok(ax)

    ax = lp.plot_lower_bounds(gm)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), gm.lower_bounds_)
    _png_ok(ax)

    table = pd.DataFrame({
        "n_components": [1, 2, 3, 1, 2, 3], "covariance_type": ["full"] * 3 + ["diag"] * 3,
        "bic": [10.0, 5.0, 7.0, 12.0, 8.0, 4.0],
    })  # fmt: skip
    ax = lp.plot_criterion(table, "bic")
    assert [line.get_label() for line in ax.lines[:2]] == ["full", "diag"]
    assert ax.lines[2].get_label() == "best: K=3, diag"
    with pytest.raises(ValueError, match="no 'icl' column"):
        lp.plot_criterion(table, "icl")
    _png_ok(ax)

    from latentmix.cluster import silhouette_samples

    labels = gm.predict(iris)
    ax = lp.plot_silhouette(labels, silhouette_samples(iris, labels))
    assert len(ax.collections) == 3
    assert ax.lines[0].get_xdata()[0] == pytest.approx(silhouette_samples(iris, labels).mean())
    _png_ok(ax)


def test_vae_pictures() -> None:
    digits = load_digits().data[:16]
    fig = lp.plot_sample_grid(digits, n_cols=8)
    assert sum(1 for a in fig.axes if a.images) == 16
    _png_ok(fig)
    fig = lp.plot_reconstructions(digits, digits[::-1])
    assert sum(1 for a in fig.axes if a.images) == 16
    _png_ok(fig)
    fig = lp.plot_reconstructions(np.ones((3, 5)), np.zeros((3, 5)))  # not images: profiles
    assert len(fig.axes) == 3
    ax = lp.plot_latent(np.random.default_rng(0).normal(size=(50, 2)), labels=np.arange(50) % 3)
    assert len(ax.collections) == 3
    _png_ok(ax)
    with pytest.raises(ValueError, match="not square images"):
        lp.plot_sample_grid(np.ones((2, 10)))


def test_projection_standardises_features_on_very_different_scales() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) * np.array([1.0, 2.0, 500.0])
    X[:, 1] += X[:, 0]  # the small features carry the structure
    proj = Projection(X)
    assert proj.standardised and "standardised" in proj.labels[0]
    P = proj.points(X)
    assert abs(np.corrcoef(P.T)[0, 1]) < 1e-10
    # The big feature does not take the first axis to itself.
    z = (X - X.mean(axis=0)) / X.std(axis=0)
    np.testing.assert_allclose(
        P[:, 0].var() + P[:, 1].var(), np.linalg.eigvalsh(np.cov(z.T, bias=True))[-2:].sum()
    )
    assert not Projection(X[:, :2]).standardised  # two features: plotted as they are
