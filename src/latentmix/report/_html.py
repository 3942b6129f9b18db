"""Build the HTML report: tables from the model and the data, figures from latentmix.plot."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["build_report"]

logger = logging.getLogger("latentmix")

#: Rows beyond which the silhouette is computed on a random subsample (it is O(n²)).
SILHOUETTE_MAX_ROWS = 3000

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em;
     border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f4f4f4; } td.key { text-align: left; font-weight: 600; }
tr.best td { background: #e6f4e6; font-weight: 600; }
figure { margin: 1em 0 2em; } figcaption { color: #555; font-size: 0.9em; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { color: #666; font-size: 0.85em; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        v = float(value)
        return "–" if not np.isfinite(v) else f"{v:.6g}"
    return str(value)


def _key_values(items: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td class='key'>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in items.items()
    )
    return f"<table>{rows}</table>"


def _table(header: list[str], rows: list[list[Any]], best: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr{' class=best' if i == best else ''}>"
        + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(fig: Any, alt: str, caption: str) -> str:
    from latentmix.plot import to_png

    png = to_png(fig)
    width, height = (int(np.rint(v)) for v in fig.get_size_inches() * fig.dpi)
    data = base64.b64encode(png).decode("ascii")
    return (
        f"<figure><img src='data:image/png;base64,{data}' width='{width}' height='{height}' "
        f"alt='{html.escape(alt, quote=True)}'><figcaption>{html.escape(caption)}"
        "</figcaption></figure>"
    )


def _try_figure(make: Callable[[], Any], alt: str, caption: str, problems: list[str]) -> str:
    """A figure, or a note saying why it could not be drawn (one bad plot spoils nothing)."""
    try:
        obj = make()
    except (ValueError, np.linalg.LinAlgError) as exc:
        problems.append(f"{alt}: {exc}")
        logger.warning("report: no %s plot: %s", alt, exc)
        return f"<p class='note'>No {html.escape(alt)} plot: {html.escape(str(exc))}</p>"
    return _figure(getattr(obj, "figure", obj), alt, caption)


def build_report(
    model: Any,
    X: ArrayLike,
    *,
    feature_names: list[str] | None = None,
    selection_table: Any = None,
    criterion: str = "bic",
    title: str = "latentmix report",
    random_state: int | None = None,
) -> str:
    """Return a self-contained HTML report of ``model`` fitted to (or applied to) ``X``.

    Parameters
    ----------
    model : fitted GaussianMixture, BayesianGaussianMixture or KMeans
    X : array-like of shape (n_samples, n_features)
        The data to describe (a DataFrame keeps the model's feature names).
    feature_names : list of str, default=None
    selection_table : pandas.DataFrame, default=None
        ``MixtureSelection.table_``; adds the criterion table and plot.
    criterion : {"bic", "aic", "icl"}, default="bic"
        The criterion the selection used.
    title : str, default="latentmix report"
    random_state : int, default=None
        Seeds the silhouette subsample on large data.

    Returns
    -------
    html : str
        One HTML document; every image is an inline PNG whose ``width`` and ``height``
        attributes are its size in pixels.
    """
    import latentmix
    from latentmix import plot

    Xv = np.asarray(X, dtype=np.float64)
    n, d = Xv.shape
    # The plots need complete rows; the model's numbers use every row.
    complete = np.asarray(~np.isnan(Xv).any(axis=1))
    Xp: Any = X if complete.all() else _rows(X, complete)
    names = feature_names or [f"x{i}" for i in range(d)]
    problems: list[str] = []
    parts: list[str] = []
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<h1>{html.escape(title)}</h1>")
    parts.append(
        f"<p class='note'>latentmix {html.escape(latentmix.__version__)}, {stamp}; "
        f"{n} rows, {d} features: {html.escape(', '.join(names))}</p>"
    )

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        labels = np.asarray(model.predict(X))
    gaussian = hasattr(model, "covariances_")
    k = int(getattr(model, "n_components", getattr(model, "n_clusters", labels.max() + 1)))
    counts = np.bincount(labels, minlength=k)

    # -- summary ------------------------------------------------------------------------
    parts.append("<h2>Model</h2>")
    summary: dict[str, Any] = {"class": type(model).__name__}
    if gaussian:
        summary["components"] = k
        summary["covariance type"] = model.covariance_type
        lp = np.asarray(model.score_samples(X), dtype=np.float64)
        summary["log-likelihood"] = float(lp.sum())
        for name in ("bic", "aic", "icl"):
            if hasattr(model, name):
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="X does not have valid feature names")
                    summary[name.upper()] = float(getattr(model, name)(X))
        summary["converged"] = bool(getattr(model, "converged_", False))
        summary["EM iterations"] = int(getattr(model, "n_iter_", 0))
    else:
        summary["clusters"] = k
        summary["inertia"] = float(getattr(model, "inertia_", np.nan))
        summary["iterations"] = int(getattr(model, "n_iter_", 0))
    parts.append(_key_values(summary))

    if selection_table is not None:
        frame = selection_table
        parts.append(f"<h2>Model selection by {html.escape(criterion.upper())}</h2>")
        values = frame[criterion].to_numpy(dtype=np.float64)
        best = int(np.nanargmin(values)) if np.isfinite(values).any() else None
        parts.append(
            _table([str(c) for c in frame.columns], frame.values.tolist(), best)
            + "<p class='note'>Lower is better; the chosen model is highlighted.</p>"
        )
        parts.append(
            _try_figure(
                lambda: plot.plot_criterion(frame, criterion),
                "criterion",
                f"{criterion.upper()} against the number of components, one line per "
                "covariance type; the best model is ringed.",
                problems,
            )
        )

    parts.append("<h2>Components</h2>")
    centers = np.asarray(model.means_ if gaussian else model.cluster_centers_)
    weights = np.asarray(model.weights_) if gaussian else counts / max(n, 1)
    header = ["k", "weight", "rows", *(f"mean {c}" for c in names)]
    rows = [
        [j, round(float(weights[j]), 4), int(counts[j]), *(round(float(v), 4) for v in centers[j])]
        for j in range(k)
    ]
    parts.append(_table(header, rows))

    # -- plots --------------------------------------------------------------------------
    parts.append("<h2>Clusters</h2>")
    if not complete.all():
        parts.append(
            f"<p class='note'>{int((~complete).sum())} rows with missing values are left "
            "out of the plots.</p>"
        )
    labels = labels[complete]
    Xv = Xv[complete]
    where = "the two features" if d == 2 else "the first two principal axes of the data"
    parts.append(
        _try_figure(
            lambda: plot.plot_clusters(model, Xp, labels=labels, feature_names=names),
            "clusters",
            f"Rows coloured by cluster on {where}"
            + (", with each component's 1, 2 and 3 sigma ellipses." if gaussian else "."),
            problems,
        )
    )
    if d > 2:
        parts.append(
            _try_figure(
                lambda: plot.plot_pairs(model, Xp, labels=labels, feature_names=names),
                "pairs",
                "Every pair of features (up to six), coloured by cluster"
                + (", with 1 and 2 sigma ellipses." if gaussian else "."),
                problems,
            )
        )
    if gaussian and k > 1:
        parts.append(
            _try_figure(
                lambda: plot.plot_uncertainty(model, Xp, feature_names=names),
                "uncertainty",
                "Classification uncertainty 1 − max p(k | x): larger, darker points are "
                "the rows the model is least sure about.",
                problems,
            )
        )
    if getattr(model, "lower_bounds_", None):
        parts.append(
            _try_figure(
                lambda: plot.plot_lower_bounds(model),
                "trace",
                "Average log-likelihood at each EM iteration of the chosen fit.",
                problems,
            )
        )
    parts.append(_silhouette_section(Xv, labels, random_state, problems))
    if problems:
        parts.append(
            "<p class='note'>Some plots could not be drawn: "
            + html.escape("; ".join(problems))
            + "</p>"
        )
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _rows(X: Any, keep: np.ndarray[Any, Any]) -> Any:
    """The rows ``keep`` of an array or a DataFrame."""
    return X[keep] if isinstance(X, np.ndarray) else X.loc[keep]


def _silhouette_section(
    X: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], seed: int | None, problems: list[str]
) -> str:
    from latentmix import plot

    n_labels = np.unique(labels).size
    if not 2 <= n_labels <= len(labels) - 1:
        return ""
    try:
        from latentmix.cluster import silhouette_samples
    except ImportError:  # pragma: no cover - the silhouette ships with latentmix.cluster
        return "<p class='note'>The silhouette is not available in this build.</p>"
    rows = np.arange(len(labels))
    note = ""
    if len(rows) > SILHOUETTE_MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, SILHOUETTE_MAX_ROWS, False))
        note = f" (a random subsample of {SILHOUETTE_MAX_ROWS} rows)"
    if np.unique(labels[rows]).size < 2:
        return ""
    values = np.asarray(silhouette_samples(X[rows], labels[rows]), dtype=np.float64)
    return "<h2>Silhouette</h2>" + _try_figure(
        lambda: plot.plot_silhouette(labels[rows], values),
        "silhouette",
        f"Silhouette coefficient of each row{note} (Euclidean distances in the data's "
        "units), sorted within its cluster; mean "
        f"{values.mean():.3f} (near 1: well inside its cluster, below 0: closer to another).",
        problems,
    )
