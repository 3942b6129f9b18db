"""mclust's fourteen covariance models on the command line, with and without --standardize.

``--standardize`` fits on z-scores and saves the model in the data's units, Σ ↦ S Σ S.
That rescaling keeps some constraints (equal volumes, diagonal or proportional matrices)
and breaks others (sphericity, common orientations, common shapes); the first test checks
the table in ``latentmix.cli._fit`` that says which model holds each rescaled model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentmix import GaussianMixture, select_mixture
from latentmix.cli import main
from latentmix.cli._fit import MULTIVARIATE_MODELS, Scaling, jacobian, rescaled_model
from latentmix.gaussian._parsimonious import canonical_model, n_parameters
from latentmix.io import load
from latentmix.plot._base import full_covariances


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# -- which constraints a per-feature rescaling keeps ----------------------------------------
def _member(model: str, rng: np.random.RandomState, k: int = 3, d: int = 3) -> np.ndarray:
    """Generic covariances λ_k D_k A_k D_kᵀ of an mclust model (random free parameters)."""
    volume, shape, orientation = model

    def rotation() -> np.ndarray:
        q, r = np.linalg.qr(rng.randn(d, d))
        return q * np.sign(np.diag(r))

    def diagonal() -> np.ndarray:
        a = np.exp(rng.randn(d))
        return a / np.prod(a) ** (1.0 / d)

    vol = np.exp(rng.randn(k)) if volume == "V" else np.full(k, np.exp(rng.randn()))
    one_shape, one_rotation = diagonal(), rotation()
    covs = []
    for j in range(k):
        a = np.ones(d) if shape == "I" else one_shape if shape == "E" else diagonal()
        o = np.eye(d) if orientation == "I" else one_rotation if orientation == "E" else rotation()
        covs.append(vol[j] * (o * a) @ o.T)
    return np.stack(covs)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(a, b, rtol=1e-7, atol=1e-9))


def _satisfies(model: str, covs: np.ndarray) -> bool:
    """Whether (K, D, D) covariances meet ``model``'s volume, shape and orientation rules."""
    volume, shape, orientation = model
    k, d, _ = covs.shape
    vol = np.linalg.det(covs) ** (1.0 / d)
    unit = covs / vol[:, None, None]  # determinant one: shape and orientation
    ok = volume == "V" or _close(vol, np.full(k, vol[0]))
    if orientation == "I" or shape == "I":
        off = unit - unit * np.eye(d)
        ok &= _close(off, np.zeros_like(off))
    if shape == "I":
        ok &= _close(unit, np.broadcast_to(np.eye(d), unit.shape))
    elif shape == "E" and orientation in ("I", "E"):
        ok &= _close(unit, np.broadcast_to(unit[0], unit.shape))
    elif shape == "E":  # XEV: the same eigenvalues, any eigenvectors
        eig = np.linalg.eigvalsh(unit)
        ok &= _close(eig, np.broadcast_to(eig[0], eig.shape))
    if orientation == "E" and shape == "V":  # XVE: common eigenvectors = commuting matrices
        for a in covs:
            for b in covs:
                ok &= _close(a @ b, b @ a)
    return bool(ok)


@pytest.mark.parametrize("model", MULTIVARIATE_MODELS)
def test_rescaling_maps_each_model_into_the_tightest_model_that_holds_it(model: str) -> None:
    rng = np.random.RandomState(sum(map(ord, model)))
    covs = _member(model, rng)
    assert _satisfies(model, covs)  # the construction and the check agree
    s = np.exp(rng.randn(covs.shape[1]))
    image = covs * s[None, :, None] * s[None, None, :]
    saved = rescaled_model(model, covs.shape[1])
    assert _satisfies(saved, image)
    # The rescaled model meets exactly the constraints of a generic member of the saved
    # model: nothing tighter would hold it, and a kept model is kept for a reason.
    generic = _member(saved, rng)
    for other in MULTIVARIATE_MODELS:
        assert _satisfies(other, image) == _satisfies(other, generic), other
    if saved != model:
        assert not _satisfies(model, image)


def test_every_model_is_kept_for_one_feature() -> None:
    assert all(rescaled_model(m, 1) == m for m in (*MULTIVARIATE_MODELS, "E", "V", "spherical"))
    assert rescaled_model("spherical", 2) == "VEI" and rescaled_model("full", 2) == "full"


