"""The terms of the ELBO and the importance-weighted bound, per row, in closed form where possible.

Everything here is a pure function of tensors: the estimator and the training loop share it,
so the quantity that is optimised is the quantity that is reported.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "gaussian_kl",
    "log_likelihood",
    "log_normal",
    "reparameterize",
]

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) ‖ N(0, I)) per row, in closed form.

    KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²) (Kingma and Welling 2014, appendix B).
    """
    return 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=-1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z | mu, diag(exp(logvar))) summed over the last axis."""
    return -0.5 * torch.sum(_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar), dim=-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z | 0, I) summed over the last axis."""
    return -0.5 * torch.sum(_LOG_2PI + z.pow(2), dim=-1)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I): a sample whose gradient flows through μ and σ."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def log_likelihood(
    x: torch.Tensor,
    out: torch.Tensor,
    likelihood: str,
    log_std: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """log p(x | z) summed over features, over the observed entries only when ``mask`` is given.

    Parameters
    ----------
    x : tensor of shape (..., n_features)
        The data; entries where ``mask`` is False may hold anything finite.
    out : tensor of shape (..., n_features)
        The decoder's output: logits for ``"bernoulli"``, means for ``"gaussian"``.
    likelihood : {"bernoulli", "gaussian"}
    log_std : tensor of shape (n_features,) or scalar tensor, optional
        log σ of the Gaussian likelihood.
    mask : bool tensor of shape (..., n_features), optional
        True where x is observed (MIWAE's masked likelihood, Mattei and Frellsen 2019).
    """
    if likelihood == "bernoulli":
        # x·l − softplus(l): the Bernoulli log-mass with logits l, also valid for x in [0, 1].
        per_entry = -F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none")
    else:
        assert log_std is not None
        per_entry = -0.5 * _LOG_2PI - log_std - 0.5 * ((x - out) * torch.exp(-log_std)).pow(2)
    if mask is not None:
        per_entry = per_entry * mask
    return per_entry.sum(dim=-1)
