"""Variational autoencoders (PyTorch): :class:`VAE` and :class:`ConditionalVAE`.

This is the only subpackage that imports torch; ``import latentmix`` works without it.
"""

from latentmix.vae._estimator import VAE, ConditionalVAE

__all__ = ["VAE", "ConditionalVAE"]
