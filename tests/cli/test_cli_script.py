"""The real ``latentmix`` console script, in a subprocess, on real files.

Few calls with many checks each: every subprocess pays the import time.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

Cli = Callable[..., CompletedProcess[str]]


def test_fit_range_selects_saves_and_reports_json(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    model, table = tmp_path / "iris.lmx", tmp_path / "table.csv"
    res = cli(
        "fit", str(data_dir / "iris.csv"), "-k", "1-3", "-t", "full,diag",
        "--drop", "species", "--seed", "0", "-o", str(model), "--table", str(table), "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    grid = pd.read_csv(table)
    assert len(grid) == 6
    assert set(grid["covariance_type"]) == {"full", "diag"}
    best = grid.loc[grid["bic"].idxmin()]
    assert summary["n_components"] == best["n_components"]
    assert summary["covariance_type"] == best["covariance_type"]
    assert summary["bic"] == pytest.approx(best["bic"], rel=1e-6)
    assert summary["n_samples"] == 150 and summary["n_features"] == 4
    assert len(summary["table"]) == 6
    assert summary["features"][0] == "sepal length (cm)"
    assert sum(summary["counts"]) == 150
    assert model.exists()
    assert "Traceback" not in res.stderr


def test_predict_from_stdin_and_score_top(
    cli: Cli, data_dir: Path, iris_model: Path, tmp_path: Path
) -> None:
    text = (data_dir / "iris.csv").read_text()
    res = cli("predict", str(iris_model), "-", cwd=tmp_path, stdin=text)
    assert res.returncode == 0, res.stderr
    out = pd.read_csv(io.StringIO(res.stdout))
    assert list(out.columns) == ["label", "p0", "p1", "p2"]
    assert len(out) == 150
    np.testing.assert_allclose(out[["p0", "p1", "p2"]].sum(axis=1), 1.0, atol=1e-9)
    assert (out["label"].to_numpy() == out[["p0", "p1", "p2"]].to_numpy().argmax(axis=1)).all()
    # The 50 setosa rows form one cluster of their own.
    assert out["label"][:50].nunique() == 1
    assert out["label"][50:].isin([out["label"][0]]).sum() == 0


def test_report_html_is_self_contained_with_decodable_images(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    res = cli(
        "report", str(data_dir / "iris.csv"), "--drop", "species", "-k", "1-3",
        "--seed", "0", "-o", str(report), cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    images = _images(report.read_text())
    assert {alt for alt, *_ in images} == {
        "criterion", "clusters", "pairs", "uncertainty", "trace", "silhouette"
    }  # fmt: skip
    for alt, src, width, height in images:
        assert src.startswith("data:image/png;base64,"), alt
        picture = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        picture.load()
        assert picture.size == (width, height), alt
        pixels = np.asarray(picture.convert("L"))
        assert pixels.std() > 5, f"{alt} is blank"
    html = report.read_text()
    assert "<h2>Model selection by BIC</h2>" in html
    assert "class=best" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from outside


def test_bad_input_one_line_exit_code_no_partial_output(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    # ``python -m latentmix.cli`` is the same program as the console script.
    out = tmp_path / "never.csv"
    res = cli(
        "--python-m","predict", str(data_dir / "iris.csv"), str(data_dir / "iris.csv"), "-o", str(out),
              cwd=tmp_path)  # fmt: skip
    assert res.returncode == 3
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("latentmix: error: ")
    assert "not a latentmix model file" in res.stderr
    assert not out.exists()

    res = cli("fit", str(tmp_path / "missing.csv"), "-k", "2", cwd=tmp_path)
    assert res.returncode == 2
    assert (
        res.stderr
        == f"latentmix: error: {tmp_path / 'missing.csv'}: no such file; check the path\n"
    )
    assert res.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no model file, no temporary file


class _ImgParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[tuple[str, str, int, int]] = []
        self.other_sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(
                (a["alt"] or "", a["src"] or "", int(a["width"] or 0), int(a["height"] or 0))
            )
        elif tag in ("script", "link", "iframe"):
            self.other_sources.append(tag)


def _images(html: str) -> list[tuple[str, str, int, int]]:
    parser = _ImgParser()
    parser.feed(html)
    assert parser.other_sources == []
    return parser.images
