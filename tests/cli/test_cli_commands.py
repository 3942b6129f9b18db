"""Every command and every kind of bad input, through ``main(argv)`` in this process.

``main`` is exactly what the console script calls; running it in-process keeps the many
error cases fast. ``test_cli_script.py`` checks the real script in a subprocess.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentmix import GaussianMixture
from latentmix.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("latentmix: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_fit_single_k_then_predict_score_sample_info(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path, iris_frame: pd.DataFrame
) -> None:
    model = tmp_path / "m.lmx"
    code, out, err = _run(
        capsys, "fit", str(data_dir / "iris.csv"), "-k", "3", "--drop", "species",
        "--n-init", "2", "--seed", "1", "-o", str(model), "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    from latentmix.io import load

    gm = load(model)
    assert isinstance(gm, GaussianMixture) and gm.n_components == 3
    assert list(gm.feature_names_in_) == list(iris_frame.columns)
    # The summary's numbers are the saved model's on the data.
    assert summary["bic"] == pytest.approx(gm.bic(iris_frame))
    assert summary["log_likelihood"] == pytest.approx(gm.score(iris_frame) * 150)
    # Refitting the saved parameters reproduces the model (the restart seed is kept).
    refit = GaussianMixture(**gm.get_params()).fit(iris_frame)
    np.testing.assert_allclose(refit.means_, gm.means_)

    # predict reads the model's columns by name (the species column is ignored).
    labels = tmp_path / "labels.parquet"
    code, _, err = _run(capsys, "predict", str(model), str(data_dir / "iris.csv"), "-o",
                        str(labels), "--append")  # fmt: skip
    assert code == 0, err
    pred = pd.read_parquet(labels)
    assert list(pred.columns) == [*iris_frame.columns, "label", "p0", "p1", "p2"]
    np.testing.assert_array_equal(pred["label"], gm.predict(iris_frame))

    # score: log-density, --threshold flags, --top keeps the N least likely rows.
    code, out, err = _run(capsys, "score", str(model), str(data_dir / "iris.tsv"),
                          "--threshold", "-4", "--top", "5")  # fmt: skip
    assert code == 0, err
    scores = pd.read_csv(pd.io.common.StringIO(out))
    lp = gm.score_samples(iris_frame)
    np.testing.assert_array_equal(scores["row"], np.argsort(lp, kind="stable")[:5])
    np.testing.assert_allclose(scores["log_density"], np.sort(lp)[:5])
    assert (scores["anomaly"] == (scores["log_density"] < -4)).all()

    # score --json with an output file: a summary on stdout.
    code, out, err = _run(capsys, "score", str(model), str(data_dir / "iris.npy"), "-o",
                          str(tmp_path / "s.csv"), "--threshold", "-4", "--json")  # fmt: skip
    assert code == 0, err
    s = json.loads(out)
    assert s["rows"] == 150 and s["below_threshold"] == int((lp < -4).sum())

    # sample: reproducible with --seed, named columns plus the component.
    code, out, err = _run(capsys, "sample", str(model), "-n", "40", "--seed", "3")
    assert code == 0, err
    drawn = pd.read_csv(pd.io.common.StringIO(out))
    assert list(drawn.columns) == [*iris_frame.columns, "component"]
    expected, comp = gm.sample(40, random_state=3)
    np.testing.assert_allclose(drawn.iloc[:, :4].to_numpy(), expected)
    np.testing.assert_array_equal(drawn["component"], comp)

    # info, human and JSON.
    code, out, err = _run(capsys, "info", str(model))
    assert code == 0, err
    assert "GaussianMixture" in out and "covariances_" in out
    code, out, err = _run(capsys, "info", str(model), "--json")
    meta = json.loads(out)
    assert meta["class"] == "GaussianMixture"
    np.testing.assert_allclose(meta["summary"]["weights"], gm.weights_)


def test_standardize_stores_the_model_in_data_units(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "z.lmx"
    code, out, err = _run(capsys, "fit", str(data_dir / "wine.parquet"), "-k", "3", "-t",
                          "diag", "--standardize", "--seed", "0", "-o", str(model), "--json")  # fmt: skip
    assert code == 0, err
    from latentmix.io import load

    wine = pd.read_parquet(data_dir / "wine.parquet")
    gm = load(model)
    z = (wine - wine.mean()) / wine.std(ddof=0)
    direct = GaussianMixture(3, covariance_type="diag", random_state=gm.random_state).fit(z)
    # Same clustering, and log-densities differ exactly by the Jacobian of the scaling.
    np.testing.assert_array_equal(gm.predict(wine), direct.predict(z))
    jac = np.log(wine.std(ddof=0).to_numpy()).sum()
    np.testing.assert_allclose(gm.score_samples(wine), direct.score_samples(z) - jac, rtol=1e-6)
    assert json.loads(out)["covariance_type"] == "diag"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["fit", "{d}/nothere.csv", "-k", "2"], 2, "no such file"),
        (["fit", "{d}/iris.xlsx", "-k", "2"], 2, "unknown data format"),
        (["fit", "{d}/iris.csv", "-k", "2"], 2, "column 'species' is not numeric"),
        (["fit", "{d}/iris.csv", "-k", "2", "-c", "petal"], 2, "no column named 'petal'"),
        (["fit", "{d}/empty.csv", "-k", "2"], 2, "the file is empty"),
        (["fit", "{d}/header.csv", "-k", "2"], 2, "no data rows"),
        (["fit", "{d}/blankcol.csv", "-k", "2"], 2, "column 'b' is empty"),
        (["kmeans", "{d}/holes.csv", "-k", "2"], 2, "missing values"),
        (["fit", "{d}/garbage.parquet", "-k", "2"], 2, "cannot be read as PARQUET"),
        (["fit", "{d}/iris.tsv", "-k", "x"], 2, "--components 'x'"),
        (["fit", "{d}/iris.tsv", "-k", "2", "--criterion", "foo"], 2, "--criterion 'foo'"),
        (["fit", "{d}/iris.tsv", "-k", "2", "--nope"], 2, "No such option"),
        (["fit", "{d}/iris.tsv", "-k", "200"], 2, "fitting 200 components failed"),
        (["fit", "{d}/iris.tsv", "-k", "2", "-o", "{d}/no/dir/m.lmx"], 2, "does not exist"),
        (["predict", "{d}/iris.csv", "{d}/iris.csv"], 3, "not a latentmix model file"),
        (["predict", "{d}/absent.lmx", "{d}/iris.csv"], 3, "does not exist"),
        (["predict", "{m}", "{d}/wine.parquet"], 2, "lacks the column(s) sepal length"),
        (["predict", "{m}", "{d}/wide.npy"], 2, "has 5 feature columns but the model expects 4"),
        (["predict", "{m}", "{d}/iris.csv", "-o", "{d}/out.doc"], 2, "unknown data format"),
        (["info", "{d}/truncated.lmx"], 3, "truncated.lmx"),
        (["report", "{d}/iris.tsv", "-o", "{d}/r.pdf"], 2, "give a name ending in .html"),
    ],
)
def test_bad_input_is_one_line_with_its_exit_code(
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    iris_model: Path,
    args: list[str],
    code: int,
    needle: str,
) -> None:
    _bad_files(data_dir, iris_model)
    before = set(data_dir.iterdir())
    argv = [a.format(d=data_dir, m=iris_model) for a in args]
    got, out, err = _run(capsys, *argv)
    assert got == code, err
    if "No such option" in needle:  # usage errors print the usage line first
        err = err.splitlines()[-1] + "\n"
    line = _one_error_line(err)
    assert needle in line
    assert out == ""
    assert set(data_dir.iterdir()) == before  # no partial output, no temporary file


def _bad_files(d: Path, model: Path) -> None:
    if (d / "empty.csv").exists():
        return
    (d / "empty.csv").write_text("")
    (d / "header.csv").write_text("a,b\n")
    (d / "blankcol.csv").write_text("a,b\n1,\n2,\n3,\n")
    (d / "holes.csv").write_text("a,b\n1,2\n3,\n5,6\n")
    (d / "garbage.parquet").write_bytes(b"this is not parquet at all")
    np.save(d / "wide.npy", np.zeros((4, 5)))
    data = model.read_bytes()
    (d / "truncated.lmx").write_bytes(data[: len(data) // 2])


def test_dropna_and_weights_and_npz(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path, iris_frame: pd.DataFrame
) -> None:
    frame = iris_frame.copy()
    frame["w"] = np.where(np.arange(150) < 50, 2.0, 1.0)
    frame.iloc[3, 0] = np.nan
    frame.to_csv(tmp_path / "w.csv", index=False)
    code, out, err = _run(capsys, "fit", str(tmp_path / "w.csv"), "-k", "2", "--weights", "w",
                          "--dropna", "--seed", "0", "-o", str(tmp_path / "w.lmx"), "--json")  # fmt: skip
    assert code == 0, err
    s = json.loads(out)
    assert s["n_samples"] == 149 and s["features"] == list(iris_frame.columns)
    clean = frame.dropna()
    from latentmix.io import load

    gm = load(tmp_path / "w.lmx")
    assert s["bic"] == pytest.approx(gm.bic(clean[iris_frame.columns], sample_weight=clean["w"]))

    # Without --dropna the row with a hole is kept: missing-value EM.
    code, out, err = _run(capsys, "fit", str(tmp_path / "w.csv"), "-k", "2", "--weights", "w",
                          "--seed", "0", "-o", str(tmp_path / "m.lmx"))  # fmt: skip
    assert code == 0, err
    assert re.search(r"rows\s+150", out)
    assert "1 rows have missing values" in err
    code, out, err = _run(capsys, "score", str(tmp_path / "m.lmx"), str(tmp_path / "w.csv"),
                          "-x", "w")  # fmt: skip
    assert code == 0, err
    assert np.isfinite(pd.read_csv(pd.io.common.StringIO(out))["log_density"]).all()
    code, out, err = _run(capsys, "report", str(tmp_path / "w.csv"), str(tmp_path / "m.lmx"),
                          "-x", "w", "-o", str(tmp_path / "r.html"))  # fmt: skip
    assert code == 0, err
    html = (tmp_path / "r.html").read_text()
    assert "1 rows with missing values are left out of the plots" in html
    assert html.count("<img ") == 5  # clusters, pairs, uncertainty, trace, silhouette

    code, out, err = _run(capsys, "predict", str(tmp_path / "w.lmx"), str(data_dir / "iris.npz"),
                          "--no-proba")  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[0] == "label" and len(out.splitlines()) == 151


def test_kmeans_then_silhouette_of_a_mixture(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path, iris_model: Path
) -> None:
    from latentmix.cluster import silhouette_samples, silhouette_score
    from latentmix.io import load

    model = tmp_path / "km.lmx"
    code, out, err = _run(
        capsys, "kmeans", str(data_dir / "iris.npy"), "-k", "3", "--seed", "0",
        "-o", str(model), "--labels", str(tmp_path / "l.csv"), "--json",
    )  # fmt: skip
    assert code == 0, err
    s = json.loads(out)
    X = np.load(data_dir / "iris.npy")
    labels = pd.read_csv(tmp_path / "l.csv")["label"].to_numpy()
    assert s["silhouette"] == pytest.approx(silhouette_score(X, labels))
    assert sorted(s["counts"]) == sorted(np.bincount(labels).tolist())
    assert load(model).n_clusters == 3

    # A loaded KMeans labels new data and has a silhouette (non-regression: it once kept
    # its centring shift in a private attribute that model files do not store).
    code, out, err = _run(capsys, "predict", str(model), str(data_dir / "iris.npy"))
    assert code == 0, err
    np.testing.assert_array_equal(pd.read_csv(pd.io.common.StringIO(out))["label"], labels)
    code, out, err = _run(capsys, "silhouette", str(model), str(data_dir / "iris.npy"), "--json")
    assert code == 0, err
    assert json.loads(out)["silhouette"] == pytest.approx(s["silhouette"])

    rows = tmp_path / "sil.csv"
    code, out, err = _run(
        capsys, "silhouette", str(iris_model), str(data_dir / "iris.csv"), "-o", str(rows),
        "--json",
    )  # fmt: skip
    assert code == 0, err
    gm_labels = load(iris_model).predict(pd.read_csv(data_dir / "iris.csv").iloc[:, :4])
    per_row = pd.read_csv(rows)
    np.testing.assert_allclose(per_row["silhouette"], silhouette_samples(X, gm_labels))
    summary = json.loads(out)
    assert summary["silhouette"] == pytest.approx(silhouette_score(X, gm_labels))
    assert set(summary["per_cluster"]) == {"0", "1", "2"}


def test_vae_train_sample_encode_score(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path, iris_model: Path
) -> None:
    pytest.importorskip("torch")
    from latentmix.io import load

    model = tmp_path / "v.lmx"
    code, out, err = _run(
        capsys, "vae", "train", str(data_dir / "iris.npy"), "-z", "2", "--hidden", "8",
        "--epochs", "3", "--seed", "0", "-o", str(model), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["epochs"] == 3
    vae = load(model)
    X = np.load(data_dir / "iris.npy")

    code, out, err = _run(capsys, "vae", "sample", str(model), "-n", "5", "--seed", "1")
    assert code == 0, err
    drawn = pd.read_csv(pd.io.common.StringIO(out))
    np.testing.assert_allclose(drawn.to_numpy(), vae.sample(5, random_state=1), rtol=1e-6)

    png = tmp_path / "latent.png"
    code, out, err = _run(capsys, "vae", "encode", str(model), str(data_dir / "iris.npy"),
                          "--png", str(png))  # fmt: skip
    assert code == 0, err
    codes = pd.read_csv(pd.io.common.StringIO(out))
    assert list(codes.columns) == ["z0", "z1", "logvar0", "logvar1"]
    np.testing.assert_allclose(codes[["z0", "z1"]].to_numpy(), vae.encode(X)[0], rtol=1e-6)
    from PIL import Image

    with Image.open(png) as picture:
        assert picture.size == (640, 480)

    code, out, err = _run(capsys, "vae", "score", str(model), str(data_dir / "iris.npy"),
                          "--top", "4", "--seed", "2", "--n-importance", "10")  # fmt: skip
    assert code == 0, err
    top = pd.read_csv(pd.io.common.StringIO(out))
    lp = vae.score_samples(X, n_importance=10, random_state=2)
    np.testing.assert_allclose(top["log_density"], np.sort(lp)[:4], rtol=1e-6)

    code, _, err = _run(capsys, "vae", "sample", str(iris_model))
    assert code == 3 and "needs a VAE model" in _one_error_line(err)


def test_impute_fills_missing_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, iris_frame: pd.DataFrame, iris_model: Path
) -> None:
    from latentmix.io import load

    gm = load(iris_model)
    if not hasattr(gm, "impute"):
        code, _, err = _run(capsys, "impute", str(iris_model), "x.csv")
        assert code == 4 and "not available" in _one_error_line(err)
        return
    holes = iris_frame.copy()
    holes.iloc[[0, 60, 120], [2, 3, 0]] = np.nan
    holes.to_csv(tmp_path / "holes.csv", index=False)
    code, out, err = _run(capsys, "impute", str(iris_model), str(tmp_path / "holes.csv"))
    assert code == 0, err
    filled = pd.read_csv(pd.io.common.StringIO(out))
    assert not filled.isna().any().any()
    known = holes.notna().to_numpy()
    np.testing.assert_allclose(filled.to_numpy()[known], holes.to_numpy()[known])
    np.testing.assert_allclose(filled.to_numpy(), gm.impute(holes), rtol=1e-9)


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    code, _, err = _run(capsys, "fit", str(data_dir / "nothere.csv"), "--debug")
    assert code == 2
    assert "Traceback" in err and err.rstrip().endswith("no such file; check the path")


def test_help_lists_every_command_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for command in ("fit", "predict", "score", "sample", "impute", "info", "kmeans",
                    "silhouette", "report", "vae"):  # fmt: skip
        assert command in out
    assert "Exit codes" in out
    code, out, _ = _run(capsys, "vae", "--help")
    assert code == 0 and all(c in out for c in ("train", "sample", "encode", "score"))


def test_closed_stdout_stops_quietly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, iris_model: Path
) -> None:
    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["sample", str(iris_model), "-n", "10"]) == 141
    assert capsys.readouterr().err == ""
