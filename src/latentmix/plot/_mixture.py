"""Plots of a fitted clustering: clusters with sigma ellipses, pairs, uncertainty, EM trace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from numpy.typing import ArrayLike, NDArray

from latentmix.plot._base import Projection, color, full_covariances, new_axes, new_figure

__all__ = ["plot_clusters", "plot_lower_bounds", "plot_pairs", "plot_uncertainty"]


def _labels(model: Any, X: ArrayLike, labels: ArrayLike | None) -> NDArray[np.intp]:
    # X as the caller gave it: a DataFrame keeps the column names the model checks.
    if labels is not None:
        return np.asarray(labels, dtype=np.intp)
    if model is None:
        raise ValueError("give a fitted model or the labels")
    return np.asarray(model.predict(X), dtype=np.intp)


def _is_gaussian(model: Any) -> bool:
    return model is not None and hasattr(model, "covariances_") and hasattr(model, "means_")


def _ellipse(
    ax: Axes, mean: NDArray[np.float64], cov: NDArray[np.float64], n_sigma: float, **kw: Any
) -> None:
    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0.0, None)
    angle = float(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])))
    width, height = 2.0 * n_sigma * np.sqrt(vals[1]), 2.0 * n_sigma * np.sqrt(vals[0])
    ax.add_patch(
        Ellipse((float(mean[0]), float(mean[1])), width, height, angle=angle, fill=False, **kw)
    )


def _draw_clusters(
    ax: Axes,
    P: NDArray[np.float64],
    labels: NDArray[np.intp],
    means: NDArray[np.float64] | None,
    covs: NDArray[np.float64] | None,
    sigmas: Sequence[float],
    n_components: int,
    point_size: float,
) -> None:
    for k in range(n_components):
        rows = labels == k
        if rows.any():
            ax.scatter(
                P[rows, 0], P[rows, 1], s=point_size, color=color(k), alpha=0.7,
                linewidths=0, label=f"{k} ({int(rows.sum())})",
            )  # fmt: skip
    if means is None:
        return
    for k in range(n_components):
        if covs is not None:
            for j, n_sigma in enumerate(sigmas):
                _ellipse(
                    ax, means[k], covs[k], n_sigma, edgecolor=color(k),
                    linewidth=1.6 - 0.4 * j, alpha=0.9 - 0.25 * j,
                )  # fmt: skip
        ax.plot(
            means[k, 0], means[k, 1], marker="X", markersize=9, color=color(k),
            markeredgecolor="black", linestyle="none",
        )  # fmt: skip


def plot_clusters(
    model: Any,
    X: ArrayLike,
    *,
    labels: ArrayLike | None = None,
    dims: tuple[int, int] | None = None,
    sigmas: Sequence[float] = (1.0, 2.0, 3.0),
    feature_names: list[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Scatter of X coloured by cluster, with each Gaussian component's sigma ellipses.

    With two features the data are plotted as they are; with more, on the first two
    principal axes of X (or on the features ``dims``). The ellipses are the exact
    projections of each component's covariance, at 1, 2 and 3 standard deviations by
    default; component means are marked with an X. A model without covariances (KMeans)
    gets its centres marked, without ellipses.

    Parameters
    ----------
    model : fitted GaussianMixture, BayesianGaussianMixture or KMeans
        Supplies the labels (``predict``) unless ``labels`` is given, and the components.
    X : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,), default=None
    dims : tuple of two ints, default=None
        Features to plot instead of the principal axes.
    sigmas : sequence of float, default=(1, 2, 3)
        Radii of the ellipses, in standard deviations.
    feature_names : list of str, default=None
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    title : str, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix import GaussianMixture
    >>> from latentmix.plot import plot_clusters
    >>> X = np.random.RandomState(0).randn(100, 2)
    >>> ax = plot_clusters(GaussianMixture(2, random_state=0).fit(X), X)
    >>> ax.figure.savefig("clusters.png")  # doctest: +SKIP
    """
    Xv = np.asarray(X, dtype=np.float64)
    lab = _labels(model, X, labels)
    proj = Projection(Xv, dims, feature_names)
    ax = new_axes(ax)
    P = proj.points(Xv)
    means = covs = None
    if _is_gaussian(model):
        means = proj.points(model.means_)
        covs = np.stack([proj.covariance(c) for c in full_covariances(model)])
    elif model is not None and hasattr(model, "cluster_centers_"):
        means = proj.points(model.cluster_centers_)
    n_components = int(max(lab.max() + 1, 0 if means is None else means.shape[0]))
    size = float(np.clip(3000.0 / max(len(P), 1), 4.0, 30.0))
    _draw_clusters(ax, P, lab, means, covs, sigmas, n_components, size)
    proj.label(ax)
    ax.legend(title="cluster (rows)", fontsize="small", loc="best", markerscale=1.5)
    if title is None:
        what = "1/2/3-sigma ellipses" if covs is not None else "centres marked"
        title = f"clusters, {what}"
    ax.set_title(title)
    ax.autoscale_view()
    return ax


