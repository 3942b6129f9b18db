"""The model-selection plot: an information criterion against K, one line per covariance type."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes

from latentmix.plot._base import color, new_axes

__all__ = ["plot_criterion"]

_MARKERS = {"full": "o", "tied": "s", "diag": "^", "spherical": "D"}
# mclust's fourteen models (and E/V), as mclust's BIC plot: one symbol per model.
_MARKERS.update(
    zip(
        ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV",
         "EVV", "VVV", "E", "V"),
        ("v", "D", "P", "X", "<", "^", "s", "p", "h", "H", ">", "*", "d", "o", "s", "o"),
        strict=True,
    )
)  # fmt: skip


def plot_criterion(table: Any, criterion: str = "bic", *, ax: Axes | None = None) -> Axes:
    """BIC, AIC or ICL against the number of components, one line per covariance type.

    Lower is better (scikit-learn's sign); the best cell is ringed.

    Parameters
    ----------
    table : pandas.DataFrame or MixtureSelection
        ``MixtureSelection.table_`` (columns ``n_components``, ``covariance_type`` and the
        criterion), or the selection itself.
    criterion : {"bic", "aic", "icl"}, default="bic"
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    frame = getattr(table, "table_", table)
    criterion = criterion.lower()
    if criterion not in frame.columns:
        raise ValueError(
            f"the table has no {criterion!r} column; it has {', '.join(map(str, frame.columns))}"
        )
    ax = new_axes(ax)
    values = frame[criterion].to_numpy(dtype=np.float64)
    types = list(dict.fromkeys(frame["covariance_type"].astype(str)))
    for i, ct in enumerate(types):
        rows = frame[frame["covariance_type"].astype(str) == ct].sort_values("n_components")
        # More lines than tab10 has colours (mclust's fourteen): all from tab20.
        c = color(i) if len(types) <= 10 else color(20 + i)  # color(k >= 10): tab20(k % 20)
        ax.plot(
            rows["n_components"].to_numpy(), rows[criterion].to_numpy(dtype=np.float64),
            marker=_MARKERS.get(ct, "o"), color=c, label=ct,
        )  # fmt: skip
    if np.isfinite(values).any():
        best = int(np.nanargmin(values))
        ax.plot(
            frame["n_components"].iloc[best], values[best], marker="o", markersize=16,
            markerfacecolor="none", markeredgecolor="black", markeredgewidth=1.5,
            linestyle="none",
            label=f"best: K={frame['n_components'].iloc[best]}, "
            f"{frame['covariance_type'].iloc[best]}",
        )  # fmt: skip
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.set_title(f"model selection by {criterion.upper()}")
    ax.grid(True, alpha=0.3)
    ax.legend(title="covariance", fontsize="small", ncol=2 if len(types) > 6 else 1)
    return ax
