"""Rich tables for the command line's human-readable summaries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

__all__ = ["components_table", "frame_table", "key_values"]

MAX_FEATURES_SHOWN = 6


def _fmt(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    return str(value)


def key_values(title: str, items: dict[str, Any]) -> Table:
    """A two-column table of labelled values."""
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left", box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in items.items():
        table.add_row(key, _fmt(value))
    return table


def components_table(
    weights: Any, means: Any, names: list[str], counts: list[int] | None = None
) -> Table:
    """One row per component: weight, hard count and the mean of the first features."""
    from rich.table import Table

    shown = names[:MAX_FEATURES_SHOWN]
    table = Table(title="components", title_justify="left")
    table.add_column("k", justify="right")
    table.add_column("weight", justify="right")
    if counts is not None:
        table.add_column("rows", justify="right")
    for name in shown:
        table.add_column(f"mean {name}", justify="right")
    if len(names) > len(shown):
        table.add_column(f"(+{len(names) - len(shown)} more)")
    for k, (weight, mean) in enumerate(zip(np.asarray(weights), np.asarray(means))):
        row = [str(k), f"{float(weight):.4f}"]
        if counts is not None:
            row.append(str(counts[k]))
        row += [f"{float(v):.4g}" for v in mean[: len(shown)]]
        if len(names) > len(shown):
            row.append("…")
        table.add_row(*row)
    return table


HEADERS = {
    "n_components": "K",
    "covariance_type": "covariance",
    "log_likelihood": "log-lik",
    "n_parameters": "params",
    "bic": "BIC",
    "aic": "AIC",
    "icl": "ICL",
}


def frame_table(frame: pd.DataFrame, title: str, highlight: int | None = None) -> Table:
    """A DataFrame as a compact rich table; row ``highlight`` (positional) in bold green."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for col in frame.columns:
        table.add_column(HEADERS.get(str(col), str(col)), justify="right")
    for i, row in enumerate(frame.itertuples(index=False)):
        style = "bold green" if i == highlight else None
        cells = [f"{v:.2f}" if isinstance(v, float) else _fmt(v) for v in row]
        table.add_row(*cells, style=style)
    return table
