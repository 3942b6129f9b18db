"""latentmix: latent-variable models — Gaussian mixtures by EM, K-means, and more.

Public names are re-exported here explicitly; implementation modules are private.
"""

from latentmix._exceptions import (
    CollapseWarning,
    ConvergenceWarning,
    ModelFileError,
    NotFittedError,
)
from latentmix._version import __version__
from latentmix.io import load, read_metadata, save
from latentmix.mixture import (
    BayesianGaussianMixture,
    GaussianMixture,
    MixtureSelection,
    select_mixture,
)

__all__ = [
    "BayesianGaussianMixture",
    "CollapseWarning",
    "ConvergenceWarning",
    "GaussianMixture",
    "MixtureSelection",
    "ModelFileError",
    "NotFittedError",
    "__version__",
    "load",
    "read_metadata",
    "save",
    "select_mixture",
]