# -- fit --standardize, for every model ------------------------------------------------------
@pytest.fixture(scope="module")
def iris_z(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, Scaling]:
    frame = pd.read_csv(data_dir / "iris.csv").drop(columns="species")
    X = frame.to_numpy(dtype=np.float64)
    scaling = Scaling.of(X, None)
    return frame, pd.DataFrame(scaling.apply(X), columns=frame.columns), scaling


@pytest.mark.parametrize("model", [*MULTIVARIATE_MODELS, "spherical", "diag", "tied", "full"])
def test_standardized_fit_saves_an_equivalent_model_and_the_fitted_models_criteria(
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    tmp_path: Path,
    iris_z: tuple[pd.DataFrame, pd.DataFrame, Scaling],
    model: str,
) -> None:
    frame, z, scaling = iris_z
    path = tmp_path / "m.lmx"
    code, out, err = _run(capsys, "fit", str(data_dir / "iris.csv"), "-x", "species", "-k", "3",
                          "-t", model.lower(), "--standardize", "--seed", "0", "-o", str(path),
                          "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    saved = load(path)
    # The model the command fitted, refitted on the z-scores from its recorded seed.
    fitted = GaussianMixture(3, covariance_type=model, random_state=saved.random_state).fit(z)

    assert summary["covariance_type"] == model
    assert saved.covariance_type == summary["saved_covariance_type"] == rescaled_model(model, 4)
    assert ("note" in summary) == (saved.covariance_type != model)
    # The saved covariances meet the saved model's constraint, in the data's units.
    full = full_covariances(saved)
    assert _satisfies(canonical_model(saved.covariance_type), full)
    assert _satisfies(canonical_model(model), full) == (saved.covariance_type == model)
    np.testing.assert_array_equal(saved.predict(frame), fitted.predict(z))
    np.testing.assert_allclose(saved.predict_proba(frame), fitted.predict_proba(z), atol=1e-7)
    log_jac = float(np.log(scaling.scale).sum())
    np.testing.assert_allclose(
        saved.score_samples(frame), fitted.score_samples(z) - log_jac, rtol=1e-8, atol=1e-8
    )
    # Criteria of the fitted model (mclust's parameter count), on the data in its units.
    shift = 2.0 * 150 * log_jac
    assert summary["n_parameters"] == n_parameters(model, 3, 4) == fitted._n_parameters()
    assert summary["log_likelihood"] == pytest.approx(fitted.score(z) * 150 - shift / 2)
    assert summary["bic"] == pytest.approx(fitted.bic(z) + shift)
    assert summary["aic"] == pytest.approx(fitted.aic(z) + shift)
    assert summary["icl"] == pytest.approx(fitted.icl(z) + shift)

    # The saved file works with every command that reads a model.
    code, out, err = _run(capsys, "predict", str(path), str(data_dir / "iris.csv"))
    assert code == 0, err
    np.testing.assert_array_equal(
        pd.read_csv(pd.io.common.StringIO(out))["label"], fitted.predict(z)
    )


def test_select_all_standardized_reports_the_table_in_data_units(
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    tmp_path: Path,
    iris_z: tuple[pd.DataFrame, pd.DataFrame, Scaling],
) -> None:
    frame, z, scaling = iris_z
    table = tmp_path / "t.csv"
    code, out, err = _run(capsys, "fit", str(data_dir / "iris.csv"), "-x", "species", "-k", "1-3",
                          "-t", "all", "--standardize", "--seed", "0", "-o",
                          str(tmp_path / "m.lmx"), "--table", str(table), "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    got = pd.read_csv(table)
    assert list(dict.fromkeys(got["covariance_type"])) == list(MULTIVARIATE_MODELS)
    assert len(got) == 3 * 14
    pd.testing.assert_frame_equal(pd.DataFrame(summary["table"]), got, check_dtype=False)
    # The library's selection on the z-scores, shifted by the Jacobian of the scaling.
    reference = select_mixture(z.to_numpy(), range(1, 4), "all", random_state=0).table_
    shift = jacobian(scaling, frame.to_numpy(dtype=np.float64), None)
    assert shift == pytest.approx(150 * np.log(scaling.scale).sum())
    np.testing.assert_array_equal(got["n_parameters"], reference["n_parameters"])
    expected = [n_parameters(m, k, 4) for k, m in zip(got["n_components"], got["covariance_type"])]
    np.testing.assert_array_equal(got["n_parameters"], expected)
    np.testing.assert_allclose(got["log_likelihood"], reference["log_likelihood"] - shift)
    for column in ("bic", "aic", "icl"):
        np.testing.assert_allclose(got[column], reference[column] + 2 * shift)
    # The chosen model is the table's best row, and the summary has that row's numbers.
    best = got.loc[got["bic"].idxmin()]
    assert (summary["n_components"], summary["covariance_type"]) == (
        best["n_components"],
        best["covariance_type"],
    )
    for column in ("log_likelihood", "n_parameters", "bic", "aic", "icl"):
        assert summary[column] == pytest.approx(best[column]), column
    saved = load(tmp_path / "m.lmx")
    assert saved.covariance_type == rescaled_model(best["covariance_type"], 4)


# -- constrained models without --standardize ---------------------------------------------------
def test_a_constrained_model_file_works_with_every_command(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(data_dir / "iris.csv").drop(columns="species")
    path = tmp_path / "vev.lmx"
    code, out, err = _run(capsys, "fit", str(data_dir / "iris.csv"), "-x", "species", "-k", "3",
                          "-t", "vev", "--seed", "4", "-o", str(path), "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    gm = load(path)
    assert gm.covariance_type == summary["covariance_type"] == "VEV"
    assert gm.covariances_.shape == (3, 4, 4) and "note" not in summary
    assert summary["bic"] == pytest.approx(gm.bic(frame))
    assert summary["n_parameters"] == n_parameters("VEV", 3, 4)
    # Its parameters refit the same model.
    refit = GaussianMixture(**gm.get_params()).fit(frame)
    np.testing.assert_allclose(refit.covariances_, gm.covariances_)

    code, out, err = _run(capsys, "predict", str(path), str(data_dir / "iris.csv"))
    assert code == 0, err
    pred = pd.read_csv(pd.io.common.StringIO(out))
    np.testing.assert_array_equal(pred["label"], gm.predict(frame))
    np.testing.assert_allclose(pred[["p0", "p1", "p2"]], gm.predict_proba(frame), atol=1e-12)
    code, out, err = _run(capsys, "score", str(path), str(data_dir / "iris.tsv"))
    assert code == 0, err
    np.testing.assert_allclose(
        pd.read_csv(pd.io.common.StringIO(out))["log_density"], gm.score_samples(frame)
    )
    code, out, err = _run(capsys, "sample", str(path), "-n", "7", "--seed", "2")
    assert code == 0, err
    np.testing.assert_allclose(
        pd.read_csv(pd.io.common.StringIO(out)).iloc[:, :4], gm.sample(7, random_state=2)[0]
    )
    code, out, err = _run(capsys, "info", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["summary"]["covariance_type"] == "VEV"
    code, out, err = _run(capsys, "report", str(data_dir / "iris.csv"), str(path), "-o",
                          str(tmp_path / "r.html"), "-q")  # fmt: skip
    assert code == 0, err
    assert "VEV" in (tmp_path / "r.html").read_text()


def test_report_fits_the_listed_models(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    html = tmp_path / "r.html"
    code, _, err = _run(capsys, "report", str(data_dir / "iris.tsv"), "-k", "2-3", "-t",
                        "EEV,vve,tied", "--seed", "0", "-o", str(html), "-q")  # fmt: skip
    assert code == 0, err
    text = html.read_text()
    for name in ("EEV", "VVE", "tied"):
        assert f"<td>{name}</td>" in text


def test_one_feature_all_is_mclusts_two_univariate_models(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    one = tmp_path / "one.csv"
    pd.read_csv(data_dir / "iris.csv")[["petal length (cm)"]].to_csv(one, index=False)
    code, out, err = _run(capsys, "fit", str(one), "-k", "1-3", "-t", "ALL", "--standardize",
                          "--seed", "0", "-o", str(tmp_path / "m.lmx"), "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    table = pd.DataFrame(summary["table"])
    assert list(dict.fromkeys(table["covariance_type"])) == ["E", "V"]
    # One feature: every model is still itself in the data's units.
    assert summary["saved_covariance_type"] == summary["covariance_type"]
    assert "note" not in summary
    assert load(tmp_path / "m.lmx").covariance_type == summary["covariance_type"]

    code, out, err = _run(capsys, "fit", str(one), "-k", "2", "-t", "spherical", "--standardize",
                          "--seed", "0", "-o", str(tmp_path / "s.lmx"), "--json")  # fmt: skip
    assert code == 0, err
    saved = load(tmp_path / "s.lmx")
    assert saved.covariance_type == "spherical" and saved.covariances_.shape == (2,)
    x = pd.read_csv(one)
    scaling = Scaling.of(x.to_numpy(dtype=np.float64), None)
    z = pd.DataFrame(scaling.apply(x.to_numpy(dtype=np.float64)), columns=x.columns)
    fitted = GaussianMixture(2, covariance_type="spherical", random_state=saved.random_state)
    fitted.fit(z)
    np.testing.assert_allclose(saved.predict_proba(x), fitted.predict_proba(z), atol=1e-7)
    np.testing.assert_allclose(
        saved.score_samples(x), fitted.score_samples(z) - np.log(scaling.scale[0]), atol=1e-8
    )


def test_names_are_case_blind_and_one_model_is_fitted_once(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    code, out, err = _run(capsys, "fit", str(data_dir / "iris.npy"), "-k", "2", "-t",
                          "Full,vvv", "-t", "eei", "--seed", "0", "-o",
                          str(tmp_path / "m.lmx"), "--json")  # fmt: skip
    assert code == 0, err
    table = pd.DataFrame(json.loads(out)["table"])
    assert list(table["covariance_type"]) == ["full", "EEI"]
    assert canonical_model("full") == "VVV"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["fit", "{d}/iris.tsv", "-k", "2", "-t", "XYZ"], "--covariance-type 'XYZ' is not a"),
        (["fit", "{d}/iris.tsv", "-k", "2", "-t", "full,eiv"], "--covariance-type 'eiv' is not"),
        (["fit", "{d}/iris.tsv", "-k", "2", "-t", "E"], "E is for one feature column, and the"),
        (["fit", "{d}/iris.tsv", "-k", "1-3", "-t", "EII,v"], "V is for one feature column"),
        (
            ["fit", "{d}/iris.tsv", "-k", "2", "-t", "full,VVV", "--table", "{t}/t.csv"],
            "--table is the model-selection table",
        ),
        (["report", "{d}/iris.tsv", "-t", "bogus", "-o", "{t}/r.html"], "'bogus' is not a"),
        (["report", "{d}/iris.tsv", "-k", "2", "-t", "E", "-o", "{t}/r.html"], "E is for one"),
    ],
)
def test_bad_covariance_types_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    tmp_path: Path,
    args: list[str],
    needle: str,
) -> None:
    argv = [a.format(d=data_dir, t=tmp_path) for a in args]
    code, out, err = _run(capsys, *argv)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentmix: error: "), err
    assert needle in lines[0] and "Traceback" not in err
    assert out == "" and list(tmp_path.iterdir()) == []


def test_standardized_selection_with_weights_and_missing_values_agrees_with_its_summary(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(data_dir / "iris.csv").drop(columns="species")
    frame["w"] = np.where(np.arange(150) % 3 == 0, 2.5, 1.0)
    frame.iloc[[5, 70], [1, 3]] = np.nan
    frame.iloc[9, :4] = np.nan  # a row with nothing observed counts in no criterion
    frame.to_csv(tmp_path / "w.csv", index=False)
    code, out, err = _run(capsys, "fit", str(tmp_path / "w.csv"), "-w", "w", "-k", "1-2", "-t",
                          "EII", "--standardize", "--seed", "0", "-o", str(tmp_path / "m.lmx"),
                          "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["covariance_type"], summary["saved_covariance_type"]) == ("EII", "EEI")
    table = pd.DataFrame(summary["table"])
    best = table.loc[table["bic"].idxmin()]
    assert best["n_components"] == summary["n_components"]
    # The table (z-scores plus the Jacobian) and the summary (the saved EEI model on the
    # data, with EII's parameter count) are two routes to the same numbers.
    for column in ("log_likelihood", "n_parameters", "bic", "aic", "icl"):
        assert summary[column] == pytest.approx(best[column], rel=1e-9), column
    saved = load(tmp_path / "m.lmx")
    assert saved._n_parameters() - summary["n_parameters"] == 3  # EII: one variance; EEI: four
