"""Helpers shared by the plots: figures without pyplot, colours, projections, PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through
``pyplot``: no global state, no GUI backend, nothing to close, and PNG output goes
through the Agg renderer whatever backend is configured.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Projection",
    "color",
    "full_covariances",
    "new_axes",
    "new_figure",
    "to_png",
]

DEFAULT_SIZE = (6.4, 4.8)
#: Ratio of the largest to the smallest feature spread above which principal axes are
#: computed on standardised data.
STANDARDISE_ABOVE = 10.0
DPI = 100


def new_figure(figsize: tuple[float, float] = DEFAULT_SIZE) -> Figure:
    """A figure of exactly ``figsize`` inches at 100 dpi, laid out with constrained layout."""
    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def new_axes(ax: Axes | None, figsize: tuple[float, float] = DEFAULT_SIZE) -> Axes:
    """``ax``, or the axes of a new figure."""
    if ax is not None:
        return ax
    return new_figure(figsize).add_subplot()


def to_png(fig: Figure | SubFigure) -> bytes:
    """The figure as PNG bytes, of exactly its size in pixels (no tight bounding box).

    ``ax.figure`` may be a subfigure; its whole figure is drawn.
    """
    root = fig.get_figure(root=True)
    assert root is not None
    buf = io.BytesIO()
    root.savefig(buf, format="png", dpi=root.dpi)
    return buf.getvalue()


def color(k: int) -> Any:
    """The colour of cluster ``k`` (tab10, then tab20 beyond ten clusters)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if k < 10 else colormaps["tab20"]
    return cmap(k % cmap.N)


def full_covariances(model: Any) -> NDArray[np.float64]:
    """The (K, D, D) covariance matrices of a Gaussian mixture of any covariance type."""
    cov = np.asarray(model.covariances_, dtype=np.float64)
    k, d = np.asarray(model.means_).shape
    ct = model.covariance_type
    if ct not in ("tied", "diag", "spherical"):
        from latentmix.gaussian._parsimonious import kernel_covariance_type

        ct = kernel_covariance_type(str(ct))  # mclust's models: VVV ... stored as full
    if ct == "full":
        return cov
    if ct == "tied":
        return np.broadcast_to(cov, (k, d, d)).copy()
    if ct == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(d)[None]


class Projection:
    """A linear map to two plotting axes: two chosen features, or the first two principal axes.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data the axes are computed from.
    dims : tuple of two ints or None
        Features to plot; None (with more than two features) for principal axes, of
        the z-scores when the features' spreads differ by more than a factor of 10.
    feature_names : list of str, default=None
        For the axis labels.
    """

    def __init__(
        self,
        X: ArrayLike,
        dims: tuple[int, int] | None = None,
        feature_names: list[str] | None = None,
    ) -> None:
        X = np.asarray(X, dtype=np.float64)
        d = X.shape[1]
        names = feature_names or [f"x{i}" for i in range(d)]
        if d == 1:
            raise ValueError("a scatter plot needs at least two features; X has one")
        if dims is None and d == 2:
            dims = (0, 1)
        self.standardised = False
        if dims is not None:
            self.center = np.zeros(d)
            self.basis = np.eye(d)[:, list(dims)]
            self.labels = (names[dims[0]], names[dims[1]])
            self.explained: tuple[float, float] | None = None
        else:
            self.center = X.mean(axis=0)
            std = X.std(axis=0)
            std[std == 0] = 1.0
            # Features on very different scales (wine's proline against its hues) would
            # make the first axis one feature: then use the principal axes of z-scores.
            self.standardised = bool(std.max() / std.min() > STANDARDISE_ABOVE)
            scale = std if self.standardised else np.ones(d)
            _, s, vt = np.linalg.svd((X - self.center) / scale, full_matrices=False)
            # A deterministic sign: the largest loading of each axis is positive.
            signs = np.sign(vt[np.arange(2), np.argmax(np.abs(vt[:2]), axis=1)])
            # z = (x - center) / scale, so the map from x is diag(1 / scale) V.
            self.basis = (vt[:2] * signs[:, None]).T / scale[:, None]
            var = s**2
            frac = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
            self.explained = (float(frac[0]), float(frac[1]))
            of = "standardised variance" if self.standardised else "variance"
            self.labels = (
                f"principal axis 1 ({100 * frac[0]:.1f}% of {of})",
                f"principal axis 2 ({100 * frac[1]:.1f}% of {of})",
            )

    def points(self, X: ArrayLike) -> NDArray[np.float64]:
        """Project rows."""
        return (np.asarray(X, dtype=np.float64) - self.center) @ self.basis

    def covariance(self, cov: NDArray[np.float64]) -> NDArray[np.float64]:
        """Project a covariance matrix (exact: a linear image of a Gaussian is Gaussian)."""
        return np.asarray(self.basis.T @ cov @ self.basis)

    def label(self, ax: Axes) -> None:
        ax.set_xlabel(self.labels[0])
        ax.set_ylabel(self.labels[1])
