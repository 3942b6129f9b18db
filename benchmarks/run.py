"""Side-by-side timings of latentmix against scikit-learn, in one process, as ratios.

Every Gaussian-mixture case generates its data, fits ours and scikit-learn from identical
initial parameters with ``tol=0`` and a fixed number of iterations, checks that the final
log-likelihoods agree (1e-8 relative in float64), then times one EM iteration (E-step
statistics + M-step) of each, interleaved, and reports medians. The machine is shared, so
ours and the reference always run alternately, never in separate sessions.

    python benchmarks/run.py                 # every case
    python benchmarks/run.py --quick         # small smoke run (a few seconds)
    python benchmarks/run.py --cases full    # cases whose name contains "full"
    python benchmarks/run.py --list
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

F8 = np.float64


# -- cases -------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    kind: str  # "em", "em32", "predict", "kmeans", "silhouette", "memory"
    n: int
    d: int
    k: int
    ct: str = "full"
    target: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("em-full-1M-d2-k8", "em", 1_000_000, 2, 8, "full", ">= 10x sklearn"),
    Case("em-full-200k-d16-k16", "em", 200_000, 16, 16, "full", ">= 5x sklearn"),
    Case(
        "em-full-100k-d64-k32",
        "em",
        100_000,
        64,
        32,
        "full",
        ">= 3x sklearn, >= 0.5 GEMM",
        {"repeats": 3, "iters": 2},
    ),
    Case("em-diag-1M-d16-k16", "em", 1_000_000, 16, 16, "diag", ">= 5x sklearn"),
    Case("em-spherical-1M-d16-k16", "em", 1_000_000, 16, 16, "spherical", ">= 5x sklearn"),
    Case("em-tied-1M-d16-k16", "em", 1_000_000, 16, 16, "tied", ">= 5x sklearn"),
    Case("f32-full-1M-d2-k8", "em32", 1_000_000, 2, 8, "full", ">= 1.6x our float64"),
    Case("f32-full-200k-d16-k16", "em32", 200_000, 16, 16, "full", ">= 1.6x our float64"),
    Case("f32-full-100k-d64-k32", "em32", 100_000, 64, 32, "full", ">= 1.6x our float64"),
    Case("f32-diag-1M-d16-k16", "em32", 1_000_000, 16, 16, "diag", ">= 1.6x our float64"),
    Case("predict_proba-full-1M-d16-k16", "predict", 1_000_000, 16, 16, "full", ">= 5x sklearn"),
    Case("score_samples-full-1M-d16-k16", "score", 1_000_000, 16, 16, "full", ">= 5x sklearn"),
    Case("kmeans-lloyd-1M-d16-k16", "kmeans", 1_000_000, 16, 16, "", ">= 1x sklearn"),
    # No target: many clusters (the nearest-center search then weighs more).
    Case("kmeans-lloyd-500k-d16-k64", "kmeans", 500_000, 16, 64),
    Case("silhouette-20k-d16", "silhouette", 20_000, 16, 16, "", ">= 1.5x sklearn"),
    Case("memory-full-10M-d16-k16", "memory", 10_000_000, 16, 16, "full", "< 300 MB above data"),
]

QUICK = [
    Case("em-full-20k-d2-k4", "em", 20_000, 2, 4, "full"),
    Case("em-full-20k-d8-k4", "em", 20_000, 8, 4, "full"),
    Case("em-diag-20k-d8-k4", "em", 20_000, 8, 4, "diag"),
    Case("em-spherical-20k-d8-k4", "em", 20_000, 8, 4, "spherical"),
    Case("em-tied-20k-d8-k4", "em", 20_000, 8, 4, "tied"),
    Case("f32-full-20k-d8-k4", "em32", 20_000, 8, 4, "full"),
    Case("predict_proba-full-20k-d8-k4", "predict", 20_000, 8, 4, "full"),
    Case("score_samples-full-20k-d8-k4", "score", 20_000, 8, 4, "full"),
    Case("kmeans-lloyd-20k-d8-k4", "kmeans", 20_000, 8, 4),
    Case("kmeans-lloyd-20k-d8-k40", "kmeans", 20_000, 8, 40),
    Case("silhouette-2k-d8", "silhouette", 2_000, 8, 4),
    Case("memory-full-200k-d16-k16", "memory", 200_000, 16, 16, "full"),
]


# -- data and initial parameters ---------------------------------------------------------------


def make_data(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A mixture of k random Gaussians, generated component by component (no N×D temps)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d)) + 10.0  # away from the origin on purpose
    counts = rng.multinomial(n, np.full(k, 1.0 / k))
    X = np.empty((n, d))
    start = 0
    for j, c in enumerate(counts):
        A = rng.normal(size=(d, d)) / np.sqrt(d)
        L = np.linalg.cholesky(A @ A.T + 0.3 * np.eye(d))
        X[start : start + c] = centers[j] + rng.standard_normal((c, d)) @ L.T
        start += c
    X = X[rng.permutation(n)] if n <= 2_000_000 else X
    return X, centers


def init_params(X: np.ndarray, centers: np.ndarray, ct: str, seed: int = 1) -> dict[str, Any]:
    """Identical starting point for both libraries: perturbed centers, pooled covariance."""
    rng = np.random.default_rng(seed)
    k, d = centers.shape
    means = centers + rng.normal(scale=0.5, size=centers.shape)
    sub = X[rng.choice(X.shape[0], size=min(X.shape[0], 20_000), replace=False)]
    cov = np.cov(sub.T).reshape(d, d) / 4.0 + 0.1 * np.eye(d)
    prec = np.linalg.inv(cov)
    if ct == "full":
        precisions = np.broadcast_to(prec, (k, d, d)).copy()
    elif ct == "tied":
        precisions = prec
    elif ct == "diag":
        precisions = np.broadcast_to(1.0 / np.diag(cov), (k, d)).copy()
    else:
        precisions = np.full(k, 1.0 / np.diag(cov).mean())
    return {
        "weights_init": np.full(k, 1.0 / k),
        "means_init": means,
        "precisions_init": precisions,
    }


# -- timing helpers ---------------------------------------------------------------------------


def timeit(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, run alternately (order flipped every repeat)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(timeit(fns[name]))
    return {name: statistics.median(v) for name, v in times.items()}


def peak_mib(fn: Callable[[], Any]) -> float:
    """Peak NumPy/Python allocation of one call (tracemalloc), in MiB."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def gemm_gflops(repeats: int, dtype: Any = F8, size: int = 2048) -> dict[str, float]:
    """This machine's matrix-product speed, measured now (so it sees the same contention).

    Median over repeats, with BLAS's default threads and with one thread; "best" is the
    larger, the yardstick for our GFLOP/s.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size)).astype(dtype)
    B = rng.standard_normal((size, size)).astype(dtype)
    out: dict[str, float] = {}
    for name, threads in (("default", None), ("1thread", 1)):
        with threadpool_limits(threads):
            A @ B
            t = statistics.median(timeit(lambda: A @ B) for _ in range(max(repeats, 3)))
        out[name] = 2.0 * size**3 / t / 1e9
    out["best"] = max(out.values())
    return out


# -- the two libraries, one EM iteration each -----------------------------------------------------


def sk_model(case: Case, init: dict[str, Any], max_iter: int) -> Any:
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(
        case.k,
        covariance_type=case.ct,
        tol=0.0,
        max_iter=max_iter,
        init_params="random_from_data",
        random_state=0,
        **init,
    )


def lm_model(case: Case, init: dict[str, Any], max_iter: int) -> Any:
    from latentmix import GaussianMixture

    return GaussianMixture(
        case.k, covariance_type=case.ct, tol=0.0, max_iter=max_iter, random_state=0, **init
    )


def lm_params(case: Case, init: dict[str, Any]) -> Any:
    from latentmix.gaussian import GaussianParams
    from latentmix.gaussian._params import (
        covariances_from_precisions,
        precisions_cholesky_from_precisions,
    )

    prec = init["precisions_init"]
    return GaussianParams(
        case.ct,
        init["weights_init"].copy(),
        init["means_init"].copy(),
        covariances_from_precisions(prec, case.ct),
        precisions_cholesky_from_precisions(prec, case.ct),
    )


def lm_iteration(X: np.ndarray, params: Any, reg_covar: float = 1e-6) -> Callable[[], Any]:
    """One EM iteration of ours: statistics over all chunks, then the M-step."""
    from latentmix.em._data import ArrayData
    from latentmix.gaussian._kernels import chunk_width, estep_stats
    from latentmix.gaussian._mstep import mstep

    data = ArrayData(X)
    width = chunk_width(params.n_components, X.shape[1], params.covariance_type)

    def run() -> Any:
        stats = data.reduce(lambda Xc, wc: estep_stats(Xc, wc, params), width=width)
        return mstep(stats, reg_covar)

    return run


def sk_iteration(
    X: np.ndarray, case: Case, params: Any, blas_threads: int | None = None
) -> Callable[[], Any]:
    """One EM iteration of scikit-learn's (its own ``_e_step`` and ``_m_step``).

    ``blas_threads=1`` runs it with BLAS pinned to one thread: on a loaded machine
    multi-threaded BLAS can be much slower, and the reference gets the better of the two.
    """
    from threadpoolctl import threadpool_limits

    sk = sk_model(case, {}, 1)
    start = (params.weights, params.means, params.covariances, params.precisions_cholesky)

    def run() -> Any:
        with threadpool_limits(blas_threads):
            sk._set_parameters(tuple(np.copy(a) for a in start))
            _, log_resp = sk._e_step(X)
            sk._m_step(X, log_resp)

    return run


def em_flops(case: Case) -> float:
    """Work of the textbook full-covariance iteration: E-step 2NKD², M-step scatter 2NKD²."""
    if case.ct != "full":
        return float("nan")
    return 4.0 * case.n * case.k * case.d**2


# -- runners per kind ---------------------------------------------------------------------------


def fit_quietly(model: Any, X: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


def run_em_case(case: Case, args: argparse.Namespace, gemm: dict[str, float]) -> dict[str, Any]:
    X, centers = make_data(case.n, case.d, case.k)
    init = init_params(X, centers, case.ct)
    params = lm_params(case, init)
    row: dict[str, Any] = {"case": case.name, "target": case.target}
    n_iter = args.iters
    if case.kind == "em":
        n_iter = case.extra.get("iters", n_iter)
        sk = fit_quietly(sk_model(case, init, n_iter), X)
        ours = fit_quietly(lm_model(case, init, n_iter), X)
        rel = abs(sk.lower_bound_ - ours.lower_bound_) / abs(sk.lower_bound_)
        row["check"] = f"loglik rel {rel:.1e} " + ("ok" if rel < 1e-8 else "FAIL")
        fns = {
            "ours": lm_iteration(X, params),
            "sk1": sk_iteration(X, case, params, blas_threads=1),
        }
        if not args.sk_one_thread:
            fns["sk"] = sk_iteration(X, case, params)
        t = interleaved(fns, case.extra.get("repeats", args.repeats))
        # The reference is the faster of scikit-learn with its default BLAS threads and
        # with one BLAS thread (the loaded machine can make threaded BLAS much slower).
        t.setdefault("sk", float("nan"))
        t["ref"] = min(t["sk1"], t["sk"]) if t["sk"] == t["sk"] else t["sk1"]
        row["sk_default_s"], row["sk_1thread_s"] = t["sk"], t["sk1"]
        row["ref_name"] = "sklearn"
        flops = em_flops(case)
        if flops == flops:
            row["gflops"] = flops / t["ours"] / 1e9
            row["gemm_gflops"] = gemm["best"]
    else:  # float32 against our own float64
        X32 = X.astype(np.float32)
        f64 = fit_quietly(lm_model(case, init, n_iter), X)
        f32 = fit_quietly(lm_model(case, init, n_iter), X32)
        rel = abs(f64.lower_bound_ - f32.lower_bound_) / abs(f64.lower_bound_)
        drift = np.abs(f64.means_ - f32.means_).max() / np.abs(f64.means_).max()
        ok = rel < 1e-4 and drift < 1e-3
        row["check"] = f"f32 vs f64 loglik rel {rel:.1e}, means {drift:.1e} " + (
            "ok" if ok else "FAIL"
        )
        t = interleaved(
            {"ours": lm_iteration(X32, params), "ref": lm_iteration(X, params)}, args.repeats
        )
        row["ref_name"] = "ours f64"
    row["ours_s"], row["ref_s"] = t["ours"], t["ref"]
    row["ratio"] = t["ref"] / t["ours"]
    if not args.no_peak:
        row["ours_peak_mib"] = peak_mib(lm_iteration(X if case.kind == "em" else X32, params))
    return row


def run_predict_case(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.mixture import GaussianMixture as SK

    X, centers = make_data(case.n, case.d, case.k)
    init = init_params(X, centers, case.ct)
    ours = fit_quietly(lm_model(case, init, 2), X[:20_000])
    sk = SK(case.k, covariance_type=case.ct)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        setattr(sk, name, np.copy(getattr(ours, name)))
    sk.converged_, sk.n_iter_, sk.lower_bound_ = True, 2, ours.lower_bound_
    sk.n_features_in_ = case.d
    method = "predict_proba" if case.kind == "predict" else "score_samples"
    a, b = getattr(ours, method)(X[:50_000]), getattr(sk, method)(X[:50_000])
    err = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))
    from threadpoolctl import threadpool_limits

    def sk1() -> Any:
        with threadpool_limits(1):
            return getattr(sk, method)(X)

    t = interleaved(
        {
            "ours": lambda: getattr(ours, method)(X),
            "sk": lambda: getattr(sk, method)(X),
            "sk1": sk1,
        },
        args.repeats,
    )
    t["ref"] = min(t["sk"], t["sk1"])
    return {
        "sk_default_s": t["sk"],
        "sk_1thread_s": t["sk1"],
        "case": case.name,
        "target": case.target,
        "check": f"max rel diff {err:.1e} " + ("ok" if err < 1e-10 else "FAIL"),
        "ref_name": "sklearn",
        "ours_s": t["ours"],
        "ref_s": t["ref"],
        "ratio": t["ref"] / t["ours"],
    }


def _cluster_module(name: str) -> Any | None:
    try:
        mod = importlib.import_module("latentmix.cluster")
    except ImportError:
        return None
    return getattr(mod, name, None)


def run_kmeans_case(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    LMKMeans = _cluster_module("KMeans")
    row: dict[str, Any] = {"case": case.name, "target": case.target, "ref_name": "sklearn"}
    if LMKMeans is None:
        row["check"] = "skipped: latentmix.cluster.KMeans does not exist yet"
        return row
    from sklearn.cluster import KMeans as SKKMeans

    # Unclustered data from random rows: Lloyd keeps moving for many iterations, so a fit
    # with 1 + m iterations runs exactly m more Lloyd steps than a fit with 1 (checked).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((case.n, case.d))
    init = X[rng.choice(case.n, size=case.k, replace=False)]
    lo, hi = 1, 6

    def ours(iters: int) -> Any:
        return fit_quietly(LMKMeans(case.k, init=init, n_init=1, max_iter=iters, tol=0.0), X)

    def ref(iters: int) -> Any:
        return fit_quietly(
            SKKMeans(case.k, init=init, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd"), X
        )

    a, b = ours(hi), ref(hi)
    err = float(np.abs(a.cluster_centers_ - b.cluster_centers_).max())
    ran = a.n_iter_ == b.n_iter_ == hi
    row["check"] = f"centers max diff {err:.1e}, {a.n_iter_}/{b.n_iter_} iterations " + (
        "ok" if err < 1e-8 and ran else "FAIL"
    )
    t = interleaved(
        {
            "ours_lo": lambda: ours(lo),
            "ours_hi": lambda: ours(hi),
            "ref_lo": lambda: ref(lo),
            "ref_hi": lambda: ref(hi),
        },
        args.repeats,
    )
    # One Lloyd iteration: the marginal cost of the extra iterations (setup, validation
    # and the final relabelling cancel out).
    row["ours_s"] = (t["ours_hi"] - t["ours_lo"]) / (hi - lo)
    row["ref_s"] = (t["ref_hi"] - t["ref_lo"]) / (hi - lo)
    row["ratio"] = row["ref_s"] / row["ours_s"]
    row["check"] += (
        f"; whole fit with {lo} iteration: ours {t['ours_lo'] * 1e3:.0f} ms, "
        f"sklearn {t['ref_lo'] * 1e3:.0f} ms"
    )
    return row


def run_silhouette_case(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    lm_score = _cluster_module("silhouette_score")
    row: dict[str, Any] = {"case": case.name, "target": case.target, "ref_name": "sklearn"}
    if lm_score is None:
        row["check"] = "skipped: latentmix.cluster.silhouette_score does not exist yet"
        return row
    from sklearn.metrics import silhouette_score as sk_score

    X, _ = make_data(case.n, case.d, case.k)
    labels = np.random.default_rng(2).integers(0, case.k, size=case.n)
    a, b = lm_score(X, labels), sk_score(X, labels)
    err = abs(a - b) / max(abs(b), 1e-300)
    row["check"] = f"rel diff {err:.1e} " + ("ok" if err < 1e-8 else "FAIL")
    t = interleaved({"ours": lambda: lm_score(X, labels), "ref": lambda: sk_score(X, labels)}, 3)
    row["ours_s"], row["ref_s"] = t["ours"], t["ref"]
    row["ratio"] = t["ref"] / t["ours"]
    if not args.no_peak:
        row["ours_peak_mib"] = peak_mib(lambda: lm_score(X, labels))
        row["ref_peak_mib"] = peak_mib(lambda: sk_score(X, labels))
    return row


def _rss_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return -1


def memory_child(n: int, d: int, k: int, iters: int) -> None:
    """Subprocess body: fit and report the peak resident memory above the data."""
    X, centers = make_data(n, d, k)
    case = Case("memory", "memory", n, d, k, "full")
    init = init_params(X, centers, "full")
    del centers
    # Warm every import and JIT cache on a small slice, so only the fit itself is measured.
    fit_quietly(lm_model(case, init, 1), X[:5000])
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        hwm_reset = True
    except OSError:
        hwm_reset = False
    base = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    fit_quietly(lm_model(case, init, iters), X)
    elapsed = time.perf_counter() - t0
    peak = _rss_kib("VmHWM")
    print(
        json.dumps(
            {
                "above_data_mib": (peak - base) / 1024,
                "data_mib": X.nbytes / 2**20,
                "hwm_reset": hwm_reset,
                "fit_s": elapsed,
                "iters": iters,
            }
        )
    )


def run_memory_case(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", f"{case.n},{case.d},{case.k}"],
        capture_output=True,
        text=True,
        check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    ok = res["above_data_mib"] < 300 and res["hwm_reset"]
    return {
        "case": case.name,
        "target": case.target,
        "check": (
            f"peak RSS {res['above_data_mib']:.0f} MiB above {res['data_mib']:.0f} MiB of data, "
            f"fit {res['fit_s']:.1f} s for {res['iters']} iterations "
        )
        + ("ok" if ok else "FAIL"),
        "ours_peak_mib": res["above_data_mib"],
    }


# -- report -------------------------------------------------------------------------------------


def machine() -> str:
    from threadpoolctl import threadpool_info

    try:
        import numba

        nb = numba.__version__
    except ImportError:
        nb = "absent"
    import sklearn

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = ", ".join(
        f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    )
    load = os.getloadavg()
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy "
        f"{np.__version__}, scikit-learn {sklearn.__version__}, numba {nb}; BLAS: {blas}; "
        f"load average at start {load[0]:.1f}"
    )


def fmt_row(row: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        return f"{1e3 * row[key]:.1f}" if key in row else "-"

    ratio = f"{row['ratio']:.2f}x" if "ratio" in row else "-"
    if "sk_default_s" in row:
        row["ref_name"] = (
            f"sklearn (default BLAS {1e3 * row['sk_default_s']:.0f}, "
            f"1 thread {1e3 * row['sk_1thread_s']:.0f})"
        )
    gf = (
        f"{row['gflops']:.1f} ({row['gflops'] / row['gemm_gflops']:.2f} of GEMM)"
        if "gflops" in row
        else "-"
    )
    peak = f"{row['ours_peak_mib']:.0f}" if "ours_peak_mib" in row else "-"
    return (
        f"| {row['case']} | {ms('ours_s')} | {ms('ref_s')} {row.get('ref_name', '')} | {ratio} "
        f"| {gf} | {peak} | {row.get('target', '')} | {row.get('check', '')} |"
    )


HEADER = (
    "| case | ours ms | reference ms | ratio | GFLOP/s | ours peak MiB | target | check |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- |"
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--cases", nargs="*", default=None, help="substrings of case names to run")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per library")
    p.add_argument("--iters", type=int, default=None, help="EM iterations of the checked fits")
    p.add_argument("--no-peak", action="store_true", help="skip the tracemalloc peak runs")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    p.add_argument(
        "--threads", type=int, default=None, help="cap latentmix's chunk threads (default: all)"
    )
    p.add_argument(
        "--sk-one-thread",
        action="store_true",
        help="time scikit-learn only with one BLAS thread (its faster setting on a loaded machine)",
    )
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        n, d, k = (int(v) for v in args.memory_child.split(","))
        memory_child(n, d, k, 2)
        return 0
    cases = QUICK if args.quick else CASES
    if args.list:
        for c in CASES + QUICK:
            print(c.name, c.target)
        return 0
    if args.cases:
        cases = [c for c in cases if any(s in c.name for s in args.cases)]
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.iters = args.iters or (5 if args.quick else 3)
    print(machine(), flush=True)
    if args.threads is not None:
        import latentmix.em._data as data_mod

        data_mod.MAX_THREADS = args.threads
    gemm = gemm_gflops(args.repeats, F8, 512 if args.quick else 2048)
    print(
        f"float64 matrix product: {gemm['default']:.1f} GFLOP/s with default BLAS threads, "
        f"{gemm['1thread']:.1f} with one\n",
        flush=True,
    )
    print(HEADER, flush=True)
    rows = []
    failed = False
    for case in cases:
        runner = {
            "em": lambda c: run_em_case(c, args, gemm),
            "em32": lambda c: run_em_case(c, args, gemm),
            "predict": lambda c: run_predict_case(c, args),
            "score": lambda c: run_predict_case(c, args),
            "kmeans": lambda c: run_kmeans_case(c, args),
            "silhouette": lambda c: run_silhouette_case(c, args),
            "memory": lambda c: run_memory_case(c, args),
        }[case.kind]
        row = runner(case)
        failed |= "FAIL" in row.get("check", "")
        rows.append(row)
        print(fmt_row(row), flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "gemm": gemm, "rows": rows}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
