"""Side-by-side timing: latentmix.BayesianGaussianMixture against scikit-learn's.

Both fit the same data from the same start (``init_params="random_from_data"`` with the
same seed picks the same seed rows in both), with ``tol=0`` so that both run exactly
``--iters`` iterations; the time per iteration is the fit time divided by the iterations
(the start is included: scikit-learn's is one pass over the rows, ours reads only the K
seed rows). The fits are **interleaved in one process**, the order flipped every repeat,
and each time is the **median** over the repeats.

scikit-learn is timed twice, with its default BLAS threads and with BLAS pinned to one
thread, and the ratio uses the **faster** of the two: on a loaded machine threaded
OpenBLAS is often several times slower than one thread, and the ratio must not profit
from that (the protocol of ``benchmarks/RESULTS.md``). The ``check`` column compares the
final lower bounds of the two fits (``tied`` starts differ by design: scikit-learn's
seeded ``tied`` start sums x xᵀ over every row about the origin, see ``resp_stats``).

    python benchmarks/bench_bayesian.py                  # n=100000, d=10, k=10
    python benchmarks/bench_bayesian.py --types diag spherical --repeats 9
    python benchmarks/bench_bayesian.py --quick          # a smaller problem, seconds

Only ratios measured side by side mean anything on a shared machine; the load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from threadpoolctl import threadpool_limits

from latentmix.mixture._bayesian_mixture import BayesianGaussianMixture

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def make_data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    centers = rng.randn(k, d) * 5.0
    labels = rng.randint(k, size=n)
    return centers[labels] + rng.randn(n, d)


@dataclass(frozen=True)
class Row:
    covariance_type: str
    sklearn: float  # s/iter, default BLAS threads
    sklearn_one_thread: float  # s/iter, BLAS pinned to one thread
    ours: float  # s/iter
    bound_rel_diff: float  # |ours − sklearn| / |sklearn| of the final lower bound

    @property
    def reference(self) -> float:
        return min(self.sklearn, self.sklearn_one_thread)

    @property
    def ratio(self) -> float:
        return self.reference / self.ours


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(
    n: int = 100_000,
    d: int = 10,
    k: int = 10,
    iters: int = 10,
    repeats: int = 5,
    types: tuple[str, ...] = COVARIANCE_TYPES,
) -> list[Row]:
    """One :class:`Row` per covariance type (times are medians over ``repeats``)."""
    X = make_data(n, d, k)
    kw: dict[str, Any] = dict(
        n_components=k, init_params="random_from_data", max_iter=iters, tol=0.0
    )
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for ct in types:

            def sk(ct: str = ct) -> SkBayesianGaussianMixture:
                return SkBayesianGaussianMixture(covariance_type=ct, random_state=0, **kw).fit(X)

            def sk_one(ct: str = ct) -> SkBayesianGaussianMixture:
                with threadpool_limits(1):
                    return sk(ct)

            def ours(ct: str = ct) -> BayesianGaussianMixture:
                return BayesianGaussianMixture(covariance_type=ct, random_state=0, **kw).fit(X)

            ours()  # compile the Numba kernels outside the timings (once per machine)
            fns = {"sklearn": sk, "sklearn_one_thread": sk_one, "ours": ours}
            times: dict[str, list[float]] = {name: [] for name in fns}
            fitted: dict[str, Any] = {}
            for rep in range(repeats):
                order = list(fns) if rep % 2 == 0 else list(fns)[::-1]
                for name in order:
                    seconds, fitted[name] = _timed(fns[name])
                    times[name].append(seconds / iters)
            ref_bound = float(np.ravel(fitted["sklearn"].lower_bound_)[0])
            our_bound = float(fitted["ours"].lower_bound_)
            rows.append(
                Row(
                    ct,
                    float(np.median(times["sklearn"])),
                    float(np.median(times["sklearn_one_thread"])),
                    float(np.median(times["ours"])),
                    abs(our_bound - ref_bound) / abs(ref_bound),
                )
            )
    return rows


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--types", nargs="+", choices=COVARIANCE_TYPES, default=COVARIANCE_TYPES)
    parser.add_argument("--quick", action="store_true", help="n=20000, d=5, repeats=1")
    args = parser.parse_args()
    if args.quick:
        args.n, args.d, args.repeats = 20_000, 5, 1
    print(
        f"BayesianGaussianMixture: n={args.n} d={args.d} k={args.k} iterations={args.iters} "
        f"repeats={args.repeats} (medians, interleaved)"
    )
    print(f"load average before: {_load()}")
    header = (
        f"{'covariance':<10} {'sklearn ms/iter':>16} {'sk 1-thread':>12} "
        f"{'latentmix ms/iter':>18} {'ratio':>7}  check (final lower bound)"
    )
    print(header)
    rows = run(args.n, args.d, args.k, args.iters, args.repeats, tuple(args.types))
    for r in rows:
        check = f"rel diff {r.bound_rel_diff:.1e}"
        if r.covariance_type != "tied":
            check += " ok" if r.bound_rel_diff < 1e-6 else " MISMATCH"
        else:
            check += " (tied start differs by design)"
        print(
            f"{r.covariance_type:<10} {r.sklearn * 1e3:>16.1f} {r.sklearn_one_thread * 1e3:>12.1f} "
            f"{r.ours * 1e3:>18.1f} {r.ratio:>6.2f}x  {check}"
        )
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
