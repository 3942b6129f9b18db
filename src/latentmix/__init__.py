"""latentmix: latent-variable models — Gaussian mixtures by EM, K-means, and more.

Public names are re-exported here explicitly; implementation modules are private.
"""

from latentmix._exceptions import (
    CollapseWarning,
    ConvergenceWarning,
    InvalidParameterError,
    ModelFileError,
    NotFittedError,
)
from latentmix._version import __version__
from latentmix.cluster import KMeans, kmeans_plusplus, silhouette_samples, silhouette_score
from latentmix.io import load, read_metadata, save
from latentmix.mixture import (
    BayesianGaussianMixture,
    BernoulliMixture,
    GaussianMixture,
    MixtureSelection,
    select_mixture,
)

__all__ = [
    "BayesianGaussianMixture",
    "BernoulliMixture",
    "CollapseWarning",
    "ConvergenceWarning",
    "GaussianMixture",
    "InvalidParameterError",
    "KMeans",
    "MixtureSelection",
    "ModelFileError",
    "NotFittedError",
    "__version__",
    "kmeans_plusplus",
    "load",
    "read_metadata",
    "save",
    "select_mixture",
    "silhouette_samples",
    "silhouette_score",
]
