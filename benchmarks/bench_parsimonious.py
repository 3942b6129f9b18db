"""Cost of the fourteen mclust models next to VVV, through the production GaussianMixture.

Run (one process, one thread, a quiet machine if possible)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_parsimonious.py
    ... bench_parsimonious.py --datasets wine --models VVV,EVE,VVE --repeats 9

For each data set and model, after a 20-iteration fit (k-means start, ``random_state=0``):

* **M-step**: :func:`~latentmix.gaussian._mstep.parsimonious_mstep` on the statistics of
  iteration 21, warm-started from the M-step state of iteration 20 — what every EM
  iteration pays (for VVV, EEE, VVI, VII the unconstrained :func:`~latentmix.gaussian.mstep`).
  **cold** is the same M-step without a warm start (paid once per start).
* **EM iteration**: the cost of iterations 21 to 20 + N (``--em-iters``, E-step, M-step,
  bookkeeping): a ``tol=0`` fit of 20 + N iterations minus one of 20 (the same start and
  first 20 iterations), timed back to back, divided by N; the median over
  ``max(5, repeats // 2)`` pairs, the minimum in brackets. **20-iteration fit**: that
  whole fit (k-means start, cold M-step, 20 iterations), the median.

M-step times are the minimum over ``--repeats`` (the least disturbed run on a shared
machine), the median in brackets. The ratios are to VVV's, of the same statistic as the
first number of the column.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from latentmix import GaussianMixture
from latentmix.gaussian import estep_stats, mstep
from latentmix.gaussian._mstep import parsimonious_mstep
from latentmix.gaussian._params import GaussianParams
from latentmix.gaussian._parsimonious import MODELS, is_constrained, kernel_covariance_type

FOURTEEN = MODELS[:14]


def datasets() -> dict[str, tuple[np.ndarray, int]]:
    from sklearn.datasets import load_wine

    rng = np.random.default_rng(0)
    n, d, k = 4998, 13, 6
    synthetic = np.concatenate(
        [rng.normal(size=(n // k, d)) * rng.uniform(0.5, 2, d) + 3 * j for j in range(k)]
    )
    return {"wine": (load_wine().data, 6), "synthetic": (synthetic, k)}


def clock(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(minimum, median) seconds of ``fn()`` over ``repeats`` calls, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.min(times)), float(np.median(times))


def fitted(X: np.ndarray, k: int, model: str, n_iter: int) -> GaussianMixture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 20 iterations need not converge
        return GaussianMixture(
            k, covariance_type=model, max_iter=n_iter, tol=0, random_state=0
        ).fit(X)


def params_of(gm: GaussianMixture) -> GaussianParams:
    ct = kernel_covariance_type(gm.covariance_type)
    return GaussianParams(ct, gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)


def measure(X: np.ndarray, k: int, model: str, repeats: int, em_iters: int) -> dict[str, Any]:
    reg = 1e-6
    s20 = estep_stats(X, None, params_of(fitted(X, k, model, 19)))
    s21 = estep_stats(X, None, params_of(fitted(X, k, model, 20)))
    out: dict[str, Any] = {}
    if is_constrained(model):
        _, _, state = parsimonious_mstep(s20, model, reg)
        out["mstep"] = clock(lambda: parsimonious_mstep(s21, model, reg, previous=state), repeats)
        out["cold"] = clock(lambda: parsimonious_mstep(s21, model, reg), repeats)
    else:
        out["mstep"] = clock(lambda: mstep(s21, reg), repeats)
        out["cold"] = out["mstep"]

    # Iterations 21 to 20 + em_iters: the difference of two fits that share their start
    # and first 20 iterations (start, cold M-step and all), timed back to back.
    diffs, shorts = [], []
    for _ in range(max(5, repeats // 2)):
        t0 = time.perf_counter()
        fitted(X, k, model, 20 + em_iters)
        t1 = time.perf_counter()
        fitted(X, k, model, 20)
        t2 = time.perf_counter()
        diffs.append(((t1 - t0) - (t2 - t1)) / em_iters)
        shorts.append(t2 - t1)
    out["em"] = (float(np.min(diffs)), float(np.median(diffs)))
    short = (float(np.min(shorts)), float(np.median(shorts)))
    out["fit"] = short
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="wine,synthetic")
    parser.add_argument("--models", default=",".join(FOURTEEN))
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--em-iters", type=int, default=40)
    args = parser.parse_args(argv)
    models = args.models.split(",")
    if "VVV" not in models:
        models = ["VVV", *models]
    data = datasets()
    for name in args.datasets.split(","):
        X, k = data[name]
        print(f"\n{name}: n={X.shape[0]}, D={X.shape[1]}, K={k}; --repeats {args.repeats}")
        print(
            "| model | M-step (ms) | vs VVV | cold M-step (ms) | EM iteration (ms) | vs VVV "
            "| 20-iteration fit (ms) | vs VVV |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        cost = {m: measure(X, k, m, args.repeats, args.em_iters) for m in models}
        base = cost["VVV"]
        for m in models:
            c = cost[m]
            print(
                f"| {m} | {1e3 * c['mstep'][0]:.3f} [{1e3 * c['mstep'][1]:.3f}] "
                f"| {c['mstep'][0] / base['mstep'][0]:.1f} "
                f"| {1e3 * c['cold'][0]:.2f} "
                f"| {1e3 * c['em'][1]:.3f} [{1e3 * c['em'][0]:.3f}] "
                f"| {c['em'][1] / base['em'][1]:.2f} "
                f"| {1e3 * c['fit'][1]:.1f} | {c['fit'][1] / base['fit'][1]:.2f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
