"""Fuzz the VAE like the other estimators: finite outputs or a documented ValueError.

Tiny networks and one or two epochs keep each case to a fraction of a second; the inputs
cover N=1, D=1, constant columns, float32, NaN (the masked likelihood), infinity,
out-of-range values for the Bernoulli likelihood, lists and pandas frames.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from latentmix.vae import VAE

# The ValueErrors the VAE documents for data of the right type but awkward values.
DOCUMENTED = re.compile(
    r"contains infinity|contains NaN|\[0, 1\]|entirely missing|no observed|at least \d+ rows?"
    r"|n_samples"
)


@st.composite
def cases(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 30))
    d = draw(st.integers(1, 5))
    rng = np.random.RandomState(draw(st.integers(0, 2**31 - 1)))
    likelihood = draw(st.sampled_from(["bernoulli", "gaussian"]))
    X = (
        rng.rand(n, d)
        if likelihood == "bernoulli"
        else rng.randn(n, d) * 10.0 ** rng.randint(-3, 4)
    )
    kind = draw(st.sampled_from(["plain", "constant", "nan", "inf", "out_of_range", "binary"]))
    if kind == "constant":
        X[:, 0] = X[0, 0]
    elif kind == "nan":
        X[rng.rand(n, d) < 0.3] = np.nan
    elif kind == "inf":
        X[0, 0] = np.inf
    elif kind == "out_of_range":
        X[0, 0] = 3.0
    elif kind == "binary":
        X = (X > 0.5).astype(float)
    X = X.astype(draw(st.sampled_from([np.float64, np.float32])))
    return {
        "X": X,
        "likelihood": likelihood,
        "container": draw(st.sampled_from(["array", "list", "pandas"])),
    }


def as_container(X: np.ndarray, container: str) -> Any:
    if container == "list":
        return X.tolist()
    if container == "pandas":
        import pandas as pd

        return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    return X


@settings(max_examples=25, deadline=None)
@given(cases())
def test_vae_fuzz(case: dict[str, Any]) -> None:
    X = case["X"]
    Xin = as_container(X, case["container"])
    vae = VAE(
        latent_dim=2,
        hidden_dims=(4,),
        likelihood=case["likelihood"],
        epochs=2,
        batch_size=8,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            vae.fit(Xin)
        except ValueError as exc:
            assert DOCUMENTED.search(str(exc)), f"undocumented error: {exc}"
            return
        elbo = vae.elbo(Xin)
        Z = vae.transform(Xin)
        recon = vae.reconstruct(Xin)
        scores = vae.score_samples(Xin, n_importance=4)
        samples = vae.sample(3, random_state=0)
    for name, value in {
        "elbo": elbo,
        "Z": Z,
        "recon": recon,
        "scores": scores,
        "samples": samples,
    }.items():
        assert np.all(np.isfinite(np.asarray(value, dtype=np.float64))), f"{name} is not finite"
    assert Z.shape == (X.shape[0], 2)


def test_unscaled_single_row_trains_to_finite_outputs() -> None:
    # Found by the fuzz test: values in the thousands made a fresh encoder's log-variance
    # overflow, so the first training loss was infinite. The encoder now bounds it.
    X = np.array([[-392.81112969, 447.8392215, 1766.44420644, -1683.42597685]])
    vae = VAE(
        latent_dim=2,
        hidden_dims=(4,),
        likelihood="gaussian",
        epochs=2,
        batch_size=8,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        vae.fit(X)
    for value in (vae.elbo(X), vae.transform(X), vae.reconstruct(X), vae.score_samples(X)):
        assert np.all(np.isfinite(np.asarray(value, dtype=np.float64)))
