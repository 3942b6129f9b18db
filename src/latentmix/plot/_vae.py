"""VAE pictures: grids of generated samples, reconstructions beside inputs, the latent space."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from latentmix.plot._base import color, new_axes, new_figure

__all__ = ["plot_latent", "plot_reconstructions", "plot_sample_grid"]


def _images(X: ArrayLike, image_shape: tuple[int, int] | None) -> NDArray[np.float64]:
    Xv = np.asarray(X, dtype=np.float64)
    if Xv.ndim == 3:
        return Xv
    if image_shape is None:
        side = math.isqrt(Xv.shape[1])
        # Below 4x4 a "square" row is far more likely a small table than an image.
        if side * side != Xv.shape[1] or side < 4:
            raise ValueError(
                f"rows of {Xv.shape[1]} values are not square images; pass image_shape"
            )
        image_shape = (side, side)
    return Xv.reshape(Xv.shape[0], *image_shape)


def _grid(fig: Figure, images: NDArray[np.float64], n_cols: int) -> None:
    n_rows = math.ceil(len(images) / n_cols)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    lo, hi = float(images.min()), float(images.max())
    for i, image in enumerate(images):
        axes.ravel()[i].imshow(image, cmap="gray_r", interpolation="nearest", vmin=lo, vmax=hi)


def plot_sample_grid(
    X: ArrayLike,
    *,
    image_shape: tuple[int, int] | None = None,
    n_cols: int = 8,
    title: str = "generated samples",
) -> Figure:
    """A grid of images, one per row of X (square rows, or ``image_shape``).

    Use it for samples drawn from a VAE (``vae.sample(n)``).

    Returns
    -------
    fig : matplotlib Figure
    """
    images = _images(X, image_shape)
    n_cols = min(n_cols, len(images))
    n_rows = math.ceil(len(images) / n_cols)
    fig = new_figure((1.0 * n_cols, 1.0 * n_rows + 0.4))
    _grid(fig, images, n_cols)
    fig.suptitle(title)
    return fig


def plot_reconstructions(
    X: ArrayLike,
    X_reconstructed: ArrayLike,
    *,
    image_shape: tuple[int, int] | None = None,
    n: int = 8,
) -> Figure:
    """Inputs (top row) above their reconstructions (bottom row), for the first ``n`` rows.

    Rows that are not images (non-square, no ``image_shape``) are drawn as line profiles
    instead: input and reconstruction overlaid per row.

    Returns
    -------
    fig : matplotlib Figure
    """
    Xa = np.asarray(X, dtype=np.float64)[:n]
    Xr = np.asarray(X_reconstructed, dtype=np.float64)[:n]
    if Xa.shape != Xr.shape:
        raise ValueError(f"X has shape {Xa.shape} but X_reconstructed has shape {Xr.shape}")
    try:
        a, r = _images(Xa, image_shape), _images(Xr, image_shape)
    except ValueError:
        fig = new_figure((1.6 * len(Xa), 2.2))
        axes = fig.subplots(1, len(Xa), squeeze=False)[0]
        for i, ax in enumerate(axes):
            ax.plot(Xa[i], color="black", linewidth=1, label="input")
            ax.plot(Xr[i], color=color(1), linewidth=1, linestyle="--", label="reconstruction")
            ax.set_xticks([])
            ax.tick_params(labelsize="x-small")
        axes[0].legend(fontsize="x-small")
        fig.suptitle("inputs and reconstructions")
        return fig
    fig = new_figure((1.0 * len(a), 2.4))
    axes = fig.subplots(2, len(a), squeeze=False)
    # One grey scale for inputs and reconstructions, so they compare.
    scale = {"vmin": float(min(a.min(), r.min())), "vmax": float(max(a.max(), r.max()))}
    for i in range(len(a)):
        axes[0, i].imshow(a[i], cmap="gray_r", interpolation="nearest", **scale)
        axes[1, i].imshow(r[i], cmap="gray_r", interpolation="nearest", **scale)
        axes[0, i].set_axis_off()
        axes[1, i].set_axis_off()
    fig.suptitle("inputs (top) and reconstructions (bottom)")
    return fig


def plot_latent(
    Z: ArrayLike,
    *,
    labels: ArrayLike | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Scatter of latent codes (the first two latent dimensions), coloured by ``labels``.

    Returns
    -------
    ax : matplotlib Axes
    """
    Zv = np.asarray(Z, dtype=np.float64)
    if Zv.ndim != 2 or Zv.shape[1] < 1:
        raise ValueError(f"Z must be 2-D (rows x latent dimensions), got shape {Zv.shape}")
    if Zv.shape[1] == 1:
        Zv = np.column_stack([Zv[:, 0], np.zeros(len(Zv))])
    ax = new_axes(ax)
    if labels is None:
        ax.scatter(Zv[:, 0], Zv[:, 1], s=8, color=color(0), alpha=0.7, linewidths=0)
    else:
        lab = np.asarray(labels)
        for i, k in enumerate(np.unique(lab)):
            rows = lab == k
            ax.scatter(
                Zv[rows, 0], Zv[rows, 1], s=8, color=color(i), alpha=0.7, linewidths=0,
                label=str(k),
            )  # fmt: skip
        ax.legend(title="label", fontsize="small", markerscale=2)
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title("latent space")
    return ax
