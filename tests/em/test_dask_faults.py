"""Faults on a real cluster: a worker process killed mid-fit; Dask retries, the fit is unchanged."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from _common import D, blobs, estimator

from latentmix.em._dask import DaskData
from latentmix.em._loop import run_em
from latentmix.mixture._gaussian_mixture import _GaussianFamily

distributed = pytest.importorskip("distributed")


def _killer_family(est, n_features: int, armed: Path, killed: Path):
    """The Gaussian family, except that once ``armed`` exists, the first E-step task that
    runs kills its own worker process (SIGKILL: no clean-up, as in a crash)."""

    class KillOnce(_GaussianFamily):  # local class: pickled by value for the workers
        def estep_stats(self, X, w, params):
            if armed.exists() and not killed.exists():
                killed.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return super().estep_stats(X, w, params)

        def mstep(self, stats, params):
            self.n_msteps = getattr(self, "n_msteps", 0) + 1
            if self.n_msteps == 3:
                armed.touch()  # the 4th E-step pass will lose a worker
            return super().mstep(stats, params)

    return KillOnce(est, n_features)


# About 65 s on the shared 2-core machine (cluster start-up and the workers' first import
# dominate), so it runs with --runslow.
@pytest.mark.slow
def test_killed_worker_gives_the_same_fit(tmp_path):
    X, w = blobs(4000)
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # The running client is found by DaskData without being passed.
        source = DaskData(da.from_array(X, chunks=(250, D)), w)
        pids = set(client.run(os.getpid).values())

        def fit(family):
            return run_em(
                family,
                source,
                n_init=1,
                max_iter=200,
                tol=1e-8,
                random_state=np.random.RandomState(0),
            )

        undisturbed = fit(_GaussianFamily(estimator(), D))
        armed, killed = tmp_path / "armed", tmp_path / "killed"
        disturbed = fit(_killer_family(estimator(), D, armed, killed))
        assert killed.exists()  # a worker really died mid-fit...
        client.wait_for_workers(2, timeout=30)
        assert set(client.run(os.getpid).values()) != pids  # ...and its nanny replaced it
    assert disturbed.n_iter == undisturbed.n_iter
    assert disturbed.lower_bounds == undisturbed.lower_bounds
    for name in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(
            getattr(disturbed.params, name), getattr(undisturbed.params, name)
        )
