"""save → load gives the same model: through the state hooks, and through latentmix.io."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from latentmix.vae import VAE, ConditionalVAE  # noqa: E402


def _same_outputs(a, b, X, y=None) -> None:  # type: ignore[no-untyped-def]
    np.testing.assert_array_equal(a.transform(X, y), b.transform(X, y))
    np.testing.assert_array_equal(a.reconstruct(X, y), b.reconstruct(X, y))
    np.testing.assert_array_equal(
        a.score_samples(X, y, n_importance=20), b.score_samples(X, y, n_importance=20)
    )
    np.testing.assert_array_equal(a.elbo(X, y), b.elbo(X, y))
    sample_y = None if y is None else y[:5]
    np.testing.assert_array_equal(
        a.sample(5, sample_y, random_state=1), b.sample(5, sample_y, random_state=1)
    )
    assert a.get_params() == b.get_params()
    assert a.loss_curve_ == b.loss_curve_


def test_state_hooks_round_trip(fitted_vae: VAE, patterns) -> None:  # type: ignore[no-untyped-def]
    X, _ = patterns
    meta, arrays = fitted_vae._model_state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    loaded = VAE._from_model_state(fitted_vae.get_params(deep=False), meta, arrays)
    _same_outputs(fitted_vae, loaded, X[:10])


def test_save_load_vae(tmp_path: Path, patterns) -> None:  # type: ignore[no-untyped-def]
    io = pytest.importorskip("latentmix.io", reason="latentmix.io (save/load) not available yet")
    X, _ = patterns
    model = VAE(
        latent_dim=2, hidden_dims=(16, 8), likelihood="gaussian", epochs=3, random_state=0
    ).fit(X)
    io.save(model, tmp_path / "vae.lmx")
    loaded = io.load(tmp_path / "vae.lmx")
    assert type(loaded) is VAE
    _same_outputs(model, loaded, X[:10])


def test_save_load_conditional_vae_with_latent_mixture(tmp_path: Path, patterns) -> None:  # type: ignore[no-untyped-def]
    io = pytest.importorskip("latentmix.io", reason="latentmix.io (save/load) not available yet")
    pytest.importorskip("latentmix.mixture._gaussian_mixture")
    X, labels = patterns
    names = np.array(["x", "y", "z"])[labels]
    model = ConditionalVAE(latent_dim=2, hidden_dims=(16,), epochs=3, random_state=0)
    model.fit(X, names).fit_latent_mixture(2, random_state=0)
    io.save(model, tmp_path / "cvae.lmx")
    loaded = io.load(tmp_path / "cvae.lmx")
    _same_outputs(model, loaded, X[:10], names[:10])
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(
        loaded.predict(X[:10], names[:10]), model.predict(X[:10], names[:10])
    )
    np.testing.assert_array_equal(
        loaded.sample(4, names[:4], prior="mixture", random_state=0),
        model.sample(4, names[:4], prior="mixture", random_state=0),
    )


def test_unfitted_vae_round_trips(tmp_path: Path) -> None:
    io = pytest.importorskip("latentmix.io", reason="latentmix.io (save/load) not available yet")
    model = VAE(latent_dim=3, hidden_dims=(5,), image_shape=(2, 2))
    io.save(model, tmp_path / "unfitted.lmx")
    assert io.load(tmp_path / "unfitted.lmx").get_params() == model.get_params()
