"""Data readers and atomic writers used by the command line."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentmix.io._readers import DataError, read_frame, select_features, table_format
from latentmix.io._writers import atomic_path, write_frame


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".npz"])
def test_every_format_round_trips(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"a": [1.5, -2.0, 3.25], "b": [0.0, 1e-300, 7.0]})
    path = str(tmp_path / f"t{suffix}")
    write_frame(frame, path)
    back = read_frame(path)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert [p.name for p in tmp_path.iterdir()] == [f"t{suffix}"]  # no temporary left


def test_npy_gets_positional_names_and_matches(tmp_path: Path) -> None:
    X = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "x.npy", X)
    feats = select_features(read_frame(str(tmp_path / "x.npy")), source="x.npy")
    assert feats.columns == ["x0", "x1", "x2"] and not feats.named
    np.testing.assert_array_equal(feats.X, X)
    write_frame(pd.DataFrame(X), str(tmp_path / "y.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), X)


def test_stdin_reads_csv() -> None:
    frame = read_frame("-", stdin=io.StringIO("a,b\n1,2\n3,4\n"))
    assert frame.shape == (2, 2)
    with pytest.raises(DataError, match="no data on standard input"):
        read_frame("-", stdin=io.StringIO("  \n"))


def test_select_features_messages() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "s": ["x", "y"], "w": [1.0, -1.0]})
    with pytest.raises(DataError, match=r"column 's' is not numeric \(value 'x' in data row 1\)"):
        select_features(frame, source="f.csv")
    with pytest.raises(DataError, match="weight column 'w' must hold finite, non-negative"):
        select_features(frame, source="f.csv", columns=["a"], weight_column="w")
    with pytest.raises(DataError, match="no column named 'zz'; the columns are a, s, w"):
        select_features(frame, source="f.csv", drop="zz")
    feats = select_features(frame, source="f.csv", columns="a,w")
    assert feats.columns == ["a", "w"] and feats.named


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(DataError, match=r"unknown data format \(extension '.xlsx'\); use one of"):
        table_format("data.xlsx")


def test_failed_write_leaves_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with pytest.raises(DataError, match="does not exist"), atomic_path(tmp_path / "no" / "x.csv"):
        pass
