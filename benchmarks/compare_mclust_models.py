"""The fourteen parsimonious models against R's mclust: log-likelihoods, df, cost.

For iris, wine (raw, unstandardised: scikit-learn's bundled copy, written to CSV for R
with 17 significant digits, so both sides see the same numbers) and Old Faithful
(``tests/data/faithful.csv``, R's ``faithful``), every model and K = 1..9:

* mclust: ``Mclust(X, G = K, modelNames = M)`` via ``compare_mclust_models.R``;
* ours: the library path users get, ``select_mixture(X, range(1, 10),
  covariance_types="all", tol=1e-6, max_iter=1000, reg_covar=1e-10, n_init=2,
  random_state=0)`` (its default starts: the VVV agglomeration tree, which is mclust's,
  Ward's tree, k-means, and split/merge chains), the best log-likelihood per cell;
* sanity: our log-likelihood at mclust's fitted parameters (the dense reference density
  of ``latentmix.gaussian._parsimonious_em``), and with ``--from-mclust`` the reference
  EM started there.

    python benchmarks/compare_mclust_models.py                 # run R, print the table
    python benchmarks/compare_mclust_models.py --write         # also store tests/data/mclust_models.csv
    python benchmarks/compare_mclust_models.py --timing        # cost per EM iteration vs VVV
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from latentmix.gaussian._parsimonious import MODELS, constrained_covariances, n_parameters
from latentmix.gaussian._parsimonious_em import (
    fit_em,
    log_likelihood,
    scatter_about_means,
)
from latentmix.mixture._selection import select_mixture

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
MULTIVARIATE = MODELS[:14]
R_COMMAND = "Mclust(X, G = G, modelNames = M, verbose = FALSE)"
#: select_mixture's options, as in benchmarks/compare_mclust.py (mclust adds no ridge)
OPTIONS = dict(tol=1e-6, max_iter=1000, reg_covar=1e-10, n_init=2, random_state=0)


def datasets() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_iris, load_wine

    faithful = pd.read_csv(DATA / "faithful.csv", comment="#")[["eruptions", "waiting"]]
    return {
        "iris": load_iris().data.astype(np.float64),
        "wine": load_wine().data.astype(np.float64),
        "faithful": faithful.to_numpy(dtype=np.float64),
    }


def run_mclust(data: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame]:
    with tempfile.TemporaryDirectory() as tmp:
        specs = []
        for name, X in data.items():
            path = Path(tmp) / f"{name}.csv"
            cols = [f"x{j}" for j in range(X.shape[1])]
            pd.DataFrame(X, columns=cols).to_csv(path, index=False, float_format="%.17g")
            specs.append(f"{name}={path}")
        script = Path(__file__).with_suffix(".R")
        subprocess.run(["Rscript", str(script), tmp, *specs], check=True)
        return pd.read_csv(Path(tmp) / "results.csv"), pd.read_csv(Path(tmp) / "parameters.csv")


def mclust_params(
    params: pd.DataFrame, dataset: str, model: str, k: int, d: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = params[(params.dataset == dataset) & (params.model == model) & (params.G == k)]
    pro = p[p.what == "pro"].sort_values("k").value.to_numpy()
    means = np.zeros((k, d))
    m = p[p.what == "mean"]
    means[m.k.to_numpy() - 1, m.i.to_numpy() - 1] = m.value.to_numpy()
    cov = np.zeros((k, d, d))
    s = p[p.what == "sigma"]
    cov[s.k.to_numpy() - 1, s.i.to_numpy() - 1, s.j.to_numpy() - 1] = s.value.to_numpy()
    return pro, means, cov


def compare(write: bool, only: list[str] | None, from_mclust: bool) -> None:
    data = datasets()
    results, params = run_mclust(data)
    if write:
        write_table(results)
    if only:
        results = results[results.dataset.isin(only)]
    rows = []
    for name, part in results.groupby("dataset", sort=False):
        X = data[str(name)]
        d = X.shape[1]
        t0 = time.perf_counter()
        sel = select_mixture(X, range(1, 10), covariance_types="all", **OPTIONS)
        seconds = time.perf_counter() - t0
        print(f"{name}: select_mixture over 14 models x K=1..9 in {seconds:.1f} s", flush=True)
        ours = sel.table_.set_index(["n_components", "covariance_type"])
        for r in part.itertuples():
            at_theirs = from_theirs = np.nan
            if np.isfinite(r.loglik):
                pro, means, cov = mclust_params(params, r.dataset, r.model, r.G, d)
                at_theirs = log_likelihood(X, pro, means, cov)
                if from_mclust:
                    fit = fit_em(X, r.model, params=(pro, means, cov), max_iter=2000)
                    from_theirs = fit.log_likelihood
            row = ours.loc[(r.G, r.model)]
            rows.append(
                {
                    "dataset": r.dataset,
                    "model": r.model,
                    "K": r.G,
                    "mclust": r.loglik,
                    "ours": row["log_likelihood"],
                    "ours_at_mclust_params": at_theirs,
                    "ours_from_mclust_params": from_theirs,
                    "df_mclust": r.df,
                    "df_ours": n_parameters(r.model, r.G, d),
                    "converged": row["converged"],
                }
            )
    table = pd.DataFrame(rows)
    fitted = table.mclust.notna()
    ok = ~fitted | (table.ours >= table.mclust - 1e-6 * table.mclust.abs())
    table["ok"] = ok
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(
        f"\n{int(ok[fitted].sum())}/{int(fitted.sum())} fits at least mclust's log-likelihood "
        f"(-1e-6 relative); mclust failed on {int((~fitted).sum())}; df equal on "
        f"{int((table.df_mclust[fitted] == table.df_ours[fitted]).sum())}/{int(fitted.sum())}."
    )
    gap = (table.ours_at_mclust_params - table.mclust).abs()[fitted]
    print(f"|our loglik at mclust's parameters − mclust's loglik|: max {gap.max():.2e}")
    print("\n| model | " + " | ".join(table.dataset.unique()) + " |")
    print("| --- |" + " --- |" * table.dataset.nunique())
    for model in MULTIVARIATE:
        cells = []
        for name in table.dataset.unique():
            t = table[(table.model == model) & (table.dataset == name)]
            f = t.mclust.notna()
            na = f" ({int((~f).sum())} NA)" if (~f).any() else ""
            gain = (t.ours - t.mclust)[f].max()
            cells.append(f"{int(t.ok[f].sum())}/{int(f.sum())}{na}, best gain {gain:+.1f}")
        print(f"| {model} | " + " | ".join(cells) + " |")
    worse = table[fitted & ~ok]
    if len(worse):
        print("\nbelow mclust:")
        print(worse.to_string(index=False))


def write_table(results: pd.DataFrame) -> None:
    out = DATA / "mclust_models.csv"
    with out.open("w") as fh:
        fh.write(
            "# R's mclust 6.0.0 (Debian r-cran-mclust): for each dataset, model M and "
            f"G = 1..9, {R_COMMAND}; written by benchmarks/compare_mclust_models.py "
            "(see benchmarks/compare_mclust_models.R). Data: iris and wine from "
            "scikit-learn's load_iris/load_wine (raw, unstandardised; iris equals R's iris), "
            "faithful from tests/data/faithful.csv. Empty loglik, df, bic: mclust could not fit.\n"
        )
        table = results.drop(columns=["fitted"]).astype({"df": "Int64"})
        table.to_csv(fh, index=False, float_format="%.10f")
    print(f"wrote {out}")


def timing(repeats: int) -> None:
    """Median seconds of one M-step and one EM iteration per model, as a ratio to VVV."""
    rng = np.random.default_rng(0)
    for n, d, k in [(5000, 4, 4), (5000, 13, 6)]:
        X = np.concatenate(
            [rng.normal(size=(n // k, d)) * rng.uniform(0.5, 2, d) + 3 * j for j in range(k)]
        )
        resp = rng.dirichlet(np.ones(k), size=X.shape[0])
        nk, _, scatter = scatter_about_means(X, resp)
        warm = {m: fit_em(X, m, resp=resp, max_iter=20) for m in MULTIVARIATE}
        cost: dict[str, tuple[float, float]] = {}
        for m in MULTIVARIATE:
            ms, it = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                constrained_covariances(m, nk, scatter, previous=warm[m].state, tol=1e-8)
                ms.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                fit_em(
                    X,
                    m,
                    params=(warm[m].weights, warm[m].means, warm[m].covariances),
                    max_iter=2,
                    tol=0,
                )
                it.append((time.perf_counter() - t0) / 2)
            cost[m] = (float(np.median(ms)), float(np.median(it)))
        print(f"\nn={X.shape[0]}, D={d}, K={k}: median of {repeats}; warm-started M-step")
        print("| model | M-step (ms) | vs VVV | EM iteration (ms) | vs VVV |")
        print("| --- | ---: | ---: | ---: | ---: |")
        base = cost["VVV"]
        for m in MULTIVARIATE:
            c = cost[m]
            print(
                f"| {m} | {1e3 * c[0]:.3f} | {c[0] / base[0]:.1f} | {1e3 * c[1]:.2f} | {c[1] / base[1]:.2f} |"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="store tests/data/mclust_models.csv")
    parser.add_argument("--timing", action="store_true", help="cost per EM iteration vs VVV")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--datasets", nargs="*", help="a subset of iris, wine, faithful")
    parser.add_argument(
        "--from-mclust", action="store_true", help="also run the reference EM from mclust's fit"
    )
    args = parser.parse_args(argv)
    if args.timing:
        timing(args.repeats)
    else:
        compare(args.write, args.datasets, args.from_mclust)
    return 0


if __name__ == "__main__":
    sys.exit(main())
