"""Data files for the command-line tests: bundled data sets (iris, wine) written to disk."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine

ROOT = Path(__file__).resolve().parents[2]


def script() -> list[str]:
    """The installed console script, or ``python -m latentmix.cli`` beside this interpreter."""
    exe = Path(sys.executable).with_name("latentmix")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "latentmix.cli"]


def run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``latentmix`` in a subprocess, as a user would (not a terminal).

    A first argument ``--python-m`` runs ``python -m latentmix.cli`` instead.
    """
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", COLUMNS="100")
    command = script()
    if args and args[0] == "--python-m":
        command, args = [sys.executable, "-m", "latentmix.cli"], args[1:]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(*args, cwd=..., stdin=...)`` runs the real console script."""
    return run


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris (CSV with a species column, TSV, .npy, .npz) and wine (Parquet) on disk."""
    d = tmp_path_factory.mktemp("data")
    iris = load_iris(as_frame=True)
    frame = iris.frame.drop(columns="target")
    frame["species"] = np.asarray(iris.target_names)[iris.target]
    frame.to_csv(d / "iris.csv", index=False)
    frame.drop(columns="species").to_csv(d / "iris.tsv", sep="\t", index=False)
    np.save(d / "iris.npy", iris.data.to_numpy())
    np.savez(d / "iris.npz", X=iris.data.to_numpy())
    load_wine(as_frame=True).frame.drop(columns="target").to_parquet(d / "wine.parquet")
    return d


@pytest.fixture(scope="session")
def iris_frame(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "iris.csv").drop(columns="species")


@pytest.fixture(scope="session")
def iris_model(data_dir: Path, iris_frame: pd.DataFrame) -> Path:
    """A 3-component GaussianMixture fitted on iris (with feature names), saved."""
    from latentmix import GaussianMixture
    from latentmix.io import save

    path = data_dir / "iris3.lmx"
    save(GaussianMixture(3, random_state=0).fit(iris_frame), path)
    return path
