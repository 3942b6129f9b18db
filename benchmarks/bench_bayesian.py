"""Side-by-side timing: latentmix.BayesianGaussianMixture against scikit-learn's.

Both fit the same data from the same kind of start (one random row per component, the same
seed), with ``tol=0`` so that both run exactly ``--iters`` iterations; the time per
iteration is the fit time divided by the iterations (the start costs one pass and is
included). Prints one row per covariance type and the ratio sklearn / latentmix.

    python benchmarks/bench_bayesian.py            # n=100000, d=10, k=10
    python benchmarks/bench_bayesian.py --quick    # a smaller problem, seconds
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture

from latentmix.mixture._bayesian_mixture import BayesianGaussianMixture

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def make_data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    centers = rng.randn(k, d) * 5.0
    labels = rng.randint(k, size=n)
    return centers[labels] + rng.randn(n, d)


def best_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(
    n: int = 100_000, d: int = 10, k: int = 10, iters: int = 10, repeat: int = 3
) -> list[tuple[str, float, float]]:
    """(covariance_type, sklearn s/iter, latentmix s/iter) for each covariance type."""
    X = make_data(n, d, k)
    kw = dict(n_components=k, init_params="random_from_data", max_iter=iters, tol=0.0)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for ct in COVARIANCE_TYPES:
            sk = best_time(
                lambda ct=ct: SkBayesianGaussianMixture(
                    covariance_type=ct, random_state=0, **kw
                ).fit(X),
                repeat,
            )
            ours = best_time(
                lambda ct=ct: BayesianGaussianMixture(covariance_type=ct, random_state=0, **kw).fit(
                    X
                ),
                repeat,
            )
            rows.append((ct, sk / iters, ours / iters))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="n=20000, d=5, repeat=1")
    args = parser.parse_args()
    if args.quick:
        args.n, args.d, args.repeat = 20_000, 5, 1
    print(f"BayesianGaussianMixture: n={args.n} d={args.d} k={args.k} iterations={args.iters}")
    print(f"{'covariance':<10} {'sklearn s/iter':>15} {'latentmix s/iter':>17} {'ratio':>7}")
    for ct, sk, ours in run(args.n, args.d, args.k, args.iters, args.repeat):
        print(f"{ct:<10} {sk:>15.4f} {ours:>17.4f} {sk / ours:>6.1f}x")


if __name__ == "__main__":
    main()
