"""The ``latentmix`` commands (Typer). Thin: parse, call the library, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from latentmix.cli._common import (
    CLIError,
    Ui,
    feature_names,
    load_model,
    model_input,
    parse_components,
    read_data,
    require_fitted,
    unavailable,
    write_output,
)

app = typer.Typer(
    name="latentmix",
    help="Latent-variable models from the command line: fit, select, predict, plot, report.",
    epilog="Exit codes: 0 success, 1 internal error, 2 bad usage or bad input data, "
    "3 bad or unsuitable model file, 4 not available in this build, 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

MIXTURES = ("GaussianMixture", "BayesianGaussianMixture")
CRITERIA = ("bic", "aic", "icl")

DataArg = Annotated[
    str,
    typer.Argument(
        help="Data file: .csv .tsv .parquet .npy .npz, or - for CSV on stdin.",
        metavar="DATA",
        show_default=False,
    ),
]
ModelArg = Annotated[
    str,
    typer.Argument(
        help="Model file written by 'latentmix fit'.", metavar="MODEL", show_default=False
    ),
]
ColumnsOpt = Annotated[
    list[str] | None,
    typer.Option("--columns", "-c", help="Columns to use (repeat or comma-separate)."),
]
DropOpt = Annotated[list[str] | None, typer.Option("--drop", "-x", help="Columns to leave out.")]
DropnaOpt = Annotated[
    bool, typer.Option("--dropna", help="Drop rows with missing values instead of failing.")
]
OutputOpt = Annotated[
    str | None,
    typer.Option(
        "--output", "-o", help="Output file (.csv .tsv .parquet .npy); default: CSV on stdout."
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (reproducible runs).")]
AppendOpt = Annotated[
    bool, typer.Option("--append", "-a", help="Include the input columns in the output.")
]


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks and library logs.")
    ] = False,
) -> None:
    """Latent-variable models from the command line.

    Exit codes: 0 success, 1 internal error, 2 bad usage or bad input data, 3 bad or
    unsuitable model file, 4 feature not available in this build, 130 interrupted.
    """


def _check_outputs(*paths: str | None, model: str | None = None) -> None:
    """Fail on an unusable output path before any work is done."""
    from latentmix.io._readers import table_format

    for path in paths:
        if path is not None and path != "-":
            table_format(path)
    for path in (model, *paths):
        if path is not None and path != "-":
            parent = Path(path).parent
            if not parent.is_dir():
                raise CLIError(f"{path}: the directory {parent} does not exist; create it first")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    value = value.lower()
    if value not in choices:
        raise CLIError(f"{name} {value!r} is not one of {', '.join(choices)}")
    return value


def _default_types(ks: list[int]) -> tuple[str, ...]:
    """full for one K; scikit-learn's four types for a range."""
    from latentmix.cli._fit import COVARIANCE_TYPES

    return ("full",) if len(ks) == 1 else COVARIANCE_TYPES


def _is_selection(ks: list[int], names: list[str]) -> bool:
    """Whether the grid has more than one cell (``all`` is always several models)."""
    return len(ks) > 1 or len(names) > 1 or "all" in names


def _handles_missing(model: Any) -> bool:
    """Gaussian mixtures fit and score rows with missing entries (missing-value EM)."""
    return type(model).__name__ in MIXTURES and hasattr(model, "impute")


def _note_missing(ui: Ui, features: Any) -> None:
    n_rows = int(np.isnan(features.X).any(axis=1).sum())
    if n_rows:
        ui.info(f"{n_rows} rows have missing values: they are used by missing-value EM")


def _keep_names(model: Any, features: Any) -> None:
    """Record the data's column names in a model that was fitted on a bare array.

    ``select_mixture`` fits on arrays; the names let ``predict`` pick the columns by name.
    """
    if features.named and getattr(model, "feature_names_in_", None) is None:
        model.feature_names_in_ = np.asarray(features.columns, dtype=object)


def _fit_input(features: Any) -> Any:
    """What the estimators get: a DataFrame when the columns have names (kept in the model)."""
    return features.frame() if features.named else features.X


