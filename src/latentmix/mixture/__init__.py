"""Mixture models: Gaussian mixtures by EM and by variational inference, Bernoulli mixtures, model selection."""

from latentmix.mixture._bayesian_mixture import BayesianGaussianMixture
from latentmix.mixture._bernoulli import BernoulliMixture
from latentmix.mixture._gaussian_mixture import GaussianMixture
from latentmix.mixture._selection import MixtureSelection, select_mixture

__all__ = [
    "BayesianGaussianMixture",
    "BernoulliMixture",
    "GaussianMixture",
    "MixtureSelection",
    "select_mixture",
]
