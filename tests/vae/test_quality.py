"""The digits quality bar of the issue: test log-likelihood ≥ −17.0 nats, better than EM's BernoulliMixture."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from latentmix.mixture._bernoulli import BernoulliMixture
from latentmix.vae import VAE


def digits_split() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X > 7).astype(np.float64)
    X_train, X_test, _, _ = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    return X_train, X_test


@pytest.mark.slow
def test_digits_test_log_likelihood() -> None:
    """MLP 64-128-128-8, Bernoulli likelihood, 1,000 importance samples (docs/vae.md)."""
    X_train, X_test = digits_split()
    vae = VAE(latent_dim=8, hidden_dims=(128, 128), epochs=300, batch_size=64, random_state=0).fit(
        X_train
    )
    vae_score = vae.score(X_test, n_importance=1000)
    mixture = BernoulliMixture(20, alpha=0.1, max_iter=500, tol=1e-5, random_state=0)
    mixture_score = mixture.fit(X_train).score(X_test)
    assert vae_score >= -17.0
    assert vae_score > mixture_score
