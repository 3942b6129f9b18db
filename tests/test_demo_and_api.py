"""The public surface: what `import latentmix` gives, and the demo that `make demo` runs."""

from __future__ import annotations

import io
import subprocess
import sys

import latentmix


def test_public_names_are_exported() -> None:
    for name in latentmix.__all__:
        assert getattr(latentmix, name) is not None, name


def test_import_stays_light() -> None:
    """Heavy optional dependencies load only when their feature is used."""
    code = (
        "import sys, latentmix; "
        "heavy = [m for m in ('torch', 'matplotlib', 'dask', 'distributed') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_demo_recovers_the_iris_species() -> None:
    from latentmix.demo import run

    buf = io.StringIO()
    result = run("iris", max_components=4, seed=0, out=buf)
    text = buf.getvalue()
    assert "BIC (lower is better)" in text and "adjusted Rand index" in text
    assert result["best_k"] in (2, 3, 4)
    # every (covariance type, K) cell was fitted and is finite
    bic = result["bic"]
    assert isinstance(bic, dict) and len(bic) == 16
    assert all(abs(v) < 1e6 for v in bic.values())
    assert float(result["ari"]) > 0.5  # type: ignore[arg-type]


def test_invalid_parameters_raise_the_public_error() -> None:
    """Callers can catch bad estimator parameters by a public name (and as ValueError)."""
    import pytest

    with pytest.raises(latentmix.InvalidParameterError, match="n_clusters"):
        latentmix.KMeans(n_clusters=0).fit([[0.0], [1.0]])
    with pytest.raises(ValueError, match="n_components"):
        latentmix.GaussianMixture(n_components=0).fit([[0.0], [1.0]])
