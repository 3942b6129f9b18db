"""The networks: an MLP or a small convolutional encoder and decoder, and the VAE that joins them.

The encoder maps x (and, for the conditional model, a one-hot label y) to the mean and
log-variance of q(z | x); the decoder maps z (and y) to the parameters of p(x | z): logits
for a Bernoulli likelihood, means for a Gaussian one. Rows are always flat vectors; the
convolutional pair reshapes them to ``image_shape`` inside.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["VAENet", "init_weights"]


def _mlp(sizes: Sequence[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return layers


def _halve(size: int) -> int:
    # Output size of a 3×3 convolution with stride 2 and padding 1.
    return (size - 1) // 2 + 1


#: The encoder's log-variances are kept within ±LOGVAR_LIMIT: on unscaled data (values
#: in the thousands) a fresh encoder can output log-variances whose exponential overflows,
#: which made the first loss infinite. Within the limit exp(logvar) stays finite in float32
#: (e^30 ≈ 1e13), and ordinary fits never reach it.
LOGVAR_LIMIT = 30.0


class _Encoder(nn.Module):
    """x (n, n_features) [+ y (n, n_classes)] → (mu, logvar), each (n, latent_dim)."""

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_dims: Sequence[int],
        n_classes: int,
        image_shape: tuple[int, int, int] | None,
        channels: Sequence[int],
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        if image_shape is None:
            self.conv: nn.Module | None = None
            width = n_features
        else:
            c, h, w = image_shape
            convs: list[nn.Module] = []
            for c_in, c_out in zip([c, *channels[:-1]], channels):
                convs += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
                h, w = _halve(h), _halve(w)
            self.conv = nn.Sequential(*convs, nn.Flatten())
            width = channels[-1] * h * w
        self.body = nn.Sequential(*_mlp([width + n_classes, *hidden_dims]))
        self.head = nn.Linear(([width + n_classes, *hidden_dims])[-1], 2 * latent_dim)
        self.latent_dim = latent_dim

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.conv is not None:
            assert self.image_shape is not None
            x = self.conv(x.reshape(-1, *self.image_shape))
        if y is not None:
            x = torch.cat([x, y], dim=-1)
        stats = self.head(self.body(x))
        logvar = stats[..., self.latent_dim :].clamp(-LOGVAR_LIMIT, LOGVAR_LIMIT)
        return stats[..., : self.latent_dim], logvar


class _Decoder(nn.Module):
    """z (..., latent_dim) [+ y] → (..., n_features): logits or means."""

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_dims: Sequence[int],
        n_classes: int,
        image_shape: tuple[int, int, int] | None,
        channels: Sequence[int],
    ) -> None:
        super().__init__()
        sizes = [latent_dim + n_classes, *reversed(hidden_dims)]
        self.body = nn.Sequential(*_mlp(sizes))
        self.image_shape = image_shape
        if image_shape is None:
            self.head = nn.Linear(sizes[-1], n_features)
            self.deconvs: nn.ModuleList | None = None
        else:
            c, h, w = image_shape
            self.sizes = [(h, w)]
            for _ in channels:
                h, w = _halve(h), _halve(w)
                self.sizes.append((h, w))
            self.sizes.reverse()  # smallest first: the order the decoder grows them
            self.channels = list(reversed(channels))
            self.head = nn.Linear(sizes[-1], self.channels[0] * h * w)
            outs = [*self.channels[1:], c]
            self.deconvs = nn.ModuleList(
                nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1)
                for c_in, c_out in zip(self.channels, outs)
            )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is not None:
            z = torch.cat([z, y.expand(*z.shape[:-1], y.shape[-1])], dim=-1)
        h = self.head(self.body(z))
        if self.deconvs is None:
            return h
        assert self.image_shape is not None
        lead = h.shape[:-1]
        h0, w0 = self.sizes[0]
        h = h.reshape(-1, self.channels[0], h0, w0)
        for i, deconv in enumerate(self.deconvs):
            h = deconv(torch.relu(h), output_size=self.sizes[i + 1])
        return h.reshape(*lead, -1)


class VAENet(nn.Module):
    """Encoder, decoder and the observation scale of a (conditional) VAE.

    ``log_std`` is a learned per-feature parameter for ``gaussian_std="learned"``, a fixed
    buffer for a given σ, and absent for the Bernoulli likelihood.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_dims: Sequence[int],
        *,
        likelihood: str,
        gaussian_std: float | str = "learned",
        n_classes: int = 0,
        image_shape: tuple[int, int, int] | None = None,
        channels: Sequence[int] = (32, 64),
    ) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.n_classes = n_classes
        self.encoder = _Encoder(
            n_features, latent_dim, hidden_dims, n_classes, image_shape, channels
        )
        self.decoder = _Decoder(
            n_features, latent_dim, hidden_dims, n_classes, image_shape, channels
        )
        self.log_std: torch.Tensor | None
        if likelihood == "gaussian":
            if gaussian_std == "learned":
                self.log_std = nn.Parameter(torch.zeros(n_features))
            else:
                self.register_buffer(
                    "log_std", torch.full((n_features,), math.log(float(gaussian_std)))
                )
        else:
            self.log_std = None

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x, y): the encoder alone (decode separately)."""
        return self.encoder(x, y)  # type: ignore[no-any-return]


@torch.no_grad()
def init_weights(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation, uniform(±1/√fan_in), drawn from ``generator``.

    Drawing from an explicit generator (not the global seed) makes two estimators with the
    same ``random_state`` identical regardless of what else ran in the process.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            weight = layer.weight
            if isinstance(layer, nn.ConvTranspose2d):
                fan_in = weight.shape[1] * weight[0, 0].numel()
            else:
                fan_in = weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            weight.uniform_(-bound, bound, generator=generator)
            if layer.bias is not None:
                layer.bias.uniform_(-bound, bound, generator=generator)
