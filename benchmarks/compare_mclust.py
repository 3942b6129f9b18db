"""Best log-likelihood per (K, covariance type): latentmix.select_mixture against R's mclust.

Run from the repository root (needs R with mclust: ``apt-get install r-cran-mclust``)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_mclust.py [--write-csv]

For each data set (scikit-learn's iris, wine, breast cancer; R's Old Faithful) and each
K = 1..9 it prints mclust's log-likelihood for VVV, EEE, VVI, VII (``Mclust(X, G=1:9,
modelNames=...)``, its default hierarchical-agglomeration start) and ours for full, tied,
diag, spherical (``select_mixture`` with its default starts, ``n_init=2``, ``tol=1e-6``,
``reg_covar=1e-10``: mclust adds no regularisation, and 1e-6 is not small against the
breast-cancer variances), and the
difference (ours − mclust; NA where mclust returns no fit). It also checks that our VVV
agglomeration tree (``latentmix.mixture._hc``) cut at K = 1..9 gives mclust's partitions
(``hclass(hc(X, use = "SVD"), 1:9)``, mclust's default start), as adjusted Rand indices.
``--write-csv`` stores mclust's numbers in ``tests/data/mclust_loglik.csv`` and its
partitions in ``tests/data/mclust_hclass.csv``.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.metrics import adjusted_rand_score

from latentmix.mixture._hc import cut_merges, svd_transform, vvv_agglomeration
from latentmix.mixture._selection import select_mixture

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
R_SCRIPT = """
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1]))
out <- NULL
for (m in c("VVV", "EEE", "VVI", "VII")) for (g in 1:9) {
  fit <- tryCatch(Mclust(X, G = g, modelNames = m, verbose = FALSE), error = function(e) NULL)
  ll <- if (is.null(fit)) NA else fit$loglik
  out <- rbind(out, data.frame(model = m, n_components = g, loglik = ll))
}
write.csv(out, stdout(), row.names = FALSE)
"""
R_HCLASS = """
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1]))
cl <- hclass(hc(X, modelName = "VVV", use = "SVD"), 1:9)
colnames(cl) <- paste0("K", 1:9)
write.csv(cl, stdout(), row.names = FALSE)
"""


def datasets() -> dict[str, np.ndarray]:
    return {
        "iris": load_iris().data,
        "wine": load_wine().data,
        "breast_cancer": load_breast_cancer().data,
        "faithful": pd.read_csv(ROOT / "tests" / "data" / "faithful.csv").to_numpy(float),
    }


def run_r(code: str, X: np.ndarray) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "X.csv"
        script = Path(tmp) / "run.R"
        pd.DataFrame(X).to_csv(data, index=False, float_format="%.17g")
        script.write_text(code)
        out = subprocess.run(
            ["Rscript", str(script), str(data)], check=True, capture_output=True, text=True
        ).stdout
    return pd.read_csv(io.StringIO(out))


def mclust_loglik(X: np.ndarray) -> pd.DataFrame:
    return run_r(R_SCRIPT, X)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-csv", action="store_true")
    args = parser.parse_args()
    rows, trees = [], []
    seconds = {}
    for name, X in datasets().items():
        ref = run_r(R_SCRIPT, X)
        ref["dataset"] = name
        hclass = run_r(R_HCLASS, X)
        initial, merges = vvv_agglomeration(svd_transform(X))
        cuts = cut_merges(initial, merges, range(1, 10))
        agreement = [adjusted_rand_score(hclass[f"K{k}"], cuts[k]) for k in range(1, 10)]
        print(
            f"{name}: VVV tree vs mclust's, ARI at K=1..9: "
            + " ".join(f"{a:.3f}" for a in agreement)
        )
        hclass.insert(0, "dataset", name)
        trees.append(hclass)
        t0 = time.perf_counter()
        sel = select_mixture(
            X, range(1, 10), tol=1e-6, max_iter=1000, reg_covar=1e-10, n_init=2, random_state=0
        )
        seconds[name] = time.perf_counter() - t0
        ours = sel.table_.rename(columns={"log_likelihood": "ours"})
        ours["model"] = ours["covariance_type"].map(MODELS)
        merged = ref.merge(ours[["model", "n_components", "covariance_type", "ours"]])
        merged["diff"] = merged["ours"] - merged["loglik"]
        rows.append(merged)
    table = pd.concat(rows, ignore_index=True)
    table = table.rename(columns={"loglik": "mclust"})
    cols = ["dataset", "covariance_type", "model", "n_components", "mclust", "ours", "diff"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    worst = table["diff"].min()
    print(f"\nworst (ours - mclust) over fitted cells: {worst:.6f}")
    print(f"cells where mclust has no fit: {int(table['mclust'].isna().sum())} of {len(table)}")
    fitted = table["mclust"].notna()
    ok = table["ours"] >= table["mclust"] - 1e-6 * table["mclust"].abs()
    print(
        f"cells at least mclust's (-1e-6 relative): {int(ok[fitted].sum())} of {int(fitted.sum())}"
    )
    print("select_mixture seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    if args.write_csv:
        path = ROOT / "tests" / "data" / "mclust_loglik.csv"
        table[["dataset", "model", "n_components", "mclust"]].to_csv(
            path, index=False, float_format="%.6f"
        )
        print(f"wrote {path}")
        path = ROOT / "tests" / "data" / "mclust_hclass.csv"
        pd.concat(trees, ignore_index=True).to_csv(path, index=False)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
