"""The fourteen parsimonious models against R's mclust: log-likelihoods, df, cost.

For iris, wine (raw, unstandardised: scikit-learn's bundled copy, written to CSV for R
with 17 significant digits, so both sides see the same numbers) and Old Faithful
(``tests/data/faithful.csv``, R's ``faithful``), every model and K = 1..9:

* mclust: ``Mclust(X, G = K, modelNames = M)`` via ``compare_mclust_models.R``;
* ours: the dense reference EM of ``latentmix.gaussian._parsimonious_em`` from a handful
  of starts (Ward on raw and standardised data, k-means++), best log-likelihood;
* sanity: our log-likelihood at mclust's fitted parameters, and our EM started there.

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
    initial_resps,
    log_likelihood,
    scatter_about_means,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
MULTIVARIATE = MODELS[:14]
R_COMMAND = "Mclust(X, G = G, modelNames = M, verbose = FALSE)"


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


def best_loglik(X: np.ndarray, model: str, k: int, n_starts: int) -> float:
    best = -np.inf
    for resp in initial_resps(X, k, n_starts):
        fit = fit_em(X, model, resp=resp, max_iter=2000, tol=1e-10)
        if np.isfinite(fit.log_likelihood):
            best = max(best, fit.log_likelihood)
    return best


def compare(n_starts: int, write: bool, only: list[str] | None) -> None:
    data = datasets()
    results, params = run_mclust(data)
    if write:
        write_table(results)
    if only:
        results = results[results.dataset.isin(only)]
    rows = []
    for r in results.itertuples():
        X = data[r.dataset]
        d = X.shape[1]
        t0 = time.perf_counter()
        ours = best_loglik(X, r.model, r.G, n_starts)
        seconds = time.perf_counter() - t0
        at_theirs = from_theirs = np.nan
        if np.isfinite(r.loglik):
            pro, means, cov = mclust_params(params, r.dataset, r.model, r.G, d)
            at_theirs = log_likelihood(X, pro, means, cov)
            from_theirs = fit_em(X, r.model, params=(pro, means, cov), max_iter=2000).log_likelihood
        rows.append(
            {
                "dataset": r.dataset,
                "model": r.model,
                "K": r.G,
                "mclust": r.loglik,
                "ours": ours,
                "ours_at_mclust_params": at_theirs,
                "ours_from_mclust_params": from_theirs,
                "df_mclust": r.df,
                "df_ours": n_parameters(r.model, r.G, d),
                "seconds": seconds,
            }
        )
        print(
            f"{r.dataset} {r.model} K={r.G}: mclust {r.loglik:.4f} ours {ours:.4f} "
            f"from mclust {from_theirs:.4f} ({seconds:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
    table = pd.DataFrame(rows)
    ok = table.mclust.isna() | (table.ours >= table.mclust - 1e-6 * table.mclust.abs())
    table["ok"] = ok
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    fitted = table.mclust.notna()
    print(
        f"\n{int(ok[fitted].sum())}/{int(fitted.sum())} fits at least mclust's log-likelihood "
        f"(-1e-6 relative); mclust failed on {int((~fitted).sum())}; df equal on "
        f"{int((table.df_mclust[fitted] == table.df_ours[fitted]).sum())}/{int(fitted.sum())}."
    )
    gap = (table.ours_at_mclust_params - table.mclust).abs()[fitted]
    print(f"|our loglik at mclust's parameters − mclust's loglik|: max {gap.max():.2e}")
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
    parser.add_argument("--starts", type=int, default=6, help="restarts per fit (default 6)")
    parser.add_argument("--write", action="store_true", help="store tests/data/mclust_models.csv")
    parser.add_argument("--timing", action="store_true", help="cost per EM iteration vs VVV")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--datasets", nargs="*", help="a subset of iris, wine, faithful")
    args = parser.parse_args(argv)
    if args.timing:
        timing(args.repeats)
    else:
        compare(args.starts, args.write, args.datasets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
