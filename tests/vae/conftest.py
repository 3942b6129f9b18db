"""Small data and tiny fitted models shared by the VAE tests (module scope: fitted once)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")


def make_patterns(
    n: int = 300, n_features: int = 16, flip: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Binary rows near one of three prototypes (a tiny stand-in for binarised digits)."""
    rng = np.random.RandomState(seed)
    prototypes = rng.rand(3, n_features) > 0.5
    labels = rng.randint(0, 3, n)
    noise = rng.rand(n, n_features) < flip
    return (prototypes[labels] ^ noise).astype(np.float64), labels


@pytest.fixture(scope="session")
def patterns() -> tuple[np.ndarray, np.ndarray]:
    return make_patterns()


@pytest.fixture(scope="session")
def fitted_vae(patterns: tuple[np.ndarray, np.ndarray]):  # type: ignore[no-untyped-def]
    from latentmix.vae import VAE

    X, _ = patterns
    return VAE(latent_dim=2, hidden_dims=(32,), epochs=40, batch_size=32, random_state=0).fit(X)