# -- fit -------------------------------------------------------------------------------------
@app.command()
def fit(
    data: DataArg,
    components: Annotated[
        str,
        typer.Option(
            "--components", "-k", help="Number of components, a range (1-9) or a list (2,3,5)."
        ),
    ] = "1-9",
    covariance_type: Annotated[
        list[str] | None,
        typer.Option(
            "--covariance-type",
            "-t",
            help="full, tied, diag, spherical; mclust's EII, VII, EEI, VEI, EVI, VVI, EEE, "
            "VEE, EVE, VVE, EEV, VEV, EVV, VVV (E, V for one feature); or all (mclust's 14). "
            "Repeat or comma-separate. Default: full for one K, the first four for a range.",
        ),
    ] = None,
    criterion: Annotated[
        str, typer.Option("--criterion", help="Model choice: bic, aic or icl.")
    ] = "bic",
    n_init: Annotated[int, typer.Option("--n-init", "--restarts", min=1, help="Restarts.")] = 1,
    seed: SeedOpt = None,
    columns: ColumnsOpt = None,
    drop: DropOpt = None,
    weights: Annotated[
        str | None, typer.Option("--weights", "-w", help="Column of sample weights.")
    ] = None,
    standardize: Annotated[
        bool,
        typer.Option("--standardize", help="Fit on z-scores; the saved model is in data units."),
    ] = False,
    dropna: DropnaOpt = False,
    max_iter: Annotated[int, typer.Option("--max-iter", min=1)] = 100,
    tol: Annotated[float, typer.Option("--tol", min=0.0)] = 1e-3,
    reg_covar: Annotated[float, typer.Option("--reg-covar", min=0.0)] = 1e-6,
    n_jobs: Annotated[
        int | None, typer.Option("--n-jobs", help="Parallel jobs for model selection.")
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Model file (default: DATA stem + .lmx).")
    ] = None,
    table: Annotated[
        str | None, typer.Option("--table", help="Also write the criterion table (.csv/.parquet).")
    ] = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Fit a Gaussian mixture; with a range of components, choose one by BIC, AIC or ICL."""
    from latentmix.cli._fit import (
        Scaling,
        covariance_grid,
        fit_mixture,
        parse_covariance_types,
        select,
        summarize_mixture,
        table_in_data_units,
        unscale,
    )
    from latentmix.io import save

    ui = Ui(quiet=quiet, json=json)
    ks = parse_components(components)
    criterion = _check_choice("--criterion", criterion, CRITERIA)
    names = parse_covariance_types(covariance_type)
    model_path = output or ("model.lmx" if data == "-" else Path(data).stem + ".lmx")
    no_table = "--table is the model-selection table: give a range, e.g. -k 1-9"
    if table is not None and not _is_selection(ks, names):
        raise CLIError(no_table)
    _check_outputs(table, model=model_path)
    features = read_data(
        data, columns=columns, drop=drop, weight_column=weights, dropna=dropna, allow_missing=True
    )
    cts = covariance_grid(names, features.X.shape[1], _default_types(ks))
    if table is not None and len(ks) == 1 and len(cts) == 1:  # e.g. -t full,VVV: one model
        raise CLIError(no_table)
    _note_missing(ui, features)
    scaling = Scaling.of(features.X, features.sample_weight) if standardize else None
    X_fit: Any = _fit_input(features)
    if scaling is not None:
        X_fit = scaling.apply(features.X)
        if features.named:
            import pandas as pd

            X_fit = pd.DataFrame(X_fit, columns=features.columns)
    w = features.sample_weight
    selection = None
    if len(ks) == 1 and len(cts) == 1:
        model = fit_mixture(
            X_fit,
            w,
            n_components=ks[0],
            covariance_type=cts[0],
            n_init=n_init,
            random_state=seed,
            max_iter=max_iter,
            tol=tol,
            reg_covar=reg_covar,
            ui=ui,
        )
    else:
        selection = select(
            X_fit,
            w,
            components=ks,
            covariance_types=cts,
            criterion=criterion,
            n_init=n_init,
            random_state=seed,
            n_jobs=n_jobs,
            ui=ui,
            max_iter=max_iter,
            tol=tol,
            reg_covar=reg_covar,
        )
        model = selection.best_estimator_
    _keep_names(model, features)
    # What was fitted, before the model is re-expressed in the data's units.
    fitted_type, fitted_n_parameters = str(model.covariance_type), int(model._n_parameters())
    note = None
    frame = None if selection is None else selection.table_
    if scaling is not None:
        model, note = unscale(model, scaling)
        if frame is not None:
            frame = table_in_data_units(frame, scaling, features.X, w)
    summary = summarize_mixture(
        model,
        _fit_input(features),
        w,
        fitted_covariance_type=fitted_type,
        fitted_n_parameters=fitted_n_parameters,
    )
    save(model, model_path)
    if table is not None and frame is not None:
        write_output(frame, table)
    summary["standardized"] = scaling is not None
    summary["model_file"] = str(model_path)
    summary["features"] = features.columns
    if note:
        summary["note"] = note
    if frame is not None:
        summary["criterion"] = criterion
        summary["table"] = frame.to_dict(orient="records")
    if json:
        ui.emit_json(summary)
        return
    _print_fit(ui, summary, model, features.columns, frame)


def _print_fit(ui: Ui, summary: dict[str, Any], model: Any, names: list[str], frame: Any) -> None:
    from latentmix.cli._render import components_table, frame_table, key_values

    if frame is not None:
        best = _best_row(frame, summary["n_components"], summary["covariance_type"])
        ui.print(frame_table(frame, f"model selection ({summary['criterion'].upper()})", best))
        ui.print()
    fitted_on = ", fitted on z-scores" if summary["standardized"] else ""
    items = {
        "model": f"{summary['n_components']} components, {summary['covariance_type']} "
        f"covariance{fitted_on}",
        "rows": summary["n_samples"],
        "features": summary["n_features"],
        "log-likelihood": summary["log_likelihood"],
        "parameters": summary["n_parameters"],
        "BIC": summary["bic"],
        "AIC": summary["aic"],
    }
    if "icl" in summary:
        items["ICL"] = summary["icl"]
    items["converged"] = summary["converged"]
    items["iterations"] = summary["n_iter"]
    if "note" in summary:
        items["note"] = summary["note"]
    items["saved to"] = summary["model_file"]
    ui.print(key_values("GaussianMixture", items))
    ui.print()
    ui.print(components_table(model.weights_, model.means_, names, summary["counts"]))


def _best_row(frame: Any, n_components: int, covariance_type: str) -> int | None:
    """Positional index of the chosen model in a selection table, when it can be found."""
    cols = {c.lower().replace("_", " "): c for c in frame.columns}
    kc = next((cols[c] for c in cols if c in ("components", "n components", "k")), None)
    tc = next((cols[c] for c in cols if "covariance" in c), None)
    if kc is None or tc is None:
        return None
    hit = np.flatnonzero(
        (frame[kc].to_numpy() == n_components)
        & (frame[tc].astype(str).to_numpy() == covariance_type)
    )
    return int(hit[0]) if hit.size else None


# -- predict / score / sample / impute ----------------------------------------------------
@app.command()
def predict(
    model_file: ModelArg,
    data: DataArg,
    output: OutputOpt = None,
    append: AppendOpt = False,
    proba: Annotated[
        bool, typer.Option("--proba/--no-proba", help="Add responsibility columns p0, p1, ...")
    ] = True,
    columns: ColumnsOpt = None,
    drop: DropOpt = None,
    dropna: DropnaOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Label each row with its component (and the responsibilities, for mixtures)."""
    import pandas as pd

    _check_outputs(output)
    model = load_model(model_file)
    if not hasattr(model, "predict"):
        raise CLIError(f"{model_file}: a {type(model).__name__} does not predict labels", 3)
    require_fitted(model, model_file, (type(model).__name__,))
    X, features = model_input(
        model,
        data,
        columns=columns,
        drop=drop,
        dropna=dropna,
        allow_missing=_handles_missing(model),
    )
    out = pd.DataFrame(features.X, columns=features.columns) if append else pd.DataFrame()
    out["label"] = np.asarray(model.predict(X))
    if proba and hasattr(model, "predict_proba"):
        resp = np.asarray(model.predict_proba(X))
        for k in range(resp.shape[1]):
            out[f"p{k}"] = resp[:, k]
    write_output(out, output)
    if output:
        Ui(quiet=quiet).info(f"wrote {len(out)} labelled rows to {output}")


@app.command()
def score(
    model_file: ModelArg,
    data: DataArg,
    output: OutputOpt = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Flag rows whose log-density is below this value."),
    ] = None,
    top: Annotated[
        int | None,
        typer.Option("--top", min=1, help="Output only the N least likely rows, lowest first."),
    ] = None,
    append: AppendOpt = False,
    columns: ColumnsOpt = None,
    drop: DropOpt = None,
    dropna: DropnaOpt = False,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Log-density of each row under the model (low = unusual: anomaly detection)."""
    import pandas as pd

    _check_outputs(output)
    if json and output is None:
        raise CLIError("--json prints the summary on stdout; give --output for the scores")
    model = load_model(model_file)
    if not hasattr(model, "score_samples"):
        raise CLIError(f"{model_file}: a {type(model).__name__} has no log-density", 3)
    require_fitted(model, model_file, (type(model).__name__,))
    X, features = model_input(
        model,
        data,
        columns=columns,
        drop=drop,
        dropna=dropna,
        allow_missing=_handles_missing(model),
    )
    lp = np.asarray(model.score_samples(X), dtype=np.float64)
    out = pd.DataFrame(features.X, columns=features.columns) if append else pd.DataFrame()
    out.insert(0, "row", np.arange(lp.shape[0]))
    out["log_density"] = lp
    if threshold is not None:
        out["anomaly"] = lp < threshold
    if top is not None:
        out = out.iloc[np.argsort(lp, kind="stable")[:top]]
    write_output(out, output)
    summary: dict[str, Any] = {
        "rows": int(lp.shape[0]),
        "mean_log_density": float(lp.mean()),
        "min_log_density": float(lp.min()),
        "max_log_density": float(lp.max()),
    }
    if threshold is not None:
        summary["threshold"] = threshold
        summary["below_threshold"] = int((lp < threshold).sum())
    if json:
        Ui(json=True).emit_json(summary)
    elif output:
        ui = Ui(quiet=quiet)
        msg = f"wrote {len(out)} scored rows to {output}"
        if threshold is not None:
            msg += f"; {summary['below_threshold']} of {lp.shape[0]} below {threshold:g}"
        ui.info(msg)


@app.command()
def sample(
    model_file: ModelArg,
    n_samples: Annotated[int, typer.Option("--n-samples", "-n", min=1, help="Rows to draw.")] = 100,
    seed: SeedOpt = None,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Draw new rows from a fitted model (with the component each came from)."""
    import pandas as pd

    _check_outputs(output)
    model = load_model(model_file)
    if not hasattr(model, "sample"):
        raise CLIError(f"{model_file}: a {type(model).__name__} cannot draw samples", 3)
    require_fitted(model, model_file, (type(model).__name__,))
    drawn = model.sample(n_samples, random_state=seed)
    Xs, ys = drawn if isinstance(drawn, tuple) else (drawn, None)
    Xs = np.asarray(Xs)
    out = pd.DataFrame(Xs, columns=feature_names(model, Xs.shape[1]))
    if ys is not None:
        out["component"] = np.asarray(ys)
    write_output(out, output)
    if output:
        Ui(quiet=quiet).info(f"wrote {len(out)} sampled rows to {output}")


@app.command()
def impute(
    model_file: ModelArg,
    data: DataArg,
    output: OutputOpt = None,
    columns: ColumnsOpt = None,
    drop: DropOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Fill in missing values (empty cells, NaN) with their conditional mean under the model."""
    import pandas as pd

    _check_outputs(output)
    model = load_model(model_file)
    require_fitted(model, model_file, (type(model).__name__,))
    if not hasattr(model, "impute"):
        raise unavailable(f"imputation with a {type(model).__name__}")
    X, features = model_input(model, data, columns=columns, drop=drop, allow_missing=True)
    filled = np.asarray(model.impute(X))
    out = pd.DataFrame(filled, columns=features.columns)
    write_output(out, output)
    if output:
        n_missing = int(np.isnan(features.X).sum())
        Ui(quiet=quiet).info(f"filled {n_missing} missing values; wrote {output}")


# -- info ------------------------------------------------------------------------------------
@app.command()
def info(model_file: ModelArg, json: JsonOpt = False) -> None:
    """Describe a model file: class, parameters, fitted attributes and, for mixtures, components."""
    from latentmix._exceptions import ModelFileError
    from latentmix.io import read_metadata

    try:
        meta = read_metadata(model_file)
    except ModelFileError as exc:
        raise CLIError(f"{exc}; give a model file written by 'latentmix fit'", 3) from exc
    ui = Ui(json=json)
    model = None
    if meta["fitted"] and meta["class"] in (*MIXTURES, "KMeans"):
        model = load_model(model_file)
    if json:
        payload = dict(meta)
        if model is not None:
            payload["summary"] = _model_numbers(model)
        ui.emit_json(payload)
        return
    from latentmix.cli._render import components_table, key_values

    items: dict[str, Any] = {
        "class": meta["class"],
        "fitted": meta["fitted"],
        "format version": meta["format_version"],
        "written by": f"latentmix {meta['library_version']}",
    }
    ui.print(key_values(model_file, items))
    ui.print()
    params = {k: v for k, v in meta["params"].items() if v is not None}
    ui.print(key_values("parameters", params))
    ui.print()
    shapes = {
        k: (f"{v['dtype']} {tuple(v['shape'])}" if isinstance(v, dict) and "shape" in v else v)
        for k, v in meta["attributes"].items()
        if not (isinstance(v, list) and len(v) > 8)
    }
    ui.print(key_values("fitted attributes", shapes))
    if model is not None:
        numbers = _model_numbers(model)
        names = feature_names(model, int(model.n_features_in_))
        ui.print()
        if "weights" in numbers:
            ui.print(components_table(numbers["weights"], numbers["means"], names))
        else:
            k = len(numbers["centers"])
            ui.print(components_table(np.full(k, 1.0 / k), numbers["centers"], names))


def _model_numbers(model: Any) -> dict[str, Any]:
    if hasattr(model, "weights_"):
        return {
            "n_components": int(model.n_components),
            "covariance_type": str(model.covariance_type),
            "weights": np.asarray(model.weights_).tolist(),
            "means": np.asarray(model.means_).tolist(),
            "converged": bool(getattr(model, "converged_", False)),
            "n_iter": int(getattr(model, "n_iter_", 0)),
        }
    return {
        "n_clusters": int(model.n_clusters),
        "centers": np.asarray(model.cluster_centers_).tolist(),
        "inertia": float(model.inertia_),
    }


# -- k-means and silhouette --------------------------------------------------------------------
@app.command()
def kmeans(
    data: DataArg,
    n_clusters: Annotated[int, typer.Option("--clusters", "-k", min=1, help="Clusters.")] = 3,
    n_init: Annotated[int, typer.Option("--n-init", "--restarts", min=1)] = 10,
    seed: SeedOpt = None,
    columns: ColumnsOpt = None,
    drop: DropOpt = None,
    weights: Annotated[str | None, typer.Option("--weights", "-w")] = None,
    dropna: DropnaOpt = False,
    max_iter: Annotated[int, typer.Option("--max-iter", min=1)] = 300,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Model file (default: DATA stem + .lmx).")
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Also write the labels (.csv/.parquet).")
    ] = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Hard clustering by k-means (k-means++ seeding), with the silhouette score."""
    import pandas as pd

    from latentmix.cli._fit import fit_kmeans
    from latentmix.io import save

    ui = Ui(quiet=quiet, json=json)
    model_path = output or ("model.lmx" if data == "-" else Path(data).stem + ".lmx")
    _check_outputs(labels, model=model_path)
    features = read_data(data, columns=columns, drop=drop, weight_column=weights, dropna=dropna)
    model = fit_kmeans(
        _fit_input(features),
        features.sample_weight,
        n_clusters=n_clusters,
        n_init=n_init,
        random_state=seed,
        max_iter=max_iter,
        ui=ui,
    )
    pred = np.asarray(model.labels_)
    sil = _silhouette(features.X, pred, seed)
    save(model, model_path)
    if labels is not None:
        write_output(pd.DataFrame({"label": pred}), labels)
    counts = np.bincount(pred, minlength=n_clusters).tolist()
    summary = {
        "class": "KMeans",
        "n_clusters": n_clusters,
        "inertia": float(model.inertia_),
        "n_iter": int(model.n_iter_),
        "silhouette": sil,
        "counts": counts,
        "centers": np.asarray(model.cluster_centers_).tolist(),
        "model_file": model_path,
    }
    if json:
        ui.emit_json(summary)
        return
    from latentmix.cli._render import components_table, key_values

    items = {
        "clusters": n_clusters,
        "rows": features.X.shape[0],
        "inertia": summary["inertia"],
        "iterations": summary["n_iter"],
        "silhouette": "n/a" if sil is None else sil,
        "saved to": model_path,
    }
    ui.print(key_values("KMeans", items))
    ui.print()
    w = np.asarray(counts, dtype=float) / max(sum(counts), 1)
    ui.print(components_table(w, model.cluster_centers_, features.columns, counts))


def _silhouette(X: Any, labels: Any, seed: int | None) -> float | None:
    """Mean silhouette, or None when the library's silhouette is not there or undefined."""
    try:
        from latentmix.cluster import silhouette_score
    except ImportError:
        return None
    n_labels = np.unique(labels).size
    if not 2 <= n_labels <= len(labels) - 1:
        return None
    return float(silhouette_score(X, labels))


@app.command()
def silhouette(
    model_file: ModelArg,
    data: DataArg,
    output: OutputOpt = None,
    columns: ColumnsOpt = None,
    drop: DropOpt = None,
    dropna: DropnaOpt = False,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Silhouette coefficients of the model's clustering of DATA (per row and per cluster)."""
    import pandas as pd

    _check_outputs(output)
    try:
        from latentmix.cluster import silhouette_samples
    except ImportError:
        raise unavailable("the silhouette (latentmix.cluster.silhouette_samples)") from None
    model = load_model(model_file)
    require_fitted(model, model_file, (type(model).__name__,))
    X, features = model_input(model, data, columns=columns, drop=drop, dropna=dropna)
    labels = np.asarray(model.predict(X))
    n_labels = np.unique(labels).size
    if not 2 <= n_labels <= len(labels) - 1:
        raise CLIError(
            f"the model puts the rows of {data} into {n_labels} cluster(s); the silhouette "
            "needs between 2 and n_rows - 1 clusters"
        )
    values = np.asarray(silhouette_samples(features.X, labels), dtype=np.float64)
    per_cluster = {int(k): float(values[labels == k].mean()) for k in np.unique(labels).tolist()}
    summary = {"silhouette": float(values.mean()), "per_cluster": per_cluster}
    if output:
        write_output(
            pd.DataFrame({"row": np.arange(len(labels)), "label": labels, "silhouette": values}),
            output,
        )
    if json:
        Ui(json=True).emit_json(summary)
        return
    from latentmix.cli._render import key_values

    ui = Ui(quiet=quiet)
    items: dict[str, Any] = {"mean silhouette": summary["silhouette"]}
    items.update({f"cluster {k}": v for k, v in per_cluster.items()})
    ui.print(key_values("silhouette", items))


# -- report ----------------------------------------------------------------------------------
@app.command()
def report(
    data: DataArg,
    model_file: Annotated[
        str | None,
        typer.Argument(help="Model file; without one, a model is fitted.", show_default=False),
    ] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="HTML file to write.")
    ] = "report.html",
    components: Annotated[
        str, typer.Option("--components", "-k", help="Without MODEL: components or a range.")
    ] = "1-9",
    covariance_type: Annotated[
        list[str] | None,
        typer.Option(
            "--covariance-type", "-t", help="Without MODEL: as for 'fit' (EII ... VVV, all)."
        ),
    ] = None,
    criterion: Annotated[str, typer.Option("--criterion")] = "bic",
    n_init: Annotated[int, typer.Option("--n-init", "--restarts", min=1)] = 1,
    seed: SeedOpt = None,
    columns: ColumnsOpt = None,
    drop: DropOpt = None,
    dropna: DropnaOpt = False,
    title: Annotated[str | None, typer.Option("--title")] = None,
    quiet: QuietOpt = False,
) -> None:
    """One self-contained HTML file (images inline) with the summary tables and plots."""
    from latentmix.cli._fit import covariance_grid, fit_mixture, parse_covariance_types, select
    from latentmix.io._writers import write_text
    from latentmix.report import build_report

    if not output.lower().endswith((".html", ".htm")):
        raise CLIError(f"--output {output!r}: the report is HTML; give a name ending in .html")
    _check_outputs(model=output)
    ui = Ui(quiet=quiet)
    names = parse_covariance_types(covariance_type)
    selection = None
    if model_file is not None:
        model = load_model(model_file)
        require_fitted(model, model_file, (*MIXTURES, "KMeans"))
        X, features = model_input(
            model,
            data,
            columns=columns,
            drop=drop,
            dropna=dropna,
            allow_missing=_handles_missing(model),
        )
    else:
        features = read_data(data, columns=columns, drop=drop, dropna=dropna, allow_missing=True)
        X = _fit_input(features)
        ks = parse_components(components)
        criterion = _check_choice("--criterion", criterion, CRITERIA)
        cts = covariance_grid(names, features.X.shape[1], _default_types(ks))
        if len(ks) == 1 and len(cts) == 1:
            model = fit_mixture(
                X,
                None,
                n_components=ks[0],
                covariance_type=cts[0],
                n_init=n_init,
                random_state=seed,
                max_iter=100,
                tol=1e-3,
                reg_covar=1e-6,
                ui=ui,
            )
        else:
            selection = select(
                X,
                None,
                components=ks,
                covariance_types=cts,
                criterion=criterion,
                n_init=n_init,
                random_state=seed,
                n_jobs=None,
                ui=ui,
            )
            model = selection.best_estimator_
        _keep_names(model, features)
    with ui.progress("drawing the report", None):
        html = build_report(
            model,
            X,
            feature_names=features.columns,
            selection_table=None if selection is None else selection.table_,
            criterion=criterion,
            title=title or f"latentmix report: {Path(data).name if data != '-' else 'stdin'}",
            random_state=seed,
        )
    write_text(output, html)
    ui.info(f"wrote the report to {output}")


# -- VAE -------------------------------------------------------------------------------------
vae_app = typer.Typer(
    help="Variational autoencoders (needs PyTorch): train, sample, encode, score.",
    no_args_is_help=True,
)
app.add_typer(vae_app, name="vae")


def _vae_module() -> Any:
    try:
        import latentmix.vae as vae
    except ImportError as exc:
        raise unavailable("the VAE", f"it needs PyTorch ({exc})") from exc
    return vae


@vae_app.command("train")
def vae_train(
    data: DataArg,
    latent_dim: Annotated[int, typer.Option("--latent-dim", "-z", min=1)] = 2,
    hidden: Annotated[
        str, typer.Option("--hidden", help="Hidden layer widths, comma-separated.")
    ] = "128,128",
    likelihood: Annotated[
        str, typer.Option("--likelihood", help="bernoulli (data in [0, 1]) or gaussian.")
    ] = "gaussian",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 50,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 128,
    learning_rate: Annotated[float, typer.Option("--learning-rate", "--lr", min=0.0)] = 1e-3,
    seed: SeedOpt = None,
    columns: ColumnsOpt = None,
    drop: DropOpt = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Model file (default: DATA stem + .lmx).")
    ] = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Train a variational autoencoder (missing values allowed: the likelihood skips them)."""
    from latentmix.io import save

    vae = _vae_module()
    ui = Ui(quiet=quiet, json=json)
    likelihood = _check_choice("--likelihood", likelihood, ("bernoulli", "gaussian"))
    try:
        dims = tuple(int(h) for h in hidden.split(",") if h.strip())
    except ValueError:
        raise CLIError(f"--hidden {hidden!r} must be comma-separated integers") from None
    model_path = output or ("model.lmx" if data == "-" else Path(data).stem + ".lmx")
    _check_outputs(model=model_path)
    features = read_data(data, columns=columns, drop=drop, allow_missing=True)
    if likelihood == "bernoulli":
        observed = features.X[~np.isnan(features.X)]
        if observed.min() < 0 or observed.max() > 1:
            raise CLIError(
                f"{data}: the bernoulli likelihood needs values in [0, 1]; rescale the data "
                "or use --likelihood gaussian"
            )
    model = vae.VAE(
        latent_dim,
        hidden_dims=dims,
        likelihood=likelihood,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        random_state=seed,
        verbose=0 if quiet else 1,  # the VAE draws its own epoch bar on a terminal
    )
    try:
        model.fit(features.X)
    except ValueError as exc:
        raise CLIError(f"training the VAE failed: {str(exc).splitlines()[0]}") from exc
    save(model, model_path)
    elbo = float(np.mean(model.elbo(features.X)))
    summary = {
        "class": "VAE",
        "latent_dim": latent_dim,
        "epochs": int(model.n_iter_),
        "final_loss": float(model.loss_curve_[-1]),
        "mean_elbo": elbo,
        "n_samples": int(features.X.shape[0]),
        "n_features": int(features.X.shape[1]),
        "model_file": model_path,
    }
    if json:
        ui.emit_json(summary)
        return
    from latentmix.cli._render import key_values

    ui.print(key_values("VAE", summary))


def _load_vae(model_file: str) -> Any:
    _vae_module()
    model = load_model(model_file)
    require_fitted(model, model_file, ("VAE",))
    return model


def _vae_input(model: Any, data: str, columns: list[str] | None, drop: list[str] | None) -> Any:
    """The rows a VAE reads (missing values allowed), with the feature count checked."""
    return model_input(model, data, columns=columns, drop=drop, allow_missing=True)[1]


@vae_app.command("sample")
def vae_sample(
    model_file: ModelArg,
    n_samples: Annotated[int, typer.Option("--n-samples", "-n", min=1)] = 16,
    seed: SeedOpt = None,
    output: OutputOpt = None,
    png: Annotated[
        str | None, typer.Option("--png", help="Also draw the samples as an image grid.")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Generate rows from a trained VAE (decoder means of z drawn from the prior)."""
    import pandas as pd

    _check_outputs(output, model=png)
    model = _load_vae(model_file)
    drawn = np.asarray(model.sample(n_samples, random_state=seed))
    out = pd.DataFrame(drawn, columns=feature_names(model, drawn.shape[1]))
    if png is not None:
        from latentmix.io._writers import write_bytes
        from latentmix.plot import plot_sample_grid, to_png

        shape = tuple(model.image_shape[-2:]) if model.image_shape else None
        try:
            fig = plot_sample_grid(drawn, image_shape=shape)  # type: ignore[arg-type]
        except ValueError as exc:
            raise CLIError(f"--png: {exc}") from exc
        write_bytes(png, to_png(fig))
    write_output(out, output)
    if output:
        Ui(quiet=quiet).info(f"wrote {len(out)} generated rows to {output}")


@vae_app.command("encode")
def vae_encode(
    model_file: ModelArg,
    data: DataArg,
    output: OutputOpt = None,
    png: Annotated[
        str | None, typer.Option("--png", help="Also draw the latent space (first two dims).")
    ] = None,
    columns: ColumnsOpt = None,
    drop: DropOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Latent codes of each row: posterior means z0, z1, ... and log-variances."""
    import pandas as pd

    _check_outputs(output, model=png)
    model = _load_vae(model_file)
    features = _vae_input(model, data, columns, drop)
    mean, logvar = model.encode(features.X)
    mean, logvar = np.asarray(mean), np.asarray(logvar)
    out = pd.DataFrame(mean, columns=[f"z{i}" for i in range(mean.shape[1])])
    for i in range(logvar.shape[1]):
        out[f"logvar{i}"] = logvar[:, i]
    if png is not None:
        from latentmix.io._writers import write_bytes
        from latentmix.plot import plot_latent, to_png

        write_bytes(png, to_png(plot_latent(mean).figure))
    write_output(out, output)
    if output:
        Ui(quiet=quiet).info(f"wrote {len(out)} latent codes to {output}")


@vae_app.command("score")
def vae_score(
    model_file: ModelArg,
    data: DataArg,
    output: OutputOpt = None,
    n_importance: Annotated[int, typer.Option("--n-importance", min=1)] = 100,
    seed: SeedOpt = None,
    threshold: Annotated[float | None, typer.Option("--threshold")] = None,
    top: Annotated[int | None, typer.Option("--top", min=1)] = None,
    columns: ColumnsOpt = None,
    drop: DropOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Importance-weighted log p(x) per row (low = unusual), as for 'latentmix score'."""
    import pandas as pd

    _check_outputs(output)
    model = _load_vae(model_file)
    features = _vae_input(model, data, columns, drop)
    lp = np.asarray(
        model.score_samples(features.X, n_importance=n_importance, random_state=seed),
        dtype=np.float64,
    )
    out = pd.DataFrame({"row": np.arange(lp.shape[0]), "log_density": lp})
    if threshold is not None:
        out["anomaly"] = lp < threshold
    if top is not None:
        out = out.iloc[np.argsort(lp, kind="stable")[:top]]
    write_output(out, output)
    if output:
        Ui(quiet=quiet).info(f"wrote {len(out)} scored rows to {output}")
