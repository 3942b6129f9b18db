"""Scale benchmark: EM iterations of a Gaussian mixture on a Dask LocalCluster (not a test).

The rows are generated block by block on the workers from a fixed mixture (D=16, K=16,
full covariances by default) and never materialised on the client. Reported:

* time per EM iteration on the cluster (E-step on the workers, tree-sum, M-step on the
  client), and separately the time of a pass that only generates (or reads) the blocks;
* peak resident memory of each worker process (``ru_maxrss``);
* time per row against the in-memory path (``ArrayData``, all cores) on ``--inmem-rows``;
* what travels per iteration: the statistics of one block, and their count.

    python benchmarks/bench_dask_scale.py --rows 100_000_000            # the full run
    python benchmarks/bench_dask_scale.py --rows 10_000_000 --persist   # data kept on workers

Without ``--persist`` every pass regenerates the blocks (memory stays one block per task);
with it, the blocks are generated once and held by the workers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import sys
import time
from functools import partial
from typing import Any

import numpy as np

D_DEFAULT, K_DEFAULT = 16, 16


def make_model(d: int, k: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A fixed, well-conditioned mixture: means on a wide cube, random SPD covariances."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.uniform(-10.0, 10.0, size=(k, d))
    A = rng.standard_normal((k, d, d)) / np.sqrt(d)
    covs = np.einsum("kij,klj->kil", A, A) + 0.5 * np.eye(d)
    return {"weights": weights, "means": means, "covariances": covs}


def generate_block(
    block_id: tuple[int, ...] | None = None,
    *,
    rows: int,
    model: dict[str, np.ndarray],
    seed: int,
) -> np.ndarray:
    """The rows of one block: a generator seeded by (seed, block index), so reproducible."""
    assert block_id is not None
    rng = np.random.default_rng([seed, block_id[0]])
    k, d = model["means"].shape
    labels = rng.choice(k, size=rows, p=model["weights"])
    L = np.linalg.cholesky(model["covariances"])
    X = rng.standard_normal((rows, d))
    out = np.empty((rows, d))
    for j in range(k):  # per component: one matrix product, not a per-row loop
        idx = np.flatnonzero(labels == j)
        out[idx] = model["means"][j] + X[idx] @ L[j].T
    return out


def dask_rows(n_rows: int, block_rows: int, model: dict[str, np.ndarray], seed: int) -> Any:
    import dask.array as da

    d = model["means"].shape[1]
    sizes = [block_rows] * (n_rows // block_rows)
    if n_rows % block_rows:
        sizes.append(n_rows % block_rows)
    # One task per block; each block has its own size, passed through block_info-free kwargs.
    blocks = [
        da.from_delayed(_delayed_block(i, s, model, seed), shape=(s, d), dtype=np.float64)
        for i, s in enumerate(sizes)
    ]
    return da.concatenate(blocks, axis=0)


def _delayed_block(i: int, rows: int, model: dict[str, np.ndarray], seed: int) -> Any:
    import dask

    return dask.delayed(generate_block, pure=True)((i,), rows=rows, model=model, seed=seed)


def start_params(model: dict[str, np.ndarray]) -> Any:
    """The generating mixture, perturbed: EM has work to do, and no start is timed."""
    from latentmix.gaussian._params import GaussianParams, precisions_cholesky_from_covariances

    rng = np.random.default_rng(1)
    means = model["means"] + rng.normal(scale=0.5, size=model["means"].shape)
    covs = model["covariances"] * 1.5
    prec_chol, bad = precisions_cholesky_from_covariances(covs, "full")
    assert not bad
    k = means.shape[0]
    return GaussianParams("full", np.full(k, 1.0 / k), means, covs, prec_chol)


def family_for(d: int, k: int) -> Any:
    from latentmix import GaussianMixture
    from latentmix.mixture._gaussian_mixture import _GaussianFamily

    return _GaussianFamily(GaussianMixture(k, covariance_type="full"), d)


def time_iterations(family: Any, data: Any, params: Any, n_iter: int) -> tuple[list[float], Any]:
    """Wall time of each EM iteration (statistics, then the M-step on the client)."""
    from latentmix.em._loop import _estep

    times = []
    for _ in range(n_iter):
        t0 = time.perf_counter()
        stats = data.reduce(partial(_estep, family, params), width=family.chunk_width)
        params = family.mstep(stats, params)
        times.append(time.perf_counter() - t0)
    return times, stats


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _touch(X: np.ndarray, w: Any) -> float:
    return float(X[0, 0])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=100_000_000)
    parser.add_argument("--block-rows", type=lambda s: int(s.replace("_", "")), default=500_000)
    parser.add_argument("--features", type=int, default=D_DEFAULT)
    parser.add_argument("--components", type=int, default=K_DEFAULT)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--persist", action="store_true", help="generate once, keep on workers")
    parser.add_argument("--inmem-rows", type=lambda s: int(s.replace("_", "")), default=1_000_000)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)

    import dask
    import distributed

    from latentmix.em._dask import DaskData
    from latentmix.em._data import ArrayData

    d, k = args.features, args.components
    model = make_model(d, k)
    family = family_for(d, k)
    params0 = start_params(model)
    result: dict[str, Any] = {
        "rows": args.rows,
        "block_rows": args.block_rows,
        "features": d,
        "components": k,
        "workers": args.workers,
        "threads_per_worker": 1,
        "persist": args.persist,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": sys.version.split()[0],
        "dask": dask.__version__,
        "load_average_at_start": os.getloadavg(),
    }

    # -- in-memory reference on the client -------------------------------------------------------
    X1 = generate_block((0,), rows=args.inmem_rows, model=model, seed=123)
    mem_times, _ = time_iterations(family, ArrayData(X1), params0, args.iters)
    result["inmem_rows"] = args.inmem_rows
    result["inmem_s_per_iter"] = statistics.median(mem_times)
    result["inmem_ns_per_row"] = 1e9 * result["inmem_s_per_iter"] / args.inmem_rows
    del X1

    # -- the cluster ------------------------------------------------------------------------------
    with (
        distributed.LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=args.memory_limit,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        X = dask_rows(args.rows, args.block_rows, model, seed=7)
        if args.persist:
            t0 = time.perf_counter()
            X = client.persist(X)
            distributed.wait(X)
            result["generate_s"] = time.perf_counter() - t0
        data = DaskData(X)
        result["blocks"] = data.n_blocks
        # A pass that only produces the blocks: what the E-step time includes besides EM.
        t0 = time.perf_counter()
        data.reduce(_touch)
        result["pass_without_em_s"] = time.perf_counter() - t0
        times, stats = time_iterations(family, data, params0, args.iters)
        result["dask_s_per_iter"] = times
        result["dask_median_s_per_iter"] = statistics.median(times)
        result["dask_ns_per_row"] = 1e9 * result["dask_median_s_per_iter"] / args.rows
        result["worker_peak_rss_mb"] = sorted(client.run(_maxrss_mb).values())
        result["client_peak_rss_mb"] = _maxrss_mb()
    result["ratio_dask_to_inmem_per_row"] = result["dask_ns_per_row"] / result["inmem_ns_per_row"]
    numbers = stats.nk.size + stats.s1.size + stats.s2.size + stats.worst_rows.size + 8
    result["numbers_per_block_result"] = int(numbers)
    result["bytes_to_client_per_iter"] = int(8 * numbers)
    result["bytes_between_workers_per_iter_upper_bound"] = int(8 * numbers * data.n_blocks)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
