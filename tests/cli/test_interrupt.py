"""Ctrl-C in the command line: exit status 130, one error line, no partial output file.

The interrupt is simulated without signals: a pass over the data, or the writing of the
output, raises KeyboardInterrupt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from latentmix.cli import EXIT_INTERRUPTED, main
from latentmix.em import ArrayData


def _interrupt_passes(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    original = ArrayData.reduce
    count = {"n": 0}

    def reduce(self: ArrayData, fn: Any, **kwargs: Any) -> Any:
        count["n"] += 1
        if count["n"] == at:
            raise KeyboardInterrupt
        return original(self, fn, **kwargs)

    monkeypatch.setattr(ArrayData, "reduce", reduce)


# Regression: typer >= 0.16 turns a KeyboardInterrupt inside a command into ``return 130``
# from ``app(standalone_mode=False)``; ``latentmix.cli.main`` used to ignore that return
# value, so an interrupted command exited 0 with no message.


def _check_no_output(out_dir: Path) -> None:
    assert list(out_dir.iterdir()) == [], "partial or temporary output left behind"


def _check_interrupted(code: int, err: str) -> None:
    assert code == EXIT_INTERRUPTED == 130
    assert err.splitlines() == ["latentmix: error: interrupted"], err


COMMANDS = pytest.mark.parametrize(
    "command",
    [
        ["fit", "{d}/iris.csv", "-k", "3", "--drop", "species", "-o", "{o}/m.lmx"],
        ["fit", "{d}/iris.csv", "--drop", "species", "-k", "1-3", "-o", "{o}/m.lmx"],
        ["kmeans", "{d}/iris.npy", "-k", "3", "-o", "{o}/labels.csv"],
    ],
    ids=["fit", "select", "kmeans"],
)


def _interrupted_fit(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    out_dir: Path,
    command: list[str],
) -> tuple[int, str]:
    out_dir.mkdir()
    _interrupt_passes(monkeypatch, at=3)
    code = main([a.format(d=data_dir, o=out_dir) for a in command])
    return code, capsys.readouterr().err


def _interrupted_write(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    out_dir: Path,
    model: Path,
) -> tuple[int, str]:
    out_dir.mkdir()
    original = pd.DataFrame.to_csv

    def to_csv(self: pd.DataFrame, path: Any = None, **kwargs: Any) -> Any:
        original(self.iloc[:10], path, **kwargs)  # part of the file is on disk, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    code = main(["predict", str(model), str(data_dir / "iris.csv"), "-o", str(out_dir / "p.csv")])
    return code, capsys.readouterr().err


@COMMANDS
def test_interrupted_fit_leaves_no_output_file(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    tmp_path: Path,
    command: list[str],
) -> None:
    _interrupted_fit(capsys, monkeypatch, data_dir, tmp_path / "out", command)
    _check_no_output(tmp_path / "out")


@COMMANDS
def test_interrupted_fit_exits_130_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    tmp_path: Path,
    command: list[str],
) -> None:
    code, err = _interrupted_fit(capsys, monkeypatch, data_dir, tmp_path / "out", command)
    _check_interrupted(code, err)


def test_interrupt_while_writing_leaves_no_partial_file(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    tmp_path: Path,
    iris_model: Path,
) -> None:
    _interrupted_write(capsys, monkeypatch, data_dir, tmp_path / "out", iris_model)
    _check_no_output(tmp_path / "out")


def test_interrupt_while_writing_exits_130_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    tmp_path: Path,
    iris_model: Path,
) -> None:
    code, err = _interrupted_write(capsys, monkeypatch, data_dir, tmp_path / "out", iris_model)
    _check_interrupted(code, err)
