"""The bounds' building blocks against naive references: Monte Carlo, scipy, a score-function gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")

from latentmix.vae._losses import (  # noqa: E402
    gaussian_kl,
    log_likelihood,
    log_normal,
    log_standard_normal,
    reparameterize,
)
from latentmix.vae._modules import VAENet, init_weights  # noqa: E402


def test_closed_form_kl_matches_monte_carlo() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0], [-0.3, 0.7, 0.1]], dtype=torch.float64)
    logvar = torch.tensor(
        [[0.0, -1.0, 0.5], [0.0, 0.0, 0.0], [1.2, -2.0, 0.3]], dtype=torch.float64
    )
    n = 200_000
    z = mu + torch.exp(0.5 * logvar) * torch.randn((n, *mu.shape), generator=g, dtype=torch.float64)
    terms = log_normal(z, mu, logvar) - log_standard_normal(z)  # (n, rows)
    mc, se = terms.mean(0), terms.std(0) / math.sqrt(n)
    exact = gaussian_kl(mu, logvar)
    assert exact[1].item() == 0.0  # q == p
    np.testing.assert_array_less(np.abs((mc - exact).numpy()), 5 * se.numpy() + 1e-12)


def test_log_densities_match_scipy() -> None:
    rng = np.random.RandomState(1)
    z, mu, logvar = rng.randn(3, 4, 5)
    expected = stats.norm(mu, np.exp(0.5 * logvar)).logpdf(z).sum(-1)
    got = log_normal(*(torch.from_numpy(a) for a in (z, mu, logvar)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(
        log_standard_normal(torch.from_numpy(z)).numpy(), stats.norm().logpdf(z).sum(-1), rtol=1e-12
    )


def test_likelihoods_match_scipy_and_mask_drops_entries() -> None:
    rng = np.random.RandomState(2)
    x = (rng.rand(6, 4) > 0.5).astype(np.float64)
    logits = rng.randn(6, 4)
    p = 1 / (1 + np.exp(-logits))
    expected = stats.bernoulli(p).logpmf(x)
    mask = rng.rand(6, 4) > 0.3
    xt, lt, mt = torch.from_numpy(x), torch.from_numpy(logits), torch.from_numpy(mask)
    np.testing.assert_allclose(log_likelihood(xt, lt, "bernoulli").numpy(), expected.sum(1))
    np.testing.assert_allclose(
        log_likelihood(xt, lt, "bernoulli", mask=mt).numpy(), (expected * mask).sum(1)
    )
    xr, mean, log_std = rng.randn(6, 4), rng.randn(6, 4), rng.randn(4) * 0.3
    expected = stats.norm(mean, np.exp(log_std)).logpdf(xr)
    got = log_likelihood(
        torch.from_numpy(xr), torch.from_numpy(mean), "gaussian", torch.from_numpy(log_std), mt
    )
    np.testing.assert_allclose(got.numpy(), (expected * mask).sum(1), rtol=1e-12)


def test_reparameterized_gradient_matches_score_function_estimate() -> None:
    """∇_φ E_q[log p(x|z)] two ways: pathwise (z = μ + σε) and REINFORCE (f ∇ log q)."""
    g = torch.Generator().manual_seed(0)
    net = VAENet(4, 2, (3,), likelihood="bernoulli").double()
    init_weights(net, g)
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    params = list(net.encoder.parameters())
    n = 400_000

    mu, logvar = net.encoder(x)
    z = reparameterize(mu.expand(n, -1), logvar.expand(n, -1), g)
    f = log_likelihood(x, net.decoder(z), "bernoulli")
    pathwise = torch.autograd.grad(f.mean(), params)

    mu, logvar = net.encoder(x)
    with torch.no_grad():
        z = mu + torch.exp(0.5 * logvar) * torch.randn((n, 2), generator=g, dtype=torch.float64)
        f = log_likelihood(x, net.decoder(z), "bernoulli")
        f = f - f.mean()  # a baseline: same expectation, lower variance
    score = torch.autograd.grad((f * log_normal(z, mu, logvar)).mean(), params)

    a = torch.cat([t.flatten() for t in pathwise])
    b = torch.cat([t.flatten() for t in score])
    assert a.norm() > 1e-3
    assert (a - b).norm() / a.norm() < 0.05
    # And a wrong pathwise gradient (σ left out of z) is told apart by the same test.
    mu, logvar = net.encoder(x)
    eps = torch.randn((n, 2), generator=g, dtype=torch.float64)
    wrong = torch.autograd.grad(
        log_likelihood(x, net.decoder(mu + eps), "bernoulli").mean(), params
    )
    c = torch.cat([t.flatten() for t in wrong])
    assert (c - b).norm() / a.norm() > 0.05