def plot_pairs(
    model: Any,
    X: ArrayLike,
    *,
    labels: ArrayLike | None = None,
    feature_names: list[str] | None = None,
    max_features: int = 6,
    sigmas: Sequence[float] = (1.0, 2.0),
    size: float = 2.0,
) -> Figure:
    """Pairs plot: every pair of (the first ``max_features``) features, coloured by cluster.

    Off the diagonal, a scatter of two features with each component's ellipses (the
    exact 2-D marginal of its covariance); on the diagonal, one histogram per cluster.

    Returns
    -------
    fig : matplotlib Figure
    """
    Xv = np.asarray(X, dtype=np.float64)
    lab = _labels(model, X, labels)
    d = min(Xv.shape[1], max_features)
    names = (feature_names or [f"x{i}" for i in range(Xv.shape[1])])[:d]
    fig = new_figure((size * d + 0.6, size * d + 0.4))
    axes = fig.subplots(d, d, squeeze=False)
    gaussian = _is_gaussian(model)
    covs = full_covariances(model) if gaussian else None
    means = np.asarray(model.means_) if gaussian else None
    n_components = int(lab.max() + 1)
    point = float(np.clip(600.0 / max(len(Xv), 1), 1.5, 10.0))
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if i == j:
                bins = np.histogram_bin_edges(Xv[:, i], bins=20)
                for k in range(n_components):
                    if (lab == k).any():
                        ax.hist(Xv[lab == k, i], bins=bins, color=color(k), alpha=0.6)
            else:
                sub = [j, i]
                m = None if means is None else means[:, sub]
                c = None if covs is None else covs[:, sub][:, :, sub]
                _draw_clusters(ax, Xv[:, sub], lab, m, c, sigmas, n_components, point)
                ax.autoscale_view()
            if i == d - 1:
                ax.set_xlabel(names[j], fontsize="small")
            else:
                ax.set_xticklabels([])
            if j == 0:
                ax.set_ylabel(names[i], fontsize="small")
            # Counts on the diagonal would read as the row's feature: no y ticks there;
            # each row's scale is shown on its first off-diagonal panel.
            if i == j:
                ax.set_yticks([])
            elif j != (1 if i == 0 else 0):
                ax.set_yticklabels([])
            ax.tick_params(labelsize="x-small")
    shown = "" if d == Xv.shape[1] else f" (first {d} of {Xv.shape[1]} features)"
    fig.suptitle(f"pairs plot by cluster{shown}")
    return fig


def plot_uncertainty(
    model: Any,
    X: ArrayLike,
    *,
    dims: tuple[int, int] | None = None,
    feature_names: list[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Classification uncertainty 1 − max_k p(k | x), as mclust draws it.

    Each row is a point on the two plotting axes (features or principal axes); its size
    and darkness grow with its uncertainty, so the rows between components stand out.

    Returns
    -------
    ax : matplotlib Axes
    """
    Xv = np.asarray(X, dtype=np.float64)
    resp = np.asarray(model.predict_proba(X), dtype=np.float64)
    unc = 1.0 - resp.max(axis=1)
    k = resp.shape[1]
    top = 1.0 - 1.0 / k if k > 1 else 1.0
    proj = Projection(Xv, dims, feature_names)
    P = proj.points(Xv)
    ax = new_axes(ax)
    order = np.argsort(unc)  # the most uncertain on top
    sizes = 6.0 + 120.0 * unc[order] / top
    points = ax.scatter(
        P[order, 0], P[order, 1], c=unc[order], s=sizes, cmap="magma_r", vmin=0.0, vmax=top,
        edgecolors="grey", linewidths=0.3,
    )  # fmt: skip
    ax.figure.colorbar(points, ax=ax, label="uncertainty 1 − max p(k | x)")
    proj.label(ax)
    n_high = int((unc > 0.2).sum())
    ax.set_title(f"classification uncertainty ({n_high} rows above 0.2)")
    return ax


def plot_lower_bounds(
    model: Any, *, ax: Axes | None = None, label: str = "average log-likelihood"
) -> Axes:
    """The EM trace: the lower bound (average log-likelihood) at every iteration of a fit.

    Parameters
    ----------
    model : fitted estimator with ``lower_bounds_``
    ax : matplotlib Axes, default=None
    label : str
        The y-axis label (``"ELBO"`` for variational models).

    Returns
    -------
    ax : matplotlib Axes
    """
    trace = np.asarray(getattr(model, "lower_bounds_", []), dtype=np.float64)
    if trace.size == 0:
        raise ValueError(
            "the model has no lower_bounds_ trace: fit it with latentmix (a trace is "
            "recorded by every EM fit)"
        )
    ax = new_axes(ax)
    it = np.arange(1, trace.size + 1)
    ax.plot(it, trace, marker="o", markersize=3, color=color(0))
    ax.set_xlabel("EM iteration")
    ax.set_ylabel(label)
    converged = getattr(model, "converged_", None)
    state = {True: "converged", False: "not converged", None: ""}[
        None if converged is None else bool(converged)
    ]
    ax.set_title(f"fit trace: {trace.size} iterations, {state}, final {trace[-1]:.4g}")
    ax.grid(True, alpha=0.3)
    if trace.size > 1:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return ax
