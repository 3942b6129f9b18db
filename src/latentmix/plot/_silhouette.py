"""The silhouette plot: each cluster's silhouette coefficients as sorted horizontal bars."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from numpy.typing import ArrayLike

from latentmix.plot._base import color, new_axes

__all__ = ["plot_silhouette"]


def plot_silhouette(
    labels: ArrayLike,
    silhouette_values: ArrayLike,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Silhouette plot: per cluster, its rows' coefficients sorted, as horizontal bars.

    A dashed line marks the mean silhouette. Compute the values with
    :func:`latentmix.silhouette_samples`.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
    silhouette_values : array-like of shape (n_samples,)
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    lab = np.asarray(labels)
    values = np.asarray(silhouette_values, dtype=np.float64)
    if lab.shape != values.shape:
        raise ValueError(
            f"labels has shape {lab.shape} but silhouette_values has shape {values.shape}; "
            "give one value per row"
        )
    ax = new_axes(ax)
    gap = max(2, len(values) // 50)
    y = gap
    ticks, names = [], []
    for i, k in enumerate(np.unique(lab)):
        v = np.sort(values[lab == k])
        ax.fill_betweenx(np.arange(y, y + v.size), 0.0, v, color=color(i), alpha=0.8, linewidth=0)
        ticks.append(y + v.size / 2)
        names.append(f"{k} ({v.size})")
        y += v.size + gap
    mean = float(values.mean())
    ax.axvline(mean, color="black", linestyle="--", linewidth=1, label=f"mean {mean:.3f}")
    ax.set_xlim(min(-0.1, float(values.min()) - 0.05), 1.0)
    ax.set_ylim(0, y)
    ax.set_yticks(ticks, names, fontsize="small")
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("silhouette coefficient")
    ax.set_ylabel("cluster (rows), each row a bar")
    ax.set_title("silhouette plot")
    ax.legend(loc="lower right", fontsize="small")
    return ax
